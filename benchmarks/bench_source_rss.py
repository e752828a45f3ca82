"""Peak memory of ReadFromAmplitudeExport reading a small hour and a 20x larger one.

The source streams each hour's zip to a temporary file and gunzips its parts line by line, so its
peak RSS should not grow with the hour: the ratio printed should be near 1. Each hour is read in a
fresh process (a Beam pipeline on the in-process runner) so the two peaks are independent; the
sandbox Export API serving the rows runs in this process.

    python -m benchmarks.bench_source_rss [--rows_small 10000] [--rows_large 200000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

__all__ = ["main", "measure_rss"]

_HOUR = "20240304T14"
_KEY, _SECRET = "bench-key", "bench-secret"


def _peak_rss_kb() -> int:
    """This process's peak RSS. On Linux, VmHWM: ru_maxrss survives exec, so a child started by
    a large parent would report the parent's size."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _read_hour(url: str) -> dict:
    """In the child: read one hour through the composite, counting lines; report peak RSS."""
    import apache_beam as beam  # pylint: disable=import-outside-toplevel
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from connectors.amplitude import ReadFromAmplitudeExport
    from transforms.records import LineChunk

    baseline_kb = _peak_rss_kb()
    started = time.perf_counter()
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        _ = (pipeline
             | ReadFromAmplitudeExport([_HOUR], api_key=_KEY, secret_key=_SECRET, base_url=url)
             | beam.Map(lambda element: len(element.lines) if isinstance(element, LineChunk) else 0)
             | beam.CombineGlobally(sum)
             | beam.Map(lambda n: print(json.dumps({"lines": n}), file=sys.stderr)))
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "baseline_rss_mb": round(baseline_kb / 1024, 1),
        "peak_rss_mb": round(_peak_rss_kb() / 1024, 1),
    }


def _measure_one(rows: int) -> dict:
    from sandbox.amplitude import AmplitudeExportServer  # pylint: disable=import-outside-toplevel
    from sandbox.generate import generate_rows_by_hour

    lines = generate_rows_by_hour(rows, _HOUR, 1, seed=1)
    with AmplitudeExportServer(lines, _KEY, _SECRET, part_rows=20_000) as server:
        zip_bytes = len(server.export_zip(_HOUR, _HOUR))  # built before the child starts timing
        child = subprocess.run([sys.executable, "-m", "benchmarks.bench_source_rss", "--child",
                                server.url], capture_output=True, text=True, check=True)
    counted = json.loads(child.stderr.strip().splitlines()[-1])["lines"]
    if counted != rows:
        raise RuntimeError(f"read {counted} lines of {rows}")
    return {"rows": rows, "zip_mb": round(zip_bytes / 2**20, 1), **json.loads(child.stdout)}


def measure_rss(rows_small: int = 10_000, rows_large: int = 200_000) -> dict:
    """Peak RSS (MB) of a process reading a ``rows_small`` hour and a ``rows_large`` hour."""
    small, large = _measure_one(rows_small), _measure_one(rows_large)
    return {"small": small, "large": large,
            "peak_rss_ratio": round(large["peak_rss_mb"] / small["peak_rss_mb"], 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_source_rss",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows_small", type=int, default=10_000, help="rows in the small hour")
    parser.add_argument("--rows_large", type=int, default=200_000, help="rows in the large hour")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_read_hour(args.child)))
        return 0
    figures = measure_rss(args.rows_small, args.rows_large)
    for name in ("small", "large"):
        f = figures[name]
        print(f"Amplitude source, one hour of {f['rows']} rows ({f['zip_mb']} MB zip): peak RSS "
              f"{f['peak_rss_mb']} MB (after imports {f['baseline_rss_mb']} MB), {f['seconds']} s")
    print(f"peak RSS ratio large/small: {figures['peak_rss_ratio']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
