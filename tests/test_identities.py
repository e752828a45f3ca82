"""Identities and persons as PostHog applies them: the job's events through a model of PostHog's
person processing (sandbox.persons), in several orders PostHog may process them in."""

import random

import pytest

from pipeline.people import merge_refusal, snapshot_events
from pipeline.snapshots import file_identify_event
from sandbox.persons import PersonModel, interleave
from tests.e2e import (Export, assert_persons_as_amplitude_had_them, cli_args, report, run_cli,
                       servers)
from tests.people_rows import person, row
from tests.test_persons_model import ILLEGAL
from transforms.person_facts import EARLIEST, LATEST

pytestmark = pytest.mark.timeout(300)

HOURS = ["20240305T10", "20240305T11", "20240305T12"]
SIX_TYPES = {f"type{n}": f"key{n}" for n in range(1, 7)}

ROWS = [
    # A kiosk shared by three users, used anonymously first: its history is alice's.
    row("2024-03-01 08:00:00", user=None, device="kiosk", user_properties=person("walk-in"),
        event_properties={"utm_source": "flyer"}),
    row("2024-03-01 09:00:00", user="alice", device="kiosk", user_properties=person("free")),
    row("2024-03-01 10:00:00", user="bob", device="kiosk", user_properties=person("free")),
    row("2024-03-01 11:00:00", user="carol", device="kiosk", user_properties=person("free")),
    row("2024-03-02 09:00:00", user="bob", device="bob-phone", user_properties=person("pro"),
        platform="iOS", os_name="ios", os_version="17.1", device_model="iPhone"),
    # An anonymous laptop with person properties on its events, then its user, then more
    # anonymous use: utm_source and $browser_version end with the latest, $initial_* with the
    # earliest, whichever distinct_id carried them.
    row("2024-03-01 07:00:00", user=None, device="dana-laptop",
        user_properties=person("trial", "ads.example", coupon="X"),
        event_properties={"utm_source": "ads", "$current_url": "https://a.example/"}),
    row("2024-03-02 07:00:00", user="dana", device="dana-laptop", user_properties=person("pro"),
        event_properties={"utm_source": "mail"}),
    row("2024-03-03 07:00:00", user=None, device="dana-laptop", os_version="130",
        event_properties={"$current_url": "https://b.example/"}),
    # A user whose only rows are a session marker and a dead letter: no $identify.
    row("2024-03-01 12:00:00", user="ghost", device="ghost-phone", event_type="session_start"),
    row("2024-03-01 12:01:00", user="ghost", device="ghost-phone", event_properties="oops"),
    # Ids PostHog never merges, as a user and as a device.
    row("2024-03-01 13:00:00", user="anonymous", device="shared-anon"),
    row("2024-03-01 13:00:00", user="null", device="shared-null"),
    row("2024-03-01 14:00:00", user="erin", device="0"),
    row("2024-03-01 14:00:00", user="frank", device='"guest"'),
    # What PostHog cuts: ids, names and group keys; and a sixth group type.
    row("2024-03-01 15:00:00", user="L" * 250, device="long-device"),
    row("2024-03-01 15:00:00", user="nul\x00user", device="nul-device"),
    row("2024-03-01 16:00:00", user="alice", device="kiosk", event_type="E" * 250),
    row("2024-03-01 17:00:00", user="alice", device="kiosk", groups=SIX_TYPES),
    row("2024-03-01 18:00:00", user="alice", device="kiosk", groups={"type1": "K" * 401}),
]


def export_of(seed: int) -> Export:
    lines = list(ROWS)
    random.Random(seed).shuffle(lines)
    rows = [(HOURS[n % 3], line) for n, line in enumerate(lines)]
    # The laptop's earliest anonymous row is exported last: the last event on its lane carries
    # stale values, which only a snapshot on that lane too can correct.
    pinned = {ROWS[7]: HOURS[0], ROWS[5]: HOURS[2]}
    return Export(HOURS[0], HOURS[-1], [(pinned.get(line, hour), line) for hour, line in rows])


def test_the_job_leaves_every_person_as_amplitude_had_it_in_any_processing_order(tmp_path):
    export = export_of(seed=3)
    expected = export.expected()
    amplitude, posthog = servers(export)
    with amplitude, posthog:
        code, _, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path))
        assert code == 0, err[-3000:]
        events = list(posthog.events)
    assert sorted(e["uuid"] for e in events) == sorted(expected)
    assert_persons_as_amplitude_had_them(events, export.persons)

    by_id = {frozenset(ids): props for ids, props in export.persons}
    alice = by_id[frozenset({"alice", "kiosk"})]
    assert alice["plan"] == "free" and alice["$initial_utm_source"] == "flyer"
    assert by_id[frozenset({"bob", "bob-phone"})]["plan"] == "pro"
    assert frozenset({"carol"}) in by_id
    dana = by_id[frozenset({"dana", "dana-laptop"})]
    assert (dana["utm_source"], dana["$initial_utm_source"]) == ("mail", "ads")
    assert (dana["$browser_version"], dana["$initial_browser_version"]) == ("130", "128")
    assert (dana["plan"], dana["coupon"]) == ("pro", "X")
    assert (dana["$current_url"], dana["$initial_current_url"]) == (
        "https://b.example/", "https://a.example/")
    assert frozenset({"L" * 200, "long-device"}) in by_id
    assert frozenset({"nul\ufffduser", "nul-device"}) in by_id

    identifies = {e["properties"]["$anon_distinct_id"]: e["distinct_id"] for e in events
                  if e["event"] == "$identify"}
    assert identifies == {"kiosk": "alice", "bob-phone": "bob", "dana-laptop": "dana",
                          "long-device": "L" * 250, "nul-device": "nul\x00user"}
    # The snapshot goes to every distinct_id of a person that carried properties.
    snapshots = {e["distinct_id"] for e in events if e["event"] == "$set"}
    assert {"dana", "dana-laptop", "alice", "kiosk"} <= snapshots

    rep = report(tmp_path)
    assert rep["identities"] == {
        "pairs_seen": 11, "identify_sent": 5, "devices_shared": 1,
        "not_merged": {"illegal_device_id": 2, "illegal_user_id": 2, "shared_device": 2}}
    assert rep["warnings"] == {"distinct_id_nul": 1, "distinct_id_too_long": 1,
                               "event_name_too_long": 1, "group_key_too_long": 1,
                               "too_many_group_types": 1}
    html = (tmp_path / "report.html").read_text()
    assert 'id="identities"' in html and "too_many_group_types" in html
    assert not any(e["event"] == "$groupidentify" and len(e["properties"]["$group_key"]) > 400
                   for e in events)


def test_sending_every_pair_would_give_the_kiosk_to_whoever_is_processed_first():
    # Why one $identify per device: with one per pair, the result depends on processing order.
    events = [{"event": "Clicked", "distinct_id": d, "uuid": f"u{n}", "timestamp": "t",
               "properties": {}} for n, d in enumerate(("kiosk", "alice", "bob"))]
    events += [{"event": "$identify", "distinct_id": user, "uuid": f"i{user}", "timestamp": "t",
                "properties": {"$anon_distinct_id": "kiosk"}} for user in ("alice", "bob")]
    owners = set()
    for seed in range(20):
        model = PersonModel()
        for event in interleave(events, seed):
            model.ingest(event)
        owners.add(min(model.person("kiosk").distinct_ids - {"kiosk"}))
    assert owners == {"alice", "bob"}


@pytest.mark.parametrize("illegal", ILLEGAL)
def test_no_merge_with_any_id_posthog_refuses(illegal):
    assert merge_refusal(illegal, "device-1") in ("illegal_user_id", "same_id")
    assert merge_refusal("user-1", illegal) == "illegal_device_id"
    if illegal.strip():
        assert file_identify_event(["h", "f", illegal, 1, "t", "device-1", {}]) is None
    event = file_identify_event(["h", "f", "user-1", 1, "t", illegal, {"plan": "x"}])
    assert "$anon_distinct_id" not in event["properties"]


def test_ids_posthog_cuts_are_merged_as_it_stores_them():
    assert merge_refusal("u" * 500, "d\x00" * 300) is None  # stored cut to 200, NUL replaced
    assert merge_refusal("x" * 200 + "a", "x" * 200 + "b") == "same_id"
    assert merge_refusal("user-1", "user-1") == "same_id"
    assert merge_refusal("user-1", "device-1") is None


def test_a_snapshot_goes_to_each_distinct_id_that_carried_properties():
    rows = [(LATEST, ["device-1", "2024-03-01T00:00:00.000000Z", "1" * 36, {"plan": "trial"}]),
            (LATEST, ["device-1", "2024-03-03T00:00:00.000000Z", "3" * 36, {"coupon": "X"}]),
            (LATEST, ["user-1", "2024-03-02T00:00:00.000000Z", "2" * 36, {"plan": "pro"}]),
            (EARLIEST, ["user-1", "2024-03-02T00:00:00.000000Z", "2" * 36,
                        {"$initial_os": "iOS"}]),
            (EARLIEST, ["device-1", "2024-03-01T00:00:00.000000Z", "1" * 36,
                        {"$initial_os": "Android"}])]
    for order in (rows, rows[::-1]):
        events = snapshot_events(order)
        assert [e["distinct_id"] for e in events] == ["device-1", "user-1"]
        for event in events:
            assert event["event"] == "$set"
            assert event["properties"]["$set"] == {"plan": "pro", "coupon": "X",
                                                   "$initial_os": "Android"}
            assert event["timestamp"] == "2024-03-03T00:00:00.000000Z"
        assert len({e["uuid"] for e in events}) == 2
    assert snapshot_events([]) == []
