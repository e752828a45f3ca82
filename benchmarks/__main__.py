"""``make bench``: every benchmark, each figure next to its baseline from the same run.

1. ``translate_line`` rows/s on one core vs plain ``orjson.loads`` + ``orjson.dumps`` of the same
   rows (target: ratio at least 0.5);
2. end-to-end events/s, sandbox Amplitude → ``python -m pipeline`` (in process, and in the
   default local mode: one worker process per core) → sandbox PostHog, vs PostHog's documented SDK script into the same kind of sink
   (target: at least 5×);
3. peak RSS of the Amplitude source reading a 10k-row hour and a 200k-row hour (target: ratio
   below 1.3);
4. events each contender of 2. delivered vs those it should have;
5. events/s and CPU seconds per 100k events through ``WriteToPostHog`` alone;
6. a kept-alive Export API request to the sandbox, Nagle off (now) vs on (before), and a sparse
   range (``sparse_hours`` of ~6 rows, the sandbox taking ``sparse_latency_ms`` per export) in
   hours/s at ``--amplitude_concurrency`` 4 vs 1 (target: at least 3× at 2,000 hours);
7. start-up of a long all-done job (``long_job_hours``, a local work_dir; ``long_job_gcs_hours`` on
   the GCS emulator): a rerun without the ledger index (baseline) vs with it, and a new job's first
   export request;
8. the floor: CPU of the pipeline's own functions on the rows of 2., one thread, no Beam
   (``benchmarks.bench_floor``), next to the CPU target of 2. and, with 2., next to the in-process
   run's CPU and the wall time a 5× ratio allows.

Sizes are fixed so that figures compare across runs; the whole run takes a few minutes on two
cores. Run ``python -m benchmarks --help`` for the options.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

import orjson

from benchmarks.bench_floor import measure_floor
from benchmarks.bench_long_job import measure_long_job
from benchmarks.bench_sink import measure_sink
from benchmarks.bench_source_rss import measure_rss
from benchmarks.bench_sparse import measure_keepalive, measure_sparse
from benchmarks.bench_translate import measure
from benchmarks.end_to_end import BASELINES, MODES, measure_end_to_end
from sandbox.generate import generate_rows

__all__ = ["SECTIONS", "SIZES", "TARGETS", "main", "run_all", "table"]

SIZES = {"translate_rows": 30_000, "rows": 100_000, "hours": 24, "rss_small": 10_000,
         "rss_large": 200_000, "sink_events": 100_000,
         "sparse_hours": 200, "sparse_latency_ms": 250, "long_job_hours": 26_280,
         "long_job_gcs_hours": 1_000}
TARGETS = {"translate_ratio": 0.5, "end_to_end_ratio": 5.0, "rss_ratio": 1.3,
           "sparse_ratio": 3.0, "cpu_per_100k_events": 5.0}
SECTIONS = ("translate", "end_to_end", "rss", "sink", "sparse", "long_job", "floor")


def _met(ok: bool) -> str:
    return "target met" if ok else "TARGET MISSED"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return ours / theirs if ours and theirs else None


def _times(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}"


def _translate(sizes: dict, say: Callable[[str], None]) -> dict[str, Any]:
    lines = list(generate_rows(sizes["translate_rows"], "20240301T00", 24, seed=7))
    figures = measure(lines)
    figures["bytes_per_row"] = sum(map(len, lines)) / len(lines)
    say(f"1. translate_line on {figures['rows']:,} generated rows "
        f"({figures['bytes_per_row']:,.0f} bytes each), one core, CPU time, best of 7:")
    say(f"   translate_line {figures['translate_rows_per_s']:>12,.0f} rows/s")
    say(f"   orjson loads+dumps {figures['orjson_rows_per_s']:>8,.0f} rows/s (baseline)")
    say(f"   ratio {figures['ratio']:.2f} (target >= {TARGETS['translate_ratio']}: "
        f"{_met(figures['ratio'] >= TARGETS['translate_ratio'])})")
    return figures


def _end_to_end(sizes: dict, say: Callable[[str], None],
                latency_ms: float = 0) -> dict[str, Any]:
    figures = measure_end_to_end(sizes["rows"], sizes["hours"], sink_latency_ms=latency_ms)
    runs = figures["contenders"]
    latency = f", {latency_ms:g} ms added to every sink request" if latency_ms else ""
    say(f"2. End to end: {figures['rows_served']:,} rows over {figures['hours']} hours, sandbox "
        f"Amplitude → contender → sandbox PostHog, no pacing{latency}.")
    say("   wall = events delivered / whole run, start-up included; steady = after the first "
        "batch arrived")
    say(f"   {'contender':<34}{'wall ev/s':>10}{'steady ev/s':>13}{'start-up s':>12}"
        f"{'CPU s/100k ev':>15}")
    for name, run in runs.items():
        startup = run["startup_seconds"]
        run["cpu_per_100k_events"] = run["cpu_seconds"] * 100_000 / max(run["events_received"], 1)
        say(f"   {_label(name):<34}{_rate(run['events_per_second_wall']):>10}"
            f"{_rate(run['events_per_second_steady']):>13}"
            f"{'n/a' if startup is None else f'{startup:.1f}':>12}"
            f"{run['cpu_per_100k_events']:>15.1f}")
    for mode in MODES:
        run = runs[mode]
        target = TARGETS["cpu_per_100k_events"]
        say(f"   {_label(mode)}: {run['cpu_per_100k_events']:.1f} CPU s per 100k events (target "
            f"<= {target:g}: {_met(run['cpu_per_100k_events'] <= target)})")
        run["ratios"] = {}
        for baseline in BASELINES:
            wall = _ratio(run["events_per_second_wall"], runs[baseline]["events_per_second_wall"])
            steady = _ratio(run["events_per_second_steady"],
                            runs[baseline]["events_per_second_steady"])
            run["ratios"][baseline] = {"wall": wall, "steady": steady}
            say(f"   {_label(mode)} / {_label(baseline)}: {_times(wall)}× wall, "
                f"{_times(steady)}× steady (target >= {TARGETS['end_to_end_ratio']:.0f}×: "
                f"{_met((wall or 0) >= TARGETS['end_to_end_ratio'])})")
    return figures


_SHORT = {"sdk_baseline": "SDK", "sdk_no_drop": "SDK no-drop"}
_LABELS = {"sdk_baseline": "SDK baseline, as documented", "sdk_no_drop": "SDK, queue never full"}


def _label(name: str) -> str:
    return _LABELS.get(name, f"pipeline {name}")


def _delivery(figures: dict, say: Callable[[str], None]) -> None:
    say("4. Events the sink received vs expected (from the same rows):")
    for name, run in figures["contenders"].items():
        lost = run["missing"]
        extra = sum(run["unexpected"].values())
        verdict = "all delivered, none extra" if not lost and not extra else (
            f"LOST {lost:,}" + (f", {extra:,} unexpected {run['unexpected']}" if extra else ""))
        say(f"   {_label(name):<34}{run['events_received']:>9,} received / "
            f"{run['events_expected']:>9,} expected, {run['duplicates']:,} duplicates: {verdict}")
    for name in BASELINES:
        sdk = figures["contenders"][name]["sdk"]
        say(f"   {_label(name)}: could not convert {sum(sdk['rows_failed'].values()):,} rows "
            f"{sdk['rows_failed']} (the guide's script would stop at the first); dropped "
            f"{sdk['events_dropped']:,} events from a full queue; gave up on "
            f"{sdk['events_failed_upload']:,} events in batches the sink refused")
        kinds: dict[str, int] = {}
        for kind, count in sdk["sdk_log"].items():
            kind = kind.split(", dropping event")[0]  # one line for every event name dropped
            kinds[kind] = kinds.get(kind, 0) + count
        for kind, count in kinds.items():
            say(f"     SDK log, {count:,}×: {kind[:150]}")
    say("   pipeline: translated events and $identify checked uuid by uuid against translate_line "
        "on the same rows; other generated events by name against the job's report")
    for mode in MODES:
        report = figures["contenders"][mode]["report"]
        say(f"   pipeline {mode} report: {report['rows_read']:,} rows read, "
            f"{report['events_sent']:,} events sent, skipped {report['rows_skipped']}, "
            f"dead-lettered {report['rows_dead_lettered']}, generated "
            f"{report['generated_events_sent']}, reconciled: {report['reconciled']}")


def _rss(sizes: dict, say: Callable[[str], None]) -> dict[str, Any]:
    figures = measure_rss(sizes["rss_small"], sizes["rss_large"])
    say("3. Peak RSS of a process reading one hour through ReadFromAmplitudeExport:")
    for name in ("small", "large"):
        run = figures[name]
        say(f"   {run['rows']:>9,} rows ({run['zip_mb']} MB zip): peak {run['peak_rss_mb']} MB "
            f"(after imports {run['baseline_rss_mb']} MB), {run['seconds']} s")
    say(f"   ratio {figures['peak_rss_ratio']:.3f} (target < {TARGETS['rss_ratio']}: "
        f"{_met(figures['peak_rss_ratio'] < TARGETS['rss_ratio'])})")
    return figures


def _sink(sizes: dict, say: Callable[[str], None]) -> dict[str, Any]:
    figures = measure_sink(sizes["sink_events"])
    say(f"5. WriteToPostHog alone → sandbox PostHog, no pacing: {figures['events']:,} events in "
        f"{figures['requests']} requests, {figures['events_per_second']:,} events/s, "
        f"{figures['cpu_seconds_per_100k_events']} CPU s per 100k events (the sandbox: "
        f"{figures['sandbox_cpu_seconds']} CPU s)")
    return figures


def _sparse(sizes: dict, say: Callable[[str], None]) -> dict[str, Any]:
    alive = measure_keepalive()
    say(f"6. Kept-alive Export API request to the sandbox: {alive['nagle_off_ms']:.1f} ms "
        f"(baseline, Nagle on as before: {alive['nagle_on_ms']:.1f} ms)")
    figures = measure_sparse(sizes["sparse_hours"], 6, sizes["sparse_latency_ms"])
    figures["keepalive"] = alive
    say(f"   Sparse range: {figures['hours']:,} hours of ~6 rows, {figures['latency_ms']:g} ms "
        "per export, python -m pipeline --dry_run, whole runs:")
    for concurrency in (4, 1):
        run = figures[f"concurrency_{concurrency}"]
        say(f"   --amplitude_concurrency {concurrency}: {run['hours_per_second']:.2f} hours/s "
            f"({run['seconds']:.1f} s)")
    say(f"   ratio {figures['ratio']:.2f} (target >= {TARGETS['sparse_ratio']:.0f}× at 2,000 "
        f"hours: {_met(figures['ratio'] >= TARGETS['sparse_ratio'])})")
    return figures


def _long_job(sizes: dict, say: Callable[[str], None]) -> dict[str, Any]:
    figures = {"local": measure_long_job(sizes["long_job_hours"])}
    if sizes["long_job_gcs_hours"]:
        figures["gcs_emulator"] = measure_long_job(sizes["long_job_gcs_hours"], gcs=True)
    say("7. Start-up of a long job, whole runs of python -m pipeline:")
    for place, run in figures.items():
        say(f"   {place}, {run['hours']:,} hours all done: rerun {run['rerun_with_index_s']:.1f} s "
            f"with the ledger index, {run['rerun_without_index_s']:.1f} s without (baseline); "
            f"a new job's first export request after {run['first_request_s']:.1f} s")
    return figures


def _floor(sizes: dict, say: Callable[[str], None], end_to_end: dict | None) -> dict[str, Any]:
    figures = measure_floor(sizes["rows"], sizes["hours"])
    target = TARGETS["cpu_per_100k_events"]
    say(f"8. The floor: the pipeline's own functions on the rows of 2. ({figures['events']:,} "
        "events), one thread, no Beam, no HTTP; CPU s, fastest of 3:")
    say("   " + ", ".join(f"{name} {seconds:.2f}" for name, seconds in
                          figures["cpu_seconds"].items()))
    per_100k = figures["cpu_seconds_per_100k_events"]
    say(f"   total {figures['total_cpu_seconds']:.2f} s, {per_100k:.2f} per 100k events "
        f"(CPU target of 2.: <= {target:g}: the floor alone "
        f"{'is within it' if per_100k <= target else 'is over it'})")
    if end_to_end:
        runs = end_to_end["contenders"]
        ours = runs["in_process"]
        figures["in_process_cpu_seconds"] = ours["cpu_seconds"]
        say(f"   pipeline in_process: {ours['cpu_seconds']:.2f} CPU s; above the floor: "
            f"{ours['cpu_seconds'] - figures['total_cpu_seconds']:.2f} s (Beam, HTTP, ledger, "
            "shuffles, the rest)")
        if "sdk_no_drop" in runs:
            allowed = ours["events_received"] / (
                TARGETS["end_to_end_ratio"] * runs["sdk_no_drop"]["events_per_second_wall"])
            figures["five_times_wall_seconds"] = allowed
            say(f"   5× the SDK no-drop wall rate allows {allowed:.2f} s for the in-process run; "
                f"the floor's steps that hold the GIL alone take "
                f"{figures['gil_cpu_seconds']:.2f} s")
    return figures


def run_all(sizes: dict | None = None, sections: tuple[str, ...] = SECTIONS,
            say: Callable[[str], None] = print, sink_latency_ms: float = 0) -> dict[str, Any]:
    """Run the benchmarks in ``sections`` with ``sizes`` (defaults: ``SIZES``), reporting each
    figure through ``say`` as it is measured; return every figure by section.
    ``sink_latency_ms`` delays every request to the end-to-end sinks (default: none)."""
    sizes = {**SIZES, **(sizes or {})}
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        raise ValueError(f"sections: unknown section {unknown[0]!r}; expected some of "
                         f"{', '.join(SECTIONS)}")
    figures: dict[str, Any] = {"sizes": sizes}
    if "translate" in sections:
        figures["translate"] = _translate(sizes, say)
    if "end_to_end" in sections:
        figures["end_to_end"] = _end_to_end(sizes, say, sink_latency_ms)
    if "rss" in sections:
        figures["rss"] = _rss(sizes, say)
    if "end_to_end" in sections:
        _delivery(figures["end_to_end"], say)
    if "sink" in sections:
        figures["sink"] = _sink(sizes, say)
    if "sparse" in sections:
        figures["sparse"] = _sparse(sizes, say)
    if "long_job" in sections:
        figures["long_job"] = _long_job(sizes, say)
    if "floor" in sections:
        figures["floor"] = _floor(sizes, say, figures.get("end_to_end"))
    return figures


def table(figures: dict[str, Any]) -> str:
    """The figures of ``run_all`` as a compact table: figure, ours, baseline, ratio, target."""
    rows = [("figure", "ours", "baseline", "ratio", "target")]
    if "translate" in figures:
        t = figures["translate"]
        rows.append(("translate rows/s, 1 core", _rate(t["translate_rows_per_s"]),
                     _rate(t["orjson_rows_per_s"]) + " orjson", f"{t['ratio']:.2f}", ">= 0.5"))
    if "end_to_end" in figures:
        runs = figures["end_to_end"]["contenders"]
        for mode in MODES:
            run = runs[mode]
            for baseline in BASELINES:
                ratios = run["ratios"][baseline]
                rows.append((f"e2e ev/s wall | steady, {mode} vs {_SHORT[baseline]}",
                             f"{_rate(run['events_per_second_wall'])} | "
                             f"{_rate(run['events_per_second_steady'])}",
                             f"{_rate(runs[baseline]['events_per_second_wall'])} | "
                             f"{_rate(runs[baseline]['events_per_second_steady'])}",
                             f"{_times(ratios['wall'])} | {_times(ratios['steady'])}", ">= 5"))
        for mode in MODES:
            rows.append((f"e2e CPU s/100k ev, {mode}", f"{runs[mode]['cpu_per_100k_events']:.1f}",
                         "", "", f"<= {TARGETS['cpu_per_100k_events']:g}"))
        for name, run in runs.items():
            lost = run["missing"] + sum(run["unexpected"].values())
            rows.append((f"delivered/expected, {_SHORT.get(name, name)}",
                         f"{run['events_received']:,}/{run['events_expected']:,}",
                         "", "", "exact" if not lost else f"off by {lost:,}"))
    if "rss" in figures:
        r = figures["rss"]
        rows.append(("peak RSS MB, 200k vs 10k rows", str(r["large"]["peak_rss_mb"]),
                     str(r["small"]["peak_rss_mb"]) + " (10k)", f"{r['peak_rss_ratio']:.3f}",
                     "< 1.3"))
    if "sink" in figures:
        s = figures["sink"]
        rows.append(("WriteToPostHog events/s", f"{s['events_per_second']:,}", "", "", ""))
        rows.append(("WriteToPostHog CPU s/100k ev", str(s["cpu_seconds_per_100k_events"]),
                     "", "", ""))
    if "sparse" in figures:
        s = figures["sparse"]
        rows.append(("kept-alive export request ms", f"{s['keepalive']['nagle_off_ms']:.1f}",
                     f"{s['keepalive']['nagle_on_ms']:.1f} Nagle on", "", ""))
        rows.append((f"sparse hours/s, {s['hours']:,} h, concurrency 4 vs 1",
                     f"{s['concurrency_4']['hours_per_second']:.2f}",
                     f"{s['concurrency_1']['hours_per_second']:.2f}", f"{s['ratio']:.2f}",
                     ">= 3 at 2,000 h"))
    for place, run in figures.get("long_job", {}).items():
        rows.append((f"done-job rerun s, {run['hours']:,} h, {place}",
                     f"{run['rerun_with_index_s']:.1f}",
                     f"{run['rerun_without_index_s']:.1f} no index", "", ""))
    if "floor" in figures:
        f = figures["floor"]
        rows.append(("floor CPU s/100k ev, no Beam", f"{f['cpu_seconds_per_100k_events']:.2f}",
                     "", "", f"<= {TARGETS['cpu_per_100k_events']:g} (2.)"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in SIZES.items():
        parser.add_argument(f"--{name}", type=int, default=default,
                            help=f"default {default}")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    parser.add_argument("--sink_latency_ms", type=float, default=0,
                        help="end to end: delay every request to the sink by this many ms, as a "
                             "distant PostHog would (default 0: loopback as it is)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to PATH as JSON")
    args = parser.parse_args(argv)
    sizes = {name: getattr(args, name) for name in SIZES}
    if any(value < 1 for value in sizes.values()):
        parser.error("sizes must be positive")
    if args.sink_latency_ms < 0:
        parser.error("--sink_latency_ms: expected 0 or more")
    sections = tuple(name.strip() for name in args.sections.split(",") if name.strip())
    try:
        figures = run_all(sizes, sections, say=lambda text: print(text, flush=True),
                          sink_latency_ms=args.sink_latency_ms)
    except ValueError as error:
        parser.error(str(error))
    print()
    print(table(figures))
    if args.json:
        with open(args.json, "wb") as out:
            out.write(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
