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
    """Per distinct_id, each property's value and stamp: the latest stamp, or the earliest.

    A stamp is the event's timestamp followed by its uuid: both have one fixed width, so string
    order is (time, uuid) order. ``values(distinct_id)`` gives ``{property: (stamp, value)}``.
    """

    __slots__ = ("latest", "_by_id")

    def __init__(self, latest: bool):
        self.latest = latest
        # distinct_id -> [values, stamps, lowest stamp, highest stamp, front]: ``front`` is the
        # properties of the event at the winning extreme (the highest stamp when keeping the
        # latest), which no other event can beat. Most events of an hour come in time order,
        # and those update whole dicts at once, in C; the others look only at the properties
        # outside the front.
        self._by_id: dict[str, list] = {}

    def add(self, distinct_id: str, stamp: str, properties: dict) -> None:
        slot = self._by_id.get(distinct_id)
        if slot is None:
            self._by_id[distinct_id] = [dict(properties), dict.fromkeys(properties, stamp),
                                        stamp, stamp, properties]
            return
        values, stamps, lowest, highest, front = slot
        latest = self.latest
        if stamp > highest if latest else stamp < lowest:
            # Beyond every value kept: each of its properties replaces, and they are the front.
            values.update(properties)
            stamps.update(dict.fromkeys(properties, stamp))
            slot[4] = properties
        elif stamp < lowest if latest else stamp > highest:
            for key in properties.keys() - values.keys():  # it only fills what is missing
                values[key] = properties[key]
                stamps[key] = stamp
        else:
            edge = highest if latest else lowest
            # The same event twice settles ties on the values, so it looks at every property.
            keys = properties.keys() if stamp == edge else properties.keys() - front.keys()
            for key in keys:
                value = properties[key]
                known = stamps.get(key)
                if known is None or (stamp > known if latest else stamp < known):
                    values[key] = value
                    stamps[key] = stamp
                elif stamp == known and value != values[key]:
                    values[key] = _tie_break(value, values[key], latest)
        if stamp < lowest:
            slot[2] = stamp
        if stamp > highest:
            slot[3] = stamp

    def add_table(self, other: "PersonTable") -> None:
        for distinct_id in other.distinct_ids():
            for key, (stamp, value) in other.values(distinct_id).items():
                self.add(distinct_id, stamp, {key: value})

    def distinct_ids(self) -> list[str]:
        return list(self._by_id)

    def values(self, distinct_id: str) -> dict[str, tuple[str, object]]:
        slot = self._by_id.get(distinct_id)
        if slot is None:
            return {}
        values, stamps = slot[0], slot[1]
        return {key: (stamps[key], value) for key, value in values.items()}

    def __bool__(self) -> bool:
        return bool(self._by_id)


def table_to_rows(table: PersonTable) -> list[list]:
    """The table as fact rows, sorted by distinct_id and stamp."""
    rows = []
    for distinct_id in sorted(table.distinct_ids()):
        by_stamp: dict[str, dict] = {}
        for key, (stamp, value) in table.values(distinct_id).items():
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
