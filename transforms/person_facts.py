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
        # distinct_id -> [values, stamps, lowest stamp, highest stamp, front]. ``front`` is the
        # properties of the event at the winning extreme (the highest stamp when keeping the
        # latest, the "edge"), which no other event can beat. ``stamps`` None means every value
        # is the edge event's: ``values`` is then ``front`` itself, shared with the caller and
        # never changed. Most distinct_ids of an hour have one event, or events that each set
        # the same properties in time order, so they stay that way: no copy and no per-property
        # stamps, and one fact row each. The others look only at properties outside the front.
        self._by_id: dict[str, list] = {}

    def add(self, distinct_id: str, stamp: str, properties: dict) -> None:
        """Offer ``properties`` set at ``stamp``; ``properties`` is kept, not copied: callers
        must not change it afterwards."""
        slot = self._by_id.get(distinct_id)
        if slot is None:
            self._by_id[distinct_id] = [properties, None, stamp, stamp, properties]
            return
        values, stamps, lowest, highest, front = slot
        latest = self.latest
        if stamp > highest if latest else stamp < lowest:
            # Beyond every value kept: each of its properties replaces, and they are the front.
            if stamps is None and properties.keys() >= values.keys():
                slot[0] = properties
            else:
                if stamps is None:
                    values, stamps = _own(slot, highest if latest else lowest)
                values.update(properties)
                stamps.update(dict.fromkeys(properties, stamp))
            slot[4] = properties
        else:
            edge = highest if latest else lowest
            if stamps is None:
                if stamp != edge and properties.keys() <= values.keys():
                    _widen(slot, stamp)  # every property already holds a value that beats it
                    return
                values, stamps = _own(slot, edge)
            if stamp < lowest if latest else stamp > highest:
                for key in properties.keys() - values.keys():  # it only fills what is missing
                    values[key] = properties[key]
                    stamps[key] = stamp
            else:
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
        _widen(slot, stamp)

    def distinct_ids(self) -> list[str]:
        return list(self._by_id)

    def values(self, distinct_id: str) -> dict[str, tuple[str, object]]:
        slot = self._by_id.get(distinct_id)
        if slot is None:
            return {}
        values, stamps = slot[0], slot[1]
        if stamps is None:
            edge = slot[3] if self.latest else slot[2]
            return {key: (edge, value) for key, value in values.items()}
        return {key: (stamps[key], value) for key, value in values.items()}

    def by_stamp(self, distinct_id: str) -> list[tuple[str, dict]]:
        """``(stamp, {property: value})`` of each stamp that holds some value, by stamp."""
        slot = self._by_id.get(distinct_id)
        if slot is None:
            return []
        values, stamps = slot[0], slot[1]
        if stamps is None:
            return [(slot[3] if self.latest else slot[2], values)]
        grouped: dict[str, dict] = {}
        for key, value in values.items():
            stamp = stamps[key]
            group = grouped.get(stamp)
            if group is None:
                grouped[stamp] = {key: value}
            else:
                group[key] = value
        return sorted(grouped.items())

    def __bool__(self) -> bool:
        return bool(self._by_id)


def _own(slot: list, edge: str) -> tuple[dict, dict]:
    """Gives a slot whose values are all the edge event's a copy and stamps of its own."""
    values = slot[0] = dict(slot[0])
    stamps = slot[1] = dict.fromkeys(values, edge)
    return values, stamps


def _widen(slot: list, stamp: str) -> None:
    if stamp < slot[2]:
        slot[2] = stamp
    if stamp > slot[3]:
        slot[3] = stamp


def table_to_rows(table: PersonTable) -> list[list]:
    """The table as fact rows, sorted by distinct_id and stamp."""
    rows = []
    for distinct_id in sorted(table.distinct_ids()):
        # by_stamp gives a distinct_id whose values are all one event's as that event's dict.
        for stamp, properties in table.by_stamp(distinct_id):
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
