"""PersonTable against the plain rule it speeds up: per property, the latest (or earliest) stamp."""

import random

import pytest

from transforms.person_facts import EARLIEST, LATEST, PersonTable, merge_person_rows, table_to_rows


def _plain(events, latest):
    kept = {}
    for distinct_id, stamp, properties in events:
        for key, value in properties.items():
            known = kept.get((distinct_id, key))
            if known is None or (stamp > known[0] if latest else stamp < known[0]):
                kept[(distinct_id, key)] = (stamp, value)
    return kept


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("latest", [LATEST, EARLIEST])
def test_any_arrival_order_keeps_each_propertys_extreme_value(seed, latest):
    rng = random.Random(seed)
    events = []
    for n in range(300):
        stamp = f"2024-03-0{rng.randint(1, 9)}T00:00:00.000000Z" + f"{n:036d}"
        keys = rng.sample("abcdefgh", rng.randint(1, 8))
        events.append((rng.choice("xyz"), stamp, {k: f"{k}{n}" for k in keys}))
    events.sort(key=lambda e: e[1])
    if seed % 3 == 1:
        events.reverse()
    elif seed % 3 == 2:
        rng.shuffle(events)
    table = PersonTable(latest)
    before = [dict(event[2]) for event in events]
    for event in events:
        table.add(*event)
    # The table keeps the callers' dicts without copying them, so it must never change them.
    assert [event[2] for event in events] == before
    got = {(d, k): kept for d in table.distinct_ids() for k, kept in table.values(d).items()}
    assert got == _plain(events, latest)
    # Split anywhere, the rows of the parts merge into the rows of the whole.
    cut = rng.randrange(len(events))
    parts = []
    for half in (events[:cut], events[cut:]):
        part = PersonTable(latest)
        for event in half:
            part.add(*event)
        parts.append(table_to_rows(part))
    assert merge_person_rows(latest, *parts) == table_to_rows(table)


def test_the_same_event_twice_with_other_values_settles_the_same_way_in_any_order():
    stamp = "2024-03-01T00:00:00.000000Z" + "1" * 36
    for latest in (LATEST, EARLIEST):
        results = set()
        for first, second in (("a", "b"), ("b", "a")):
            table = PersonTable(latest)
            table.add("x", stamp, {"k": first})
            table.add("x", stamp, {"k": second})
            results.add(table.values("x")["k"])
        assert len(results) == 1
