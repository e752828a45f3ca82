"""The generated stage's combines: PersonSnapshots against the in-memory snapshots of the merged
facts (``snapshots_of``) on generated rows over many hours, and ChooseIdentities' counts."""

import collections

import apache_beam as beam
import orjson
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.people import (ChooseIdentities, PersonSnapshots, _PersonFactsFn, owners_of,
                             person_fact_rows, snapshots_of)
from sandbox.generate import generate_rows_by_hour
from transforms.facts import HourFacts, merge_facts
from transforms.settings import TranslationSettings
from transforms.translate import translate_line


def _hour_facts(rows: int, hours: int, seed: int) -> list[dict]:
    settings = TranslationSettings.from_flags()
    by_hour: dict[str, HourFacts] = collections.defaultdict(HourFacts)
    for hour, line in generate_rows_by_hour(rows, "20240301T00", hours, seed=seed):
        by_hour[hour].add(translate_line(line, settings))
    return [facts.to_dict() for _, facts in sorted(by_hour.items())]


def _json(events: list[dict]) -> list[bytes]:
    return [orjson.dumps(event, option=orjson.OPT_SORT_KEYS) for event in events]


@pytest.mark.parametrize("seed", [3, 11])
def test_combined_per_distinct_id_the_snapshots_are_those_of_the_merged_facts(seed):
    hours = _hour_facts(3000, 12, seed)
    merged = hours[0]
    for facts in hours[1:]:
        merged = merge_facts(merged, facts)
    owners = owners_of(merged["pairs"])
    expected = snapshots_of(merged, owners)
    assert len(expected) > 100
    owned = [(device, user) for device, (_, user) in owners.items()]
    # One bundle per hour's facts, so the lifted combine meets each distinct_id many times.
    with BeamTestPipeline() as pipeline:
        rows = (pipeline
                | "Hours" >> beam.Create(hours, reshuffle=True)
                | "Rows" >> beam.FlatMap(person_fact_rows))
        snapshots = rows | PersonSnapshots(pipeline | "Owners" >> beam.Create(owned))
        assert_that(snapshots | beam.Map(lambda e: orjson.dumps(e, option=orjson.OPT_SORT_KEYS)),
                    equal_to(_json(expected)))


def test_accumulators_merge_the_same_in_any_grouping():
    fn = _PersonFactsFn()
    hours = _hour_facts(1500, 8, 5)
    by_id: dict[str, list] = collections.defaultdict(list)
    for facts in hours:
        for distinct_id, rows in person_fact_rows(facts):
            by_id[distinct_id].append(rows)
    for parts in list(by_id.values())[:200]:
        whole = fn.create_accumulator()
        for rows in parts:
            whole = fn.add_input(whole, rows)
        # Each part on its own accumulator, compacted as if it had crossed a shuffle, merged
        # backwards: the same rows as adding them all to one.
        pieces = [fn.compact(fn.add_input(fn.create_accumulator(), rows)) for rows in parts]
        assert fn.extract_output(fn.merge_accumulators(reversed(pieces))) == \
            fn.extract_output(whole)


def test_choose_identities_counts_each_pair_once_at_its_earliest():
    sightings = [
        ("kiosk", ("alice", "2024-03-01T09:00:00.000000Z")),
        ("kiosk", ("alice", "2024-03-01T08:00:00.000000Z")),  # the same pair, an hour earlier
        ("kiosk", ("bob", "2024-03-01T08:30:00.000000Z")),
        ("kiosk", ("anonymous", "2024-03-01T07:00:00.000000Z")),  # never merged, though first
        ("laptop", ("carol", "2024-03-02T10:00:00.000000Z")),
        ("same", ("same", "2024-03-02T10:00:00.000000Z")),
    ]
    with BeamTestPipeline() as pipeline:
        identities = (pipeline
                      | beam.Create(sightings, reshuffle=True)
                      | ChooseIdentities())
        assert_that(identities.owners, equal_to([("kiosk", "alice"), ("laptop", "carol")]),
                    label="Owners")
        assert_that(identities.events | beam.Map(lambda e: (e["distinct_id"], e["timestamp"])),
                    equal_to([("alice", "2024-03-01T08:00:00.000000Z"),
                              ("carol", "2024-03-02T10:00:00.000000Z")]), label="Events")
        assert_that(identities.counts, equal_to([
            ("pairs_seen", 5), ("identify_sent", 2), ("devices_shared", 1),
            ("not_merged:shared_device", 1), ("not_merged:illegal_user_id", 1),
            ("not_merged:same_id", 1)]), label="Counts")
