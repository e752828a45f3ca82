"""End to end: sandbox Amplitude → ``python -m pipeline`` → sandbox PostHog, next to the SDK baseline.

Both sandboxes run in processes of their own (``python -m sandbox.amplitude``,
``python -m sandbox.posthog``) so that they share no GIL with the contender they serve. The
pipeline runs as a user runs it, ``python -m pipeline --runner DirectRunner``, once in process and
once in the mode a local run gets by default (``pipeline.local_mode``); the baseline
(``benchmarks.baseline_sdk``, PostHog's documented script) runs over the same rows, already in
memory, in this process: once as documented, once with the SDK's queue large enough never to
drop an event. Each contender gets a fresh
sink that records what it accepts; there is no pacing.

Figures: ``wall`` is events delivered over the whole run, start-up included (for the pipeline, from
starting its process to its exit: Python and Beam imports, pipeline construction, the generated
events and the report are in it; for the baseline, from creating the SDK client to the end of its
flush). ``steady`` leaves start-up out: events delivered after the sink saw its first batch over
the time from that batch to the last one. ``cpu_seconds`` is the contender's own CPU time (the
pipeline's process and its workers; this process during the baseline), not the sandboxes'.

Correctness: the pipeline should deliver every row ``translate_line`` migrates plus one
``$identify`` per device (with its first user), and the sink's record is compared with that uuid by uuid;
the job's other generated events (group and person snapshots) are compared by name with the
counts in the job's own report. The baseline should deliver every row its conversion kept; the
SDK gives events random uuids, so that comparison is by count.

    python -m benchmarks.end_to_end [--rows 100000] [--hours 24] [--sink_latency_ms 0]
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import orjson
import requests

from benchmarks._sandboxes import KEYS, Sandbox, Sink, Watch
from benchmarks.baseline_sdk import run_baseline
from sandbox.generate import generate_rows_by_hour
from transforms.settings import TranslationSettings
from transforms.posthog_rules import captured_distinct_id, is_distinct_id_unmergeable
from transforms.translate import identify_uuid, translate_line, user_and_device

__all__ = ["BASELINES", "MODES", "SEED", "START", "expected_pipeline_events", "main",
           "measure_end_to_end", "served_rows"]

# The Beam arguments of each pipeline contender.
# "default" is what a user gets with no worker options: see pipeline.local_mode (on this 2-core
# machine, two worker processes).
MODES = {
    "in_process": ["--runner", "DirectRunner", "--direct_running_mode=in_memory"],
    "default": ["--runner", "DirectRunner"],
}
# The generated rows every contender gets (and benchmarks.bench_floor times the functions on).
START, SEED = "20240301T00", 8
# The SDK baseline twice: as the guide leaves it, and with a queue that can hold every event, which
# measures the SDK's speed without the events its full queue drops.
BASELINES = ("sdk_baseline", "sdk_no_drop")


def served_rows(rows: int, start: str, hours: int, seed: int) -> list[tuple[str, bytes]]:
    """Generated ``(hour, line)`` pairs as the standalone Export API sandbox serves them.

    ``python -m sandbox.amplitude`` reads an NDJSON file and leaves out lines that are not JSON
    (it could not place them in an hour), so the generator's ``invalid_json`` rows are dropped
    here, for every contender alike; its other kinds of bad rows stay.
    """
    served = []
    for hour, line in generate_rows_by_hour(rows, start, hours, seed=seed):
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        served.append((hour, line))
    return served


def expected_pipeline_events(lines: list[bytes],
                             settings: TranslationSettings | None = None) -> dict[str, str]:
    """uuid → event name of every event the pipeline should deliver for ``lines``: the rows
    ``translate_line`` migrates, and one ``$identify`` per device seen with a user in them, with
    its earliest user among those PostHog would merge it with (see docs/identities.md)."""
    settings = settings or TranslationSettings.from_flags()
    expected, owners = {}, {}
    for line in lines:
        result = translate_line(line, settings)
        if result.event is None:
            continue
        expected[result.event["uuid"]] = result.event["event"]
        user, device = user_and_device(result.row)
        if not (user and device):
            continue
        stored_user, stored_device = captured_distinct_id(user), captured_distinct_id(device)
        if (stored_user == stored_device or is_distinct_id_unmergeable(stored_user)
                or is_distinct_id_unmergeable(stored_device)):
            continue
        first = (result.event["timestamp"], user)
        owners[device] = min(owners.get(device, first), first)
    for device, (_, user) in owners.items():
        expected[identify_uuid(user, device)] = "$identify"
    return expected


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _compare(sink: Sink, expected: dict[str, str], generated: dict[str, int]) -> dict[str, Any]:
    """What the sink recorded next to ``expected`` (by uuid) and ``generated`` (by name)."""
    received: collections.Counter = collections.Counter()
    unexpected: collections.Counter = collections.Counter()
    with open(sink.record_path, "rb") as record:
        for line in record:
            event = orjson.loads(line)
            uuid = str(event.get("uuid"))
            received[uuid] += 1
            if uuid not in expected:
                unexpected[event.get("event")] += 1
    missing = sum(1 for uuid in expected if uuid not in received)
    for name, count in generated.items():
        got = unexpected.pop(name, 0)
        missing += max(count - got, 0)
        if got > count:
            unexpected[name] = got - count
    return {"events_expected": len(expected) + sum(generated.values()), "missing": missing,
            "unexpected": dict(unexpected)}


def _run_pipeline(mode: str, served: list[tuple[str, bytes]], amplitude_url: str,
                  expected: dict[str, str], scratch: str, latency_ms: float) -> dict[str, Any]:
    work_dir = os.path.join(scratch, f"job-{mode}")
    with Sink(os.path.join(scratch, f"received-{mode}.jsonl"), latency_ms) as sink:
        args = ["--start", served[0][0], "--end", served[-1][0], "--job_name", f"bench-{mode}",
                "--work_dir", work_dir, "--amplitude_url", amplitude_url,
                "--posthog_host", sink.url, "--quiet", *MODES[mode]]
        cpu_before = _children_cpu()
        with Watch(sink) as watch:
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "pipeline", *args],
                                  env={**os.environ, **KEYS}, capture_output=True, text=True,
                                  check=False)
            seconds = time.perf_counter() - started
        cpu = _children_cpu() - cpu_before
        stats = sink.stats()
        if done.returncode != 0:
            raise RuntimeError(f"the pipeline ({mode}) exited with {done.returncode}:\n"
                               f"{done.stderr[-3000:]}")
        with open(os.path.join(work_dir, "report.json"), "rb") as report_file:
            report = orjson.loads(report_file.read())
        # Generated events other than $identify (group and person snapshots) are counted
        # against the job's own ledger: their content is the job's choice, not the rows'.
        generated = {name: count for name, count in
                     (report.get("generated_events_sent") or {}).items() if name != "$identify"}
        comparison = _compare(sink, expected, generated)
    return {
        "command": "python -m pipeline " + " ".join(args),
        "events_received": stats["events"],
        **comparison,
        "expected_from_ledger": generated,
        "duplicates": stats["duplicates"],
        "seconds": seconds,
        "events_per_second_wall": stats["events"] / seconds,
        **watch.figures(started),
        "cpu_seconds": cpu,
        "report": {key: report.get(key) for key in (
            "rows_read", "events_sent", "rows_skipped", "rows_dead_lettered",
            "generated_events_sent", "reconciled")},
    }


def _run_baseline(name: str, lines: list[bytes], scratch: str,
                  latency_ms: float) -> dict[str, Any]:
    queue = len(lines) + 1 if name == "sdk_no_drop" else None
    with Sink(os.path.join(scratch, f"received-{name}.jsonl"), latency_ms) as sink:
        cpu_before = _own_cpu()
        with Watch(sink) as watch:
            started = time.perf_counter()
            result = run_baseline(lines, sink.url, KEYS["POSTHOG_API_KEY"],
                                  max_queue_size=queue)
        cpu = _own_cpu() - cpu_before
        stats = sink.stats()
    should_send = (result["rows_read"] - sum(result["rows_skipped"].values())
                   - sum(result["rows_failed"].values()))
    return {
        "command": "benchmarks.baseline_sdk.run_baseline(rows, sink_url, key"
                   + (f", max_queue_size={queue})" if queue else ")"),
        "events_received": stats["events"],
        "events_expected": should_send,
        "duplicates": stats["duplicates"],
        "missing": max(should_send - stats["events"], 0),
        "unexpected": {"?": stats["events"] - should_send} if stats["events"] > should_send else {},
        "seconds": result["elapsed_seconds"],
        "events_per_second_wall": stats["events"] / result["elapsed_seconds"],
        **watch.figures(started),
        "cpu_seconds": cpu,
        "sdk": {key: result[key] for key in ("rows_skipped", "rows_failed", "events_captured",
                                             "events_dropped", "events_failed_upload",
                                             "sdk_log")},
    }


def _warm(url: str, hours: list[str]) -> None:
    """Ask for every hour once so the sandbox builds and caches its zips before any contender is
    timed: each then pays for receiving the bytes, not for the sandbox compressing them."""
    auth = (KEYS["AMPLITUDE_API_KEY"], KEYS["AMPLITUDE_SECRET_KEY"])
    with requests.Session() as session:
        for hour in hours:
            session.get(f"{url}/api/2/export", params={"start": hour, "end": hour}, auth=auth,
                        timeout=300).raise_for_status()


def measure_end_to_end(rows: int = 100_000, hours: int = 24, start: str = START,
                       seed: int = SEED, modes: tuple[str, ...] = tuple(MODES),
                       baseline: bool = True, sink_latency_ms: float = 0) -> dict[str, Any]:
    """Run the pipeline in each of ``modes`` and (with ``baseline``) the SDK baselines over the
    same generated rows; return the figures of each contender by name (a mode, or one of
    ``BASELINES``) under ``contenders``, and the size of the input. ``sink_latency_ms`` delays every
    request to the sink (0: loopback as it is)."""
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown:
        raise ValueError(f"modes: unknown mode {unknown[0]!r}; expected some of {list(MODES)}")
    if rows < 1:
        raise ValueError(f"rows: expected at least 1, got {rows}")
    if sink_latency_ms < 0:
        raise ValueError(f"sink_latency_ms: expected 0 or more, got {sink_latency_ms}")
    served = served_rows(rows, start, hours, seed)
    lines = [line for _, line in served]
    figures: dict[str, Any] = {"rows_generated": rows, "rows_served": len(lines),
                               "hours": hours, "sink_latency_ms": sink_latency_ms,
                               "contenders": {}}
    with tempfile.TemporaryDirectory(prefix="aplistorical-bench-") as scratch:
        if modes:
            expected = expected_pipeline_events(lines)
            rows_path = os.path.join(scratch, "rows.jsonl")
            with open(rows_path, "wb") as out:
                out.writelines(line + b"\n" for line in lines)
            with Sandbox("sandbox.amplitude", "--rows", rows_path,
                          "--api-key", KEYS["AMPLITUDE_API_KEY"],
                          "--secret-key", KEYS["AMPLITUDE_SECRET_KEY"],
                          "--part-rows", "2000") as amplitude:
                _warm(amplitude.url, sorted({hour for hour, _ in served}))
                for mode in modes:
                    figures["contenders"][mode] = _run_pipeline(
                        mode, served, amplitude.url, expected, scratch, sink_latency_ms)
        if baseline:
            for name in BASELINES:
                figures["contenders"][name] = _run_baseline(name, lines, scratch,
                                                            sink_latency_ms)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.end_to_end", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows to generate (100000)")
    parser.add_argument("--hours", type=int, default=24, help="hours they span (24)")
    parser.add_argument("--sink_latency_ms", type=float, default=0,
                        help="delay every request to the sink by this much (0)")
    args = parser.parse_args(argv)
    figures = measure_end_to_end(args.rows, args.hours, sink_latency_ms=args.sink_latency_ms)
    print(orjson.dumps(figures, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
