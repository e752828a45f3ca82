"""The floor: CPU of the migration's own work on each row, with no Beam around it.

Over the rows of the end-to-end benchmark, one thread does what the pipeline cannot skip for them,
whatever runs it, each step with the pipeline's own functions:

- ``read``: check and decompress each hour's export zip (built as the sandbox serves it) and
  split it into lines (``archive.validate`` keeping the data, then ``archive.kept_lines``);
- ``translate``: ``translate_line`` on every line;
- ``facts``: gather each hour's ``HourFacts`` from its translations and serialise them, as the
  facts file every hour writes for the job's generated events, ``verify`` and resume;
- ``encode``: ``PostHogClient.encode`` each event;
- ``compress``: join and compress the encoded events into request bodies of the default batch
  size (``PostHogClient.body``);
- ``generated``: read every hour's facts back, choose each device's owner, build the
  ``$identify`` events and each person's snapshot ``$set`` (``pipeline.people``'s in-memory
  functions, over the hours' rows put side by side), and encode and compress them as above;
- ``startup``: ``import apache_beam`` and the pipeline's modules in a fresh interpreter.

Their sum is a lower bound on the CPU of an in-process run of the same rows, and all but ``read``
and ``compress`` (zlib, which lets go of the GIL) on the wall time of one: it leaves out Beam's
per-element and per-bundle work, HTTP, the ledger, the progress display, the ``$groupidentify``
events, and the shuffles that bring each person's facts together. Each step keeps its fastest of
``repeats`` passes. Run ``python -m benchmarks.bench_floor``.
"""

from __future__ import annotations

import argparse
import collections
import gc
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import orjson

from benchmarks.end_to_end import SEED, START, served_rows
from connectors import archive
from connectors.posthog_client import PostHogClient
from pipeline.options import DEFAULTS
from pipeline.people import identify_events, owners_of, snapshots_of
from sandbox.amplitude import AmplitudeExportServer
from transforms.facts import PERSON_SET, PERSON_SET_ONCE, HourFacts
from transforms.translate import translate_line

__all__ = ["STEPS", "main", "measure_floor"]

STEPS = ("read", "translate", "facts", "encode", "compress", "generated")
# zlib releases the GIL, so these could overlap the other steps on a second core.
OFF_GIL = ("read", "compress")
_BATCH = DEFAULTS["batch_size"]
_IMPORTS = "import apache_beam, pipeline.cli, pipeline.build"


def _fastest(step: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.thread_time()
        step()
        best = min(best, time.thread_time() - started)
    return best


def _startup_cpu(repeats: int) -> float:
    """CPU seconds of a fresh interpreter importing what ``python -m pipeline`` imports."""
    best = float("inf")
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", _IMPORTS], check=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return best


def _facts_of(translations: list) -> HourFacts:
    gathered = HourFacts()
    for translation in translations:
        gathered.add(translation)
    return gathered


def _zips(served: list[tuple[str, bytes]], scratch: str) -> list[str]:
    # The end-to-end benchmark's sandbox serves parts of 2,000 rows.
    server = AmplitudeExportServer(served, "k", "s", part_rows=2000)
    try:
        paths = []
        for hour in server.hours():
            path = os.path.join(scratch, f"{hour}.zip")
            with open(path, "wb") as out:
                out.write(server.export_zip(hour, hour))
            paths.append(path)
        return paths
    finally:
        server.stop()


def measure_floor(rows: int = 100_000, hours: int = 24, repeats: int = 3) -> dict[str, Any]:
    """CPU seconds of each step over the end-to-end benchmark's rows, their sum, and that sum
    per 100k of the events these steps make (translated and generated)."""
    served = served_rows(rows, START, hours, seed=SEED)
    client = PostHogClient("http://127.0.0.1:9", "phc_floor")
    with tempfile.TemporaryDirectory(prefix="aplistorical-floor-") as scratch:
        paths = _zips(served, scratch)
        by_hour = [[line.line for line in archive.kept_lines(
            archive.validate(path, archive.ZIP, keep_bytes=1 << 40))] for path in paths]
        translations = [[translate_line(line) for line in lines] for lines in by_hour]
        events = [t.event for hour in translations for t in hour if t.event is not None]
        facts_files = [orjson.dumps(_facts_of(hour).to_dict()) for hour in translations]
        encoded = [client.encode(event) for event in events]
        generated: list[dict] = []
        # What the loops allocate is not what they are timed for: keep the inputs out of the
        # collector's way, as they are out of the pipeline's (it never holds them all).
        gc.collect()
        gc.freeze()

        def read() -> None:
            for path in paths:
                for _ in archive.kept_lines(archive.validate(path, archive.ZIP,
                                                             keep_bytes=1 << 40)):
                    pass

        def translate() -> None:
            for lines in by_hour:
                for line in lines:
                    translate_line(line)

        def facts() -> None:
            for hour in translations:
                orjson.dumps(_facts_of(hour).to_dict())

        def encode() -> None:
            for event in events:
                client.encode(event)

        def compress(encoded: list[bytes] = encoded) -> None:
            for first in range(0, len(encoded), _BATCH):
                client.body(encoded[first:first + _BATCH])

        def generate() -> None:
            # A person's rows from several hours meet in one PersonTable, which keeps the
            # latest (or earliest) value of each property: side by side is merged enough.
            side_by_side: dict[str, list] = {"pairs": [], PERSON_SET: [], PERSON_SET_ONCE: []}
            for data in facts_files:
                hour = orjson.loads(data)
                for kind, rows in side_by_side.items():
                    rows.extend(hour.get(kind, ()))
            owners = owners_of(side_by_side["pairs"])
            generated[:] = identify_events(owners) + snapshots_of(side_by_side, owners)
            compress([client.encode(event) for event in generated])

        steps = {"read": read, "translate": translate, "facts": facts, "encode": encode,
                 "compress": compress, "generated": generate}
        try:
            figures = {name: _fastest(steps[name], repeats) for name in STEPS}
        finally:
            gc.unfreeze()
            client.close()
    figures["startup"] = _startup_cpu(repeats)
    total = sum(figures.values())
    holding_gil = total - sum(figures[name] for name in OFF_GIL)
    delivered = len(events) + len(generated)
    by_name = dict(collections.Counter(event["event"] for event in generated))
    return {"rows": len(served), "events": delivered, "generated_events": by_name,
            "cpu_seconds": figures,
            "total_cpu_seconds": total, "gil_cpu_seconds": holding_gil,
            "cpu_seconds_per_100k_events": total * 100_000 / max(delivered, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows to generate (100000)")
    parser.add_argument("--hours", type=int, default=24, help="hours they span (24)")
    parser.add_argument("--repeats", type=int, default=3, help="passes of each step, the "
                        "fastest kept (3)")
    args = parser.parse_args(argv)
    figures = measure_floor(args.rows, args.hours, args.repeats)
    print(f"{figures['rows']:,} rows, {figures['events']:,} events "
          f"(generated: {figures['generated_events']}), CPU seconds of one thread:")
    for name, seconds in figures["cpu_seconds"].items():
        print(f"  {name:<10}{seconds:7.2f}")
    print(f"  {'total':<10}{figures['total_cpu_seconds']:7.2f}  "
          f"({figures['cpu_seconds_per_100k_events']:.2f} per 100k events)")
    print(f"  {'with GIL':<10}{figures['gil_cpu_seconds']:7.2f}  (all but {', '.join(OFF_GIL)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
