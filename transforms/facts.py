"""Per-hour partial aggregates gathered while translating, merged by the job across hours.

The translate stage attaches one hour's facts to that hour's ``HourMarker``; the job merges the
markers' facts with ``merge_facts`` and aggregates the picks below over every hour with
``best_row``. Facts are plain JSON values so markers stay serialisable:

- ``pairs``: ``[[user_id, device_id, earliest_timestamp], ...]`` for every migrated event that
  names both a user and a device (rows that are skipped or dead-lettered link nothing: PostHog
  never sees them). The job links each device to its earliest user (see ``pipeline.people``).
- ``warnings``: ``{kind: count}`` of values PostHog alters on its own: ``distinct_id_too_long``
  and ``distinct_id_nul`` (capture cuts the id to 200 characters, replaces NUL),
  ``event_name_too_long`` (cut to 200), ``group_key_too_long`` (over 400: the group is dropped).
- ``event_names``: ``{posthog_event_name: count}`` of the events sent, to reconcile with PostHog.
- ``days``: ``{"YYYY-MM-DD": {"rows": n, "events": n}}`` by event time (UTC): rows whose time
  parsed, and how many of them became events.

The picks keep one row per key, chosen by a rule that does not depend on the order rows arrive
in, so one hour, a merge of hours and a Beam aggregation over hours all choose the same row:

- ``person_set``: ``[[distinct_id, timestamp, uuid, properties], ...]``: per distinct_id, each
  person property's value on the latest event that sets it: the event's ``$set`` (in the modes
  that put none there, the row's user properties) and the event properties PostHog copies onto
  the person. See ``transforms.person_facts`` for the row layout.
- ``person_set_once``: the same shape: each ``$set_once`` property (the row's ``initial_*`` user
  properties, and PostHog's ``$initial_*`` copies) on the earliest event that sets it.
- ``groups``: ``[[group_type, group_key, timestamp, uuid, distinct_id, properties], ...]``: each
  group's latest event (migrated events and Amplitude ``$groupidentify`` rows), events with
  properties for the group winning over events without.
- ``files``: ``[[hour, file, user_id, line_number, timestamp, device_id, properties], ...]``:
  each user's first event in each export file (lowest line number), gathered only when ``add``
  is given the export line.

Ties on time and uuid (the same row exported twice) are settled by the rows' canonical JSON.
Picks with no rows are left out of ``to_dict`` so that facts stay small.

To add a kind of fact, fill it in ``HourFacts`` and register how two of them merge in
``_MERGERS``; ``merge_facts`` refuses keys it cannot merge rather than keep one side.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import orjson

from transforms.ids import canonical_uuid, name_uuid
from transforms.person_facts import (EARLIEST, LATEST, PersonTable, merge_person_rows,
                                     table_to_rows)
from transforms.posthog_rules import (MAX_DISTINCT_ID_CHARS, MAX_EVENT_NAME_CHARS,
                                      MAX_GROUP_KEY_CHARS, person_updates)
from transforms.records import ExportLine
from transforms.translate import GROUP_IDENTIFY, Translation, row_timestamp, user_and_device

__all__ = [
    "FILES", "GROUPS", "PERSON_SET", "PERSON_SET_ONCE", "PICKS", "WARNINGS", "HourFacts", "best_row",
    "keyed_rows", "merge_facts",
]

PERSON_SET, PERSON_SET_ONCE, GROUPS, FILES = "person_set", "person_set_once", "groups", "files"
WARNINGS = "warnings"


class _Pick(NamedTuple):
    width: int  # how many leading columns are the key
    rank: Callable[[list], tuple]
    highest: bool  # True: the highest rank wins; False: the lowest


PICKS: dict[str, _Pick] = {
    GROUPS: _Pick(2, lambda r: (bool(r[5]), r[2], r[3]), True),
    FILES: _Pick(3, lambda r: (r[3],), False),
}


def _canonical(row: list) -> bytes:
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS)


def _choose(pick: _Pick, a: list, b: list) -> list:
    rank_a, rank_b = pick.rank(a), pick.rank(b)
    if rank_a == rank_b:  # the same event twice: any fixed rule will do, as long as it is total
        rank_a, rank_b = _canonical(a), _canonical(b)
    return a if (rank_a >= rank_b) == pick.highest else b


def best_row(kind: str, rows: Iterable[list]) -> list:
    """The row ``kind``'s rule keeps among ``rows`` (all of one key); for ``CombinePerKey``."""
    pick = PICKS[kind]
    best = None
    for row in rows:
        best = row if best is None else _choose(pick, best, row)
    if best is None:
        raise ValueError(f"best_row: no {kind} rows to choose from")
    return best


def keyed_rows(facts: dict[str, Any], kind: str) -> Iterator[tuple[tuple, list]]:
    """``(key, row)`` for every row of the pick ``kind`` in ``facts``."""
    width = PICKS[kind].width
    for row in facts.get(kind, ()):
        yield tuple(row[:width]), row


def _offer(table: dict, kind: str, key, row: list) -> None:
    current = table.get(key)
    table[key] = row if current is None else _choose(PICKS[kind], current, row)


def _dict_or_empty(value: Any) -> dict:
    return value if type(value) is dict else {}


def _group_keys(keys: Any) -> tuple | list:
    """Amplitude's group value, ``key`` or ``[keys]``, as the string keys PostHog takes."""
    if type(keys) is str:  # the common cases, kept cheap: a key, or a list of one key
        return (keys,) if keys else ()
    if type(keys) is list and len(keys) == 1 and type(keys[0]) is str:
        return keys if keys[0] else ()
    return [key if type(key) is str else str(key)
            for key in (keys if type(keys) is list else (keys,))
            # The same rule as the events' $groups: non-empty strings and numbers.
            if (type(key) is str and key) or type(key) in (int, float)]


class HourFacts:
    """Accumulates the facts of one hour's translations; see the module docstring."""

    __slots__ = ("_pairs", "_event_names", "_days", "_person_set", "_person_set_once",
                 "_groups", "_files", "_warnings")

    def __init__(self) -> None:
        self._pairs: dict[tuple[str, str], str] = {}
        self._event_names: dict[str, int] = {}
        self._days: dict[str, list[int]] = {}
        self._person_set = PersonTable(LATEST)
        self._person_set_once = PersonTable(EARLIEST)
        self._warnings: dict[str, int] = {}
        self._groups: dict[tuple[str, str], list] = {}
        self._files: dict[tuple[str, str, str], list] = {}

    def add(self, translation: Translation, line: ExportLine | None = None) -> None:
        """Count one translation: events, skips and dead letters alike.

        ``line``, the export line translated, is needed only for the ``files`` facts.
        """
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
        if event is None:
            if translation.reason == GROUP_IDENTIFY:
                self._add_group_identify(row, timestamp, *user_and_device(row))
            return
        day[1] += 1
        user_id, device_id = row.get("user_id"), row.get("device_id")
        # Most rows name both with plain strings, which user_and_device would return unchanged.
        if (type(user_id) is not str or type(device_id) is not str or not user_id
                or not device_id or user_id.isspace() or device_id.isspace()):
            user_id, device_id = user_and_device(row)
        if user_id is not None and device_id is not None:
            pair = (user_id, device_id)
            earliest = self._pairs.get(pair)
            # Timestamps share one fixed-width format, so string order is time order.
            if earliest is None or timestamp < earliest:
                self._pairs[pair] = timestamp
        distinct_id = event["distinct_id"]
        if (len(distinct_id) > MAX_DISTINCT_ID_CHARS or len(name) > MAX_EVENT_NAME_CHARS
                or "\x00" in distinct_id):
            self._warn_event(distinct_id, name)
        groups = row.get("groups")
        if groups and type(groups) is dict:
            self._add_groups(groups, row.get("group_properties"), timestamp, event["uuid"],
                             distinct_id)
        self._add_person(event, row, user_id, device_id, line)

    def _warn(self, kind: str, n: int = 1) -> None:
        self._warnings[kind] = self._warnings.get(kind, 0) + n

    def _warn_event(self, distinct_id: str, name: str) -> None:
        if len(distinct_id) > MAX_DISTINCT_ID_CHARS:
            self._warn("distinct_id_too_long")
        if "\x00" in distinct_id:
            self._warn("distinct_id_nul")
        if len(name) > MAX_EVENT_NAME_CHARS:
            self._warn("event_name_too_long")

    def _add_person(self, event: dict, row: dict, user_id: str | None, device_id: str | None,
                    line: ExportLine | None) -> None:
        properties = event["properties"]
        person, once = person_updates(properties)
        explicit = properties.get("$set")
        if type(explicit) is not dict:  # modes that keep user properties out of $set
            explicit = _dict_or_empty(row.get("user_properties"))
            if explicit:
                person = {**person, **explicit}
        stamp = event["timestamp"] + event["uuid"]
        if person:
            self._person_set.add(event["distinct_id"], stamp, person)
        if once:
            self._person_set_once.add(event["distinct_id"], stamp, once)
        if line is not None and user_id is not None:
            key = (line.hour, line.file, user_id)
            known = self._files.get(key)
            # A file's lines arrive in order, so the user's first line is usually kept already:
            # only a line that can win (or tie) builds its row.
            if known is None or line.line_number <= known[3]:
                _offer(self._files, FILES, key, [line.hour, line.file, user_id, line.line_number,
                                                 event["timestamp"], device_id, explicit])

    def _add_groups(self, groups: dict, group_properties: Any, timestamp: str, uuid: str,
                    distinct_id: str) -> None:
        group_properties = _dict_or_empty(group_properties)
        # Amplitude's group identify calls carry their update as {"$set": {...}} for every
        # group of the row; exported events carry {type: {key: {...}}}.
        shared = _dict_or_empty(group_properties.get("$set"))
        table = self._groups
        for group_type, keys in groups.items():
            by_key = _dict_or_empty(group_properties.get(group_type))
            for key in _group_keys(keys):
                if len(key) > MAX_GROUP_KEY_CHARS:
                    self._warn("group_key_too_long")
                properties = by_key.get(key)
                if type(properties) is not dict:
                    properties = shared
                slot = (group_type, key)
                known = table.get(slot)
                # Inline for the common case, a group seen again: rows with groups are many.
                if known is not None:
                    rank, known_rank = ((bool(properties), timestamp, uuid),
                                        (bool(known[5]), known[2], known[3]))
                    if rank < known_rank:
                        continue
                    if rank == known_rank:
                        _offer(table, GROUPS, slot,
                               [group_type, key, timestamp, uuid, distinct_id, properties])
                        continue
                table[slot] = [group_type, key, timestamp, uuid, distinct_id, properties]

    def _add_group_identify(self, row: dict, timestamp: str, user_id: str | None,
                            device_id: str | None) -> None:
        groups = row.get("groups")
        if not groups or type(groups) is not dict:
            return
        distinct_id = user_id or device_id
        if distinct_id is None:
            amplitude_id = row.get("amplitude_id")
            if type(amplitude_id) is str and amplitude_id.isspace():
                amplitude_id = None
            if type(amplitude_id) not in (int, str) or amplitude_id == "":
                return  # a $groupidentify event needs someone to send it as
            distinct_id = f"amplitude:{amplitude_id}"  # as the translation names such rows
        uuid = canonical_uuid(row.get("uuid"))
        if uuid is None:
            try:
                uuid = name_uuid(orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
            except orjson.JSONEncodeError:  # nested deeper than orjson writes
                return
        self._add_groups(groups, row.get("group_properties"), timestamp, uuid, distinct_id)

    def to_dict(self) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "pairs": [[user, device, earliest]
                      for (user, device), earliest in sorted(self._pairs.items())],
            "event_names": dict(sorted(self._event_names.items())),
            "days": {day: {"rows": rows, "events": events}
                     for day, (rows, events) in sorted(self._days.items())},
        }
        if self._warnings:
            facts[WARNINGS] = dict(sorted(self._warnings.items()))
        for kind, people in ((PERSON_SET, self._person_set),
                             (PERSON_SET_ONCE, self._person_set_once)):
            if people:
                facts[kind] = table_to_rows(people)
        for kind, table in ((GROUPS, self._groups), (FILES, self._files)):
            if table:
                facts[kind] = [row for _, row in sorted(table.items())]
        return facts


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


def _merge_picks(kind: str, a: list[list], b: list[list]) -> list[list]:
    table: dict[tuple, list] = {}
    for key, row in (*keyed_rows({kind: a}, kind), *keyed_rows({kind: b}, kind)):
        _offer(table, kind, key, row)
    return [row for _, row in sorted(table.items())]


_MERGERS: dict[str, Callable[[Any, Any], Any]] = {
    "pairs": _merge_pairs,
    "event_names": _merge_counts,
    "days": _merge_days,
    WARNINGS: _merge_counts,
    PERSON_SET: partial(merge_person_rows, LATEST),
    PERSON_SET_ONCE: partial(merge_person_rows, EARLIEST),
    **{kind: partial(_merge_picks, kind) for kind in PICKS},
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
