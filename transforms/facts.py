"""Per-hour partial aggregates gathered while translating, merged by the job across hours.

The translate stage attaches one hour's facts to that hour's ``HourMarker``; the job merges the
markers' facts with ``merge_facts``. Facts are plain JSON values so markers stay serialisable:

- ``pairs``: ``[[user_id, device_id, earliest_timestamp], ...]`` for every row (migrated or not)
  that names both a user and a device and has a parseable time. The job links each device to
  its user with an ``$identify`` event at that earliest time.
- ``event_names``: ``{posthog_event_name: count}`` of the events sent, to reconcile with PostHog.
- ``days``: ``{"YYYY-MM-DD": {"rows": n, "events": n}}`` by event time (UTC): rows whose time
  parsed, and how many of them became events.

To add a kind of fact, fill it in ``HourFacts`` and register how two of them merge in
``_MERGERS``; ``merge_facts`` refuses keys it cannot merge rather than keep one side.
"""

from __future__ import annotations

from typing import Any, Callable

from transforms.translate import Translation, row_timestamp, user_and_device

__all__ = ["HourFacts", "merge_facts"]


class HourFacts:
    """Accumulates the facts of one hour's translations; see the module docstring."""

    __slots__ = ("_pairs", "_event_names", "_days")

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, str], str] = {}
        self._event_names: dict[str, int] = {}
        self._days: dict[str, list[int]] = {}

    def add(self, translation: Translation) -> None:
        """Count one translation: events, skips and dead letters alike."""
        row = translation.row
        if row is None:  # not even a JSON object: nothing to learn from it
            return
        event = translation.event
        if event is not None:
            timestamp = event["timestamp"]
            name = event["event"]
            self._event_names[name] = self._event_names.get(name, 0) + 1
        else:
            timestamp = row_timestamp(row)
            if timestamp is None:
                return
        day = self._days.get(timestamp[:10])
        if day is None:
            day = self._days[timestamp[:10]] = [0, 0]
        day[0] += 1
        if event is not None:
            day[1] += 1
        user_id, device_id = user_and_device(row)
        if user_id is not None and device_id is not None:
            pair = (user_id, device_id)
            earliest = self._pairs.get(pair)
            # Timestamps share one fixed-width format, so string order is time order.
            if earliest is None or timestamp < earliest:
                self._pairs[pair] = timestamp

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs": [[user, device, earliest]
                      for (user, device), earliest in sorted(self._pairs.items())],
            "event_names": dict(sorted(self._event_names.items())),
            "days": {day: {"rows": rows, "events": events}
                     for day, (rows, events) in sorted(self._days.items())},
        }


def _merge_pairs(a: list[list[str]], b: list[list[str]]) -> list[list[str]]:
    earliest: dict[tuple[str, str], str] = {}
    for user, device, timestamp in (*a, *b):
        known = earliest.get((user, device))
        if known is None or timestamp < known:
            earliest[(user, device)] = timestamp
    return [[user, device, timestamp] for (user, device), timestamp in sorted(earliest.items())]


def _merge_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    merged = dict(a)
    for name, count in b.items():
        merged[name] = merged.get(name, 0) + count
    return dict(sorted(merged.items()))


def _merge_days(a: dict[str, dict[str, int]],
                b: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    merged = {day: dict(counts) for day, counts in a.items()}
    for day, counts in b.items():
        merged[day] = _merge_counts(merged.get(day, {}), counts)
    return dict(sorted(merged.items()))


_MERGERS: dict[str, Callable[[Any, Any], Any]] = {
    "pairs": _merge_pairs,
    "event_names": _merge_counts,
    "days": _merge_days,
}


def merge_facts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Facts of two sets of hours as one; neither input is changed. Order does not matter."""
    merged = dict(a)
    for key, value in b.items():
        if key not in merged:
            merged[key] = value
            continue
        merger = _MERGERS.get(key)
        if merger is None:
            raise ValueError(f"facts: no rule to merge {key!r}; register one in _MERGERS")
        merged[key] = merger(merged[key], value)
    return merged
