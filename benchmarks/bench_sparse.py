"""Long sparse ranges: many small hours behind an Export API that takes time to prepare each.

- ``measure_keepalive``: milliseconds per Export API request on one kept-alive ``requests``
  session against the sandbox as it answers now (Nagle off), next to the same server with Nagle
  on (the baseline: how the sandbox answered before, headers and body in two writes).
- ``measure_sparse``: hours per second of ``python -m pipeline --dry_run`` over ``hours`` hours of
  about ``rows_per_hour`` rows each, the sandbox Export API (its own process) waiting
  ``latency_ms`` before each answer, at ``--amplitude_concurrency`` 4 against 1, whole runs
  (start-up included).

    python -m benchmarks.bench_sparse [--hours 2000] [--latency_ms 250]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import orjson
import requests

from benchmarks._sandboxes import KEYS, Sandbox
from sandbox import amplitude as amplitude_sandbox
from sandbox.generate import generate_rows

__all__ = ["measure_keepalive", "measure_sparse"]

_START = "20230101T00"


class _NagleHandler(amplitude_sandbox._Handler):  # pylint: disable=protected-access
    disable_nagle_algorithm = False  # as the sandbox answered before: the baseline


def _per_request_ms(server: amplitude_sandbox.AmplitudeExportServer, hour: str,
                    requests_count: int) -> float:
    with requests.Session() as session:
        auth = (KEYS["AMPLITUDE_API_KEY"], KEYS["AMPLITUDE_SECRET_KEY"])
        url = f"{server.url}/api/2/export"
        timings = []
        for _ in range(requests_count + 1):
            started = time.perf_counter()
            session.get(url, params={"start": hour, "end": hour}, auth=auth).raise_for_status()
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings[1:])  # the first one also opens the connection


def measure_keepalive(requests_count: int = 30) -> dict[str, float]:
    """Median ms per kept-alive Export API request, Nagle off (now) and on (before)."""
    rows = [line for line in generate_rows(20, "20240301T00", 1, seed=5, bad_share=0)]
    hour = "20240301T00"
    figures = {}
    for name, handler in (("nagle_off_ms", None), ("nagle_on_ms", _NagleHandler)):
        server = amplitude_sandbox.AmplitudeExportServer(
            [(hour, line) for line in rows], KEYS["AMPLITUDE_API_KEY"],
            KEYS["AMPLITUDE_SECRET_KEY"])
        if handler is not None:
            server._httpd.RequestHandlerClass = handler  # pylint: disable=protected-access
        with server:
            figures[name] = _per_request_ms(server, hour, requests_count)
    return figures


def _end(hours: int) -> str:
    first = dt.datetime.strptime(_START, "%Y%m%dT%H")
    return (first + dt.timedelta(hours=hours - 1)).strftime("%Y%m%dT%H")


def _run(url: str, hours: int, concurrency: int, work_dir: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "--start", _START, "--end", _end(hours), "--work_dir",
         work_dir, "--amplitude_url", url, "--dry_run", "--amplitude_concurrency",
         str(concurrency), "-q"], env={**os.environ, **KEYS}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"the run failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.perf_counter() - started


def measure_sparse(hours: int = 2000, rows_per_hour: int = 6,
                   latency_ms: float = 250) -> dict[str, Any]:
    """Hours/s at --amplitude_concurrency 4 and 1 over the same sparse range."""
    with tempfile.TemporaryDirectory(prefix="bench-sparse-") as tmp:
        rows_path = os.path.join(tmp, "rows.jsonl")
        with open(rows_path, "wb") as out:
            for line in generate_rows(hours * rows_per_hour, _START, hours, seed=11,
                                      bad_share=0):
                out.write(line + b"\n")
        figures: dict[str, Any] = {"hours": hours, "rows_per_hour": rows_per_hour,
                                   "latency_ms": latency_ms}
        with Sandbox("sandbox.amplitude", "--rows", rows_path, "--latency_ms", str(latency_ms),
                     "--api-key", KEYS["AMPLITUDE_API_KEY"],
                     "--secret-key", KEYS["AMPLITUDE_SECRET_KEY"]) as amplitude:
            for concurrency in (4, 1):
                seconds = _run(amplitude.url, hours, concurrency,
                               os.path.join(tmp, f"job-{concurrency}"))
                figures[f"concurrency_{concurrency}"] = {"seconds": seconds,
                                                         "hours_per_second": hours / seconds}
    figures["ratio"] = (figures["concurrency_4"]["hours_per_second"]
                        / figures["concurrency_1"]["hours_per_second"])
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sparse",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=int, default=2000, help="hours in the range (2000)")
    parser.add_argument("--rows_per_hour", type=int, default=6, help="rows per hour (6)")
    parser.add_argument("--latency_ms", type=float, default=250,
                        help="sandbox preparation delay per request (250)")
    args = parser.parse_args(argv)
    figures = {"keepalive": measure_keepalive(),
               "sparse": measure_sparse(args.hours, args.rows_per_hour, args.latency_ms)}
    print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
