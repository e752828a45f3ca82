"""The 15 real export rows, each pinned to its full PostHog event (or its skip reason).

``tests/data/amplitude_export_expected.json`` was generated once from the translation and then
checked by hand against the rules in docs/mapping.md; a change to any field of any of these events
fails here and has to be justified by a change of rule.
"""

from pathlib import Path

import orjson
import pytest

from transforms.translate import translate_line

DATA = Path(__file__).parent / "data"
LINES = (DATA / "amplitude_export_rows.jsonl").read_bytes().splitlines()
EXPECTED = {entry["line"]: entry
            for entry in orjson.loads((DATA / "amplitude_export_expected.json").read_bytes())}


def test_every_fixture_row_has_an_expected_outcome():
    assert len(LINES) == 15
    assert sorted(EXPECTED) == list(range(1, 16))


@pytest.mark.parametrize("number", range(1, 16))
def test_fixture_row_translates_to_its_pinned_outcome(number):
    translation = translate_line(LINES[number - 1])
    expected = EXPECTED[number]
    assert translation.row == orjson.loads(LINES[number - 1])
    if "event" in expected:
        assert (translation.reason, translation.dead) == (None, False)
        assert translation.event == expected["event"]
        # The event must survive the trip to PostHog's JSON unchanged.
        assert orjson.loads(orjson.dumps(translation.event)) == expected["event"]
    else:
        assert translation.event is None
        assert (translation.reason, translation.dead) == (expected["reason"], expected["dead"])


def _events():
    return {n: e["event"] for n, e in EXPECTED.items() if "event" in e}


def test_fixtures_cover_web_and_mobile_rows():
    events = _events()
    assert events[14]["properties"]["$browser"] == "Chrome"
    assert events[14]["properties"]["$os"] == "Mac OS"
    assert events[3]["properties"]["$os"] == "iOS"
    assert "$browser" not in events[3]["properties"]


def test_fixtures_cover_session_and_sessionless_rows():
    events = _events()
    assert events[3]["properties"]["$amplitude_session_id"] == 1751390294370
    assert "$session_id" not in events[5]["properties"]  # session_id -1: server-side event


def test_shared_device_keeps_one_session_across_its_two_users():
    events = _events()
    assert events[3]["distinct_id"] != events[10]["distinct_id"]
    assert events[3]["properties"]["$device_id"] == events[10]["properties"]["$device_id"]
    assert events[3]["properties"]["$session_id"] == events[10]["properties"]["$session_id"]


def test_fixtures_cover_groups_as_lists():
    assert _events()[15]["properties"]["$groups"] == {
        "[Segment] Group": "e04e2790-599c-11ea-8dff-0ed25467b33f"}


def test_insert_ids_that_are_not_uuids_do_not_matter_when_the_row_has_a_uuid():
    row = orjson.loads(LINES[4])
    assert row["$insert_id"] == "Property Pre-Order Submitted:1"
    assert _events()[5]["uuid"] == row["uuid"]
