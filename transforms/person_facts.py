"""Person properties per distinct_id: each one's latest value, each first-touch value's earliest.

PostHog keeps, for every person property, whatever the last event it processed set, and for
every ``$set_once`` (``$initial_*``) property whatever the first one set; its processing order is
not the events' time order. The job therefore gathers, per distinct_id and per property, the
value of the latest event (by time, then uuid) that sets it and the earliest event that sets it
once, and sends them last in one snapshot (see ``pipeline.people``).

Rows are ``[distinct_id, timestamp, uuid, {property: value, ...}]``: the properties an event
won, so a distinct_id has one row per event that still holds the latest (or earliest) value of
some property, usually one. Rows of any hours merge with ``merge_person_rows`` into the same
rows whatever the order, so one hour, a merge of hours and a Beam aggregation all agree.
"""

from __future__ import annotations

from typing import Iterable

import orjson

__all__ = ["LATEST", "EARLIEST", "PersonTable", "merge_person_rows", "rows_to_table",
           "table_to_rows"]

LATEST, EARLIEST = True, False


def _tie_break(a, b, latest: bool):
    """Two values of one property from the same event (exported twice): a fixed, total rule."""
    first, second = orjson.dumps(a, option=orjson.OPT_SORT_KEYS), orjson.dumps(
        b, option=orjson.OPT_SORT_KEYS)
    return a if (first >= second) == latest else b


class PersonTable:
    """``{distinct_id: {property: (stamp, value)}}`` keeping the latest or the earliest stamp.

    A stamp is the event's timestamp followed by its uuid: both have one fixed width, so string
    order is (time, uuid) order.
    """

    __slots__ = ("latest", "by_id")

    def __init__(self, latest: bool):
        self.latest = latest
        self.by_id: dict[str, dict[str, tuple[str, object]]] = {}

    def add(self, distinct_id: str, stamp: str, properties: dict) -> None:
        table = self.by_id.get(distinct_id)
        if table is None:
            self.by_id[distinct_id] = {key: (stamp, value) for key, value in properties.items()}
            return
        latest = self.latest
        for key, value in properties.items():
            known = table.get(key)
            if known is None or (stamp > known[0] if latest else stamp < known[0]):
                table[key] = (stamp, value)
            elif stamp == known[0] and value != known[1]:
                table[key] = (stamp, _tie_break(value, known[1], latest))

    def add_table(self, other: "PersonTable") -> None:
        for distinct_id, table in other.by_id.items():
            for key, (stamp, value) in table.items():
                self.add(distinct_id, stamp, {key: value})

    def __bool__(self) -> bool:
        return bool(self.by_id)


def table_to_rows(table: PersonTable) -> list[list]:
    """The table as fact rows, sorted by distinct_id and stamp."""
    rows = []
    for distinct_id in sorted(table.by_id):
        by_stamp: dict[str, dict] = {}
        for key, (stamp, value) in table.by_id[distinct_id].items():
            by_stamp.setdefault(stamp, {})[key] = value
        for stamp in sorted(by_stamp):
            properties = dict(sorted(by_stamp[stamp].items()))
            rows.append([distinct_id, stamp[:-36], stamp[-36:], properties])
    return rows


def rows_to_table(rows: Iterable[list], latest: bool,
                  table: PersonTable | None = None) -> PersonTable:
    """Adds fact rows to ``table`` (a new one when None) and returns it."""
    table = PersonTable(latest) if table is None else table
    for distinct_id, timestamp, uuid, properties in rows:
        table.add(distinct_id, timestamp + uuid, properties)
    return table


def merge_person_rows(latest: bool, a: list[list], b: list[list]) -> list[list]:
    """Rows of two sets of hours as one; neither input is changed."""
    return table_to_rows(rows_to_table(b, latest, rows_to_table(a, latest)))
