"""CPU per row of gathering an hour's facts (``HourFacts.add``), next to ``translate_line`` alone.

Facts are gathered for every translated row, so their cost adds to the translation's. Both loops
run chunk by chunk on the same generated rows, each chunk keeping its fastest time over
``repeats`` (a burst of other work on a shared machine then spoils one sample, not the figure).
Run ``python -m benchmarks.bench_facts``.
"""

from __future__ import annotations

import argparse
import time

from benchmarks.bench_translate import _clear_caches
from sandbox.generate import generate_rows
from transforms.facts import HourFacts
from transforms.translate import translate_line

__all__ = ["main", "measure_facts"]


def _translate_only(lines: list[bytes]) -> None:
    for line in lines:
        translate_line(line)


def _translate_and_gather(lines: list[bytes]) -> None:
    facts = HourFacts()
    for line in lines:
        facts.add(translate_line(line))
    facts.to_dict()


def _fastest(function, chunk: list[bytes], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        _clear_caches()
        started = time.thread_time()
        function(chunk)
        best = min(best, time.thread_time() - started)
    return best


def measure_facts(lines: list[bytes], repeats: int = 5, chunk: int = 5000) -> dict[str, float]:
    """µs per row of translation alone and of translation plus facts, and the facts' share."""
    alone = gathered = 0.0
    for start in range(0, len(lines), chunk):
        part = lines[start:start + chunk]
        alone += _fastest(_translate_only, part, repeats)
        gathered += _fastest(_translate_and_gather, part, repeats)
    per_row = 1e6 / len(lines)
    return {"translate_us": alone * per_row, "with_facts_us": gathered * per_row,
            "facts_us": (gathered - alone) * per_row}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30_000, help="Rows to time. Default: 30000.")
    args = parser.parse_args(argv)
    lines = list(generate_rows(args.rows, "20240301T00", 1, seed=7))
    figures = measure_facts(lines)
    print(f"translate_line alone:        {figures['translate_us']:6.2f} µs/row (baseline)")
    print(f"translate_line + facts:      {figures['with_facts_us']:6.2f} µs/row")
    print(f"facts:                       {figures['facts_us']:6.2f} µs/row")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
