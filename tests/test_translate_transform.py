"""TranslateToPostHog in a pipeline, its DoFn's ordering of markers, and the per-hour facts."""

import base64
from pathlib import Path

import apache_beam as beam
import orjson
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.facts import HourFacts, merge_facts
from transforms.records import DONE, EMPTY, DeadLetter, ExportLine, HourMarker
from transforms.settings import TranslationSettings
from transforms.transform import (DEAD_LETTER, EVENTS, METRICS_NAMESPACE, SKIPPED,
                                  TranslateToPostHog, _TranslateFn)
from transforms.translate import translate_line

LINES = (Path(__file__).parent / "data" / "amplitude_export_rows.jsonl").read_bytes().splitlines()
BAD = b"\xff not json"
BAD_BASE64 = base64.b64encode(BAD).decode()  # the letter keeps the bytes that are not UTF-8
NO_IDENTITY = orjson.dumps({**orjson.loads(LINES[4]), "user_id": None, "device_id": None,
                            "amplitude_id": None})
HOUR_A, HOUR_B, HOUR_C = "20250701T17", "20201124T10", "20201124T11"


def line(hour, number, raw):
    return ExportLine(hour=hour, file=f"636686_{hour}#0.json", line_number=number, line=raw)


# Hour A: two session markers, three events, one line that is not JSON. Hour B: two events.
# Hour C: nothing (its marker arrives with status EMPTY).
ELEMENTS = [
    line(HOUR_A, 1, LINES[0]), line(HOUR_A, 2, LINES[1]), line(HOUR_A, 3, LINES[2]),
    line(HOUR_A, 4, BAD), line(HOUR_A, 5, LINES[9]), line(HOUR_A, 6, LINES[10]),
    HourMarker(HOUR_A, DONE, counts={"rows_read": 6}),
    line(HOUR_B, 1, LINES[13]), line(HOUR_B, 2, LINES[14]),
    HourMarker(HOUR_B, DONE, counts={"rows_read": 2}),
    HourMarker(HOUR_C, EMPTY),
]


def events_of(*raw_lines):
    return [translate_line(raw).event for raw in raw_lines]


def facts_of(*raw_lines):
    facts = HourFacts()
    for raw in raw_lines:
        facts.add(translate_line(raw))
    return facts.to_dict()


def expected_markers():
    return [
        HourMarker(HOUR_A, DONE, counts={"rows_read": 6, "events": 3, "skipped:session_marker": 2,
                                         "dead:invalid_json": 1},
                   facts=facts_of(LINES[0], LINES[1], LINES[2], BAD, LINES[9], LINES[10]),
                   # The hour's dead letters ride on its marker to the ledger.
                   letters=(DeadLetter("invalid_json", "translate", HOUR_A, f"636686_{HOUR_A}#0.json",
                                       4, BAD.decode("utf-8", errors="replace"),
                                       translate_line(BAD).detail, BAD_BASE64),)),
        HourMarker(HOUR_B, DONE, counts={"rows_read": 2, "events": 2},
                   facts=facts_of(LINES[13], LINES[14])),
        HourMarker(HOUR_C, EMPTY, counts={"events": 0},
                   facts={"pairs": [], "event_names": {}, "days": {}}),
    ]


def test_translate_to_posthog_in_a_pipeline():
    with BeamTestPipeline() as pipeline:
        # reshuffle=False keeps Create's order, as the source's fused chain does.
        outputs = (pipeline | beam.Create(ELEMENTS, reshuffle=False)
                   | TranslateToPostHog(TranslationSettings()))
        assert_that(outputs[EVENTS], equal_to(
            events_of(LINES[2], LINES[9], LINES[10], LINES[13], LINES[14]) + expected_markers()))
        assert_that(outputs[DEAD_LETTER], equal_to([DeadLetter(
            reason="invalid_json", stage="translate", hour=HOUR_A, file=f"636686_{HOUR_A}#0.json",
            line_number=4, payload="\ufffd not json", detail=translate_line(BAD).detail,
            payload_base64=BAD_BASE64)]),
            label="DeadLetters")
        assert_that(outputs[SKIPPED] | beam.Map(lambda r: (r.reason, r.line_number,
                                                          r.payload[:20])),
                    equal_to([("session_marker", 1, LINES[0][:20].decode()),
                              ("session_marker", 2, LINES[1][:20].decode())]),
                    label="Skipped")

    counters = {result.key.metric.name: result.committed for result in pipeline.result.metrics()
                .query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]}
    assert counters == {"rows_translated": 5, "skipped_session_marker": 2,
                        "dead_lettered_invalid_json": 1}


def test_lines_without_a_marker_are_just_translated():
    with BeamTestPipeline() as pipeline:
        outputs = (pipeline | beam.Create([line(HOUR_B, 1, LINES[13]), line(HOUR_B, 2, NO_IDENTITY)])
                   | TranslateToPostHog())
        assert_that(outputs[EVENTS], equal_to(events_of(LINES[13])))
        assert_that(outputs[DEAD_LETTER] | beam.Map(lambda r: (r.reason, r.line_number)),
                    equal_to([("missing_identity", 2)]), label="DeadLetters")


def run_fn(elements, settings=None):
    """The DoFn's outputs in emission order, as (tag, value)."""
    fn = _TranslateFn(settings or TranslationSettings())
    fn.setup()
    outputs = []
    for element in elements:
        for output in fn.process(element):
            tag = getattr(output, "tag", EVENTS)
            outputs.append((tag, getattr(output, "value", output)))
    return outputs


def test_each_marker_follows_its_hours_events_with_that_hours_counts():
    outputs = run_fn(ELEMENTS)
    events = [value for tag, value in outputs if tag == EVENTS]
    kinds = ["marker" if isinstance(value, HourMarker) else value["event"] for value in events]
    assert kinds == ["Screen: Onboarding", "Screen: Property Drops", "Viewed Hero Section Card",
                     "marker", "segment.segment.definition.permission_paywall.load",
                     "segment.admin.users.paywall.load", "marker", "marker"]
    assert [value for value in events if isinstance(value, HourMarker)] == expected_markers()


def test_hours_interleaved_in_one_chain_keep_separate_counts():
    outputs = run_fn([line(HOUR_A, 1, LINES[2]), line(HOUR_B, 1, LINES[13]),
                      line(HOUR_A, 2, BAD), HourMarker(HOUR_B, DONE), HourMarker(HOUR_A, DONE)],
                     TranslationSettings.from_flags(ignore_event=["Screen: Onboarding"]))
    markers = {value.hour: value.counts for _, value in outputs if isinstance(value, HourMarker)}
    assert markers == {HOUR_B: {"events": 1},
                       HOUR_A: {"events": 0, "skipped:ignored": 1, "dead:invalid_json": 1}}
    assert [tag for tag, _ in outputs].count(SKIPPED) == 1


def test_a_marker_keeps_facts_an_earlier_stage_attached():
    marker = HourMarker(HOUR_B, DONE, facts={"persons": {"kept": True}})
    [(_, event), (_, stamped)] = run_fn([line(HOUR_B, 1, LINES[13]), marker])
    assert stamped.facts["persons"] == {"kept": True}
    assert stamped.facts["event_names"] == {event["event"]: 1}


def test_unknown_elements_and_settings_are_refused():
    with pytest.raises(TypeError, match="ExportLine or HourMarker"):
        run_fn([b"raw bytes"])
    with pytest.raises(ValueError, match="settings"):
        TranslateToPostHog({"ignore_event": ["x"]})


# Facts.

def test_hour_facts_of_the_fixture_rows():
    facts = facts_of(*LINES, BAD, NO_IDENTITY)
    assert facts["pairs"] == [
        ["121be140-f1f5-11ea-9448-0eefc8c718cd", "a27908c8-2c4b-46f6-8a13-8202ef6f965c",
         "2020-11-24T10:59:55.754000Z"],
        ["1fa23f90-c215-11ea-a639-02ed1811fa3b", "a1c9357b-b104-41c5-b4be-2b411489123d",
         "2020-11-24T09:59:55.977000Z"],
        ["2af0ffc4-f501-4aa3-9b5d-9ba41ced3b2c", "6B498BEE-1DE4-4E19-8F78-643206F0896A",
         "2025-07-01T17:18:41.363000Z"],
        ["2af0ffc4-f501-4aa3-9b5d-9ba41ced3b2c", "ba776225-cd1a-5f37-aed3-c525a2cf50f1",
         "2025-07-01T16:34:53.084000Z"],
        ["2b59c518-dc2b-43f6-9444-85a84d5b1e1f", "f48913e6-c106-5429-a296-9f9588859c3b",
         "2025-07-01T16:34:54.837000Z"],
        # The earliest sighting is a skipped session_end: PostHog never sees it, so the pair
        # dates from the user's first migrated event on the device.
        ["84141a73-afd2-4a8a-a2e6-e6f658b995bc", "6B498BEE-1DE4-4E19-8F78-643206F0896A",
         "2025-07-01T17:18:23.621000Z"],
    ]
    assert facts["event_names"] == {
        "Property Drop Purchased": 1, "Property Pre-Order Completed": 1,
        "Property Pre-Order Submitted": 4, "Screen: Login": 1, "Screen: Onboarding": 1,
        "Screen: Property Drops": 1, "Viewed Hero Section Card": 1, "Viewed Property Drop": 1,
        "segment.admin.users.paywall.load": 1,
        "segment.segment.definition.permission_paywall.load": 1}
    # The row without identity still counts as a row of its day; the line that is not JSON not.
    assert facts["days"] == {"2020-11-24": {"rows": 2, "events": 2},
                             "2025-06-30": {"rows": 1, "events": 0},
                             "2025-07-01": {"rows": 13, "events": 11}}
    assert orjson.loads(orjson.dumps(facts)) == facts


def test_rows_without_a_parseable_time_add_nothing():
    row = {**orjson.loads(LINES[4]), "event_time": None, "client_event_time": "x",
           "server_received_time": None}
    assert facts_of(orjson.dumps(row)) == {"pairs": [], "event_names": {}, "days": {}}


def test_merging_facts_equals_gathering_them_at_once():
    everything = facts_of(*LINES)
    first, second = facts_of(*LINES[:7]), facts_of(*LINES[7:])
    assert merge_facts(first, second) == everything
    assert merge_facts(second, first) == everything
    assert merge_facts(everything, everything)["pairs"] == everything["pairs"]
    assert merge_facts(everything, everything)["days"]["2025-07-01"] == {"rows": 24, "events": 22}
    assert first == facts_of(*LINES[:7])  # inputs unchanged


def test_merge_facts_keeps_one_sided_keys_and_refuses_unknown_shared_ones():
    assert merge_facts({"pairs": []}, {"later": 1}) == {"pairs": [], "later": 1}
    with pytest.raises(ValueError, match="'later'"):
        merge_facts({"later": 1}, {"later": 2})
