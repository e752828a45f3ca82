"""Groups and final person properties: GenerateEvents over facts, WaitOn, and the real CLI."""

import random

import apache_beam as beam
import orjson
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from pipeline.generated import GenerateEvents, WaitOn
from pipeline.ledger import write_record
from pipeline.snapshots import group_identify_event, identify_event
from tests.e2e import (Export, assert_persons_as_amplitude_had_them, cli_args, report, run_cli,
                       servers)
from tests.people_rows import person, row
from transforms.facts import GROUPS, HourFacts, merge_facts
from transforms.translate import translate_line

pytestmark = pytest.mark.timeout(300)

HOURS = ["20240305T10", "20240305T11", "20240305T12"]


def acme(seats):
    return {"company": {"acme": {"seats": seats, "industry": "retail"}}}


# Who did what when. user-1's plan and acme's seats change over three days; user-2's latest
# row comes from a backend and carries no properties; device-9 never logs in.
ROWS = [
    row("2024-03-01 09:00:00", user_properties=person("free", "news.example"),
        groups={"company": "acme", "project": 42}, group_properties=acme(10)),
    row("2024-03-01 12:00:00", device="device-1b", user_properties=person("free", "later.example"),
        groups={"company": "acme"}, group_properties=acme(10)),
    row("2024-03-02 09:00:00", user_properties=person("pro", "search.example"),
        groups={"company": "acme"}, group_properties=acme(20), event_type="Upgraded"),
    row("2024-03-03 09:00:00", user_properties=person("enterprise", "ads.example"),
        groups={"company": "acme"}, group_properties=acme(30), event_type="Upgraded"),
    row("2024-03-03 10:00:00", user_properties=person("enterprise", "ads.example"),
        groups={"company": "acme"}),  # acme again, but without its properties
    row("2024-03-01 08:00:00", user="user-2", device="device-2",
        user_properties=person("free", "mail.example", city_name="Lyon"),
        groups={"team": ["red", "blue"]},
        group_properties={"team": {"red": {"floor": 1}, "blue": {"floor": 2}}}),
    row("2024-03-04 08:00:00", user="user-2", device="device-2",
        user_properties=person("team", "mail.example", city_name="Paris"),
        groups={"team": ["red"]}, group_properties={"team": {"red": {"floor": 3}}}),
    row("2024-03-05 08:00:00", user="user-2", device="server-2", user_properties={},
        platform=None, os_name=None, os_version=None, device_family=None, country=None),
    row("2024-03-02 11:00:00", user=None, device="device-9", user_properties=person("free")),
    # Amplitude's own group identify calls, in both shapes they come in.
    row("2024-03-04 12:00:00", user="user-2", device="device-2", event_type="$groupidentify",
        groups={"company": "globex"}, group_properties={"company": {"globex": {"seats": 5}}}),
    row("2024-03-04 13:00:00", user=None, device="device-9", event_type="$groupidentify",
        groups={"team": "green"}, group_properties={"$set": {"floor": 9}}),
]


def shuffled_export(seed=5) -> Export:
    """The rows shuffled over three hours: the order they arrive in says nothing of their time."""
    rng = random.Random(seed)
    lines = list(ROWS)
    rng.shuffle(lines)
    return Export(HOURS[0], HOURS[-1], [(HOURS[n % 3], line) for n, line in enumerate(lines)])


def commit(state, hours, status="done"):
    """Ledger records for ``hours``: generated events are built only once every hour is done."""
    for hour in hours:
        write_record(str(state), hour, status, {})


def write_facts(state, hour, lines):
    facts = HourFacts()
    for line in lines:
        facts.add(translate_line(line))
    (state / "facts").mkdir(parents=True, exist_ok=True)
    (state / "facts" / f"{hour}.json").write_bytes(orjson.dumps(facts.to_dict()))
    return facts.to_dict()


def _check(check):
    """An ``assert_that`` matcher that runs ``check`` on the elements (assertions inside)."""
    def matcher(elements):
        check(list(elements))
    return matcher


def test_generate_events_aggregates_the_facts_of_every_hour(tmp_path):
    first = write_facts(tmp_path, HOURS[0], ROWS[::2])
    second = write_facts(tmp_path, HOURS[1], ROWS[1::2])
    merged = merge_facts(first, second)
    pairs = {(u, d): ts for u, d, ts in merged["pairs"]}
    assert set(pairs) == {("user-1", "device-1"), ("user-1", "device-1b"),
                          ("user-2", "device-2"), ("user-2", "server-2")}
    expected_events = ([identify_event(pair, ts) for pair, ts in pairs.items()]
                       + [group_identify_event(r) for r in merged[GROUPS]])
    groups = {(e["properties"]["$group_type"], e["properties"]["$group_key"]):
              e["properties"]["$group_set"] for e in expected_events
              if e["event"] == "$groupidentify"}
    assert groups == {("company", "acme"): {"seats": 30, "industry": "retail"},
                      ("company", "globex"): {"seats": 5}, ("project", "42"): {},
                      ("team", "red"): {"floor": 3}, ("team", "blue"): {"floor": 2},
                      ("team", "green"): {"floor": 9}}

    def check_snapshots(snapshots):
        by_id = {s["distinct_id"]: s["properties"]["$set"] for s in snapshots}
        assert len(by_id) == len(snapshots) == 3  # device-9 never logged in: a person of its own
        assert {d: p["plan"] for d, p in by_id.items()} == {
            "user-1": "enterprise", "user-2": "team", "device-9": "free"}
        # The backend's row for user-2 set nothing; its earlier rows keep their values.
        assert by_id["user-2"]["city_name"] == "Paris" and by_id["user-2"]["$os"] == "Windows"
        assert by_id["user-1"]["$initial_referrer"] == "news.example"
        assert by_id["user-1"]["$initial_browser"] == "Firefox"

    commit(tmp_path, HOURS[:2])
    commit(tmp_path, HOURS[2:], "empty")  # an empty hour has no facts file: it adds nothing
    with BeamTestPipeline() as pipeline:
        barrier = pipeline | "Committed" >> beam.Create([(HOURS[0], "done")])
        generated = pipeline | GenerateEvents(str(tmp_path), HOURS, barrier)
        assert_that(generated.events, equal_to(expected_events))
        assert_that(generated.snapshots, _check(check_snapshots), label="Snapshots")
        assert_that(generated.identities, equal_to([("pairs_seen", 4), ("identify_sent", 4)]),
                    label="Identities")


def test_nothing_is_generated_before_every_hour_of_the_job_is_done(tmp_path):
    write_facts(tmp_path, HOURS[0], ROWS)
    commit(tmp_path, HOURS[:1])
    commit(tmp_path, HOURS[1:2], "failed")  # and HOURS[2] still pending
    with BeamTestPipeline() as pipeline:
        barrier = pipeline | "Committed" >> beam.Create([(HOURS[0], "done")])
        generated = pipeline | GenerateEvents(str(tmp_path), HOURS, barrier)
        assert_that(generated.events, equal_to([]))
        assert_that(generated.snapshots, equal_to([]), label="Snapshots")
        assert_that(generated.complete, equal_to([False]), label="Complete")


def test_generate_events_honours_the_switches(tmp_path):
    write_facts(tmp_path, HOURS[0], ROWS)
    commit(tmp_path, HOURS[:1])
    with BeamTestPipeline() as pipeline:
        barrier = pipeline | "Committed" >> beam.Create([(HOURS[0], "done")])
        generated = pipeline | GenerateEvents(str(tmp_path), HOURS[:1], barrier,
                                              identify_mode="off", group_identify=False,
                                              person_snapshot=False)
        assert_that(generated.events, equal_to([]))
        assert_that(generated.snapshots, equal_to([]), label="Snapshots")
    with pytest.raises(ValueError, match="identify_mode"):
        GenerateEvents(str(tmp_path), HOURS, None, identify_mode="pairs_and_more")


def _log(element, path, what):
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(f"{what} {element}\n")
    return element


def test_wait_on_releases_elements_only_once_the_signal_is_complete(tmp_path):
    log = str(tmp_path / "log")
    with BeamTestPipeline() as pipeline:
        signal = (pipeline | "Signal" >> beam.Create(range(20))
                  | "Send" >> beam.Map(_log, log, "signal"))
        (pipeline | "Elements" >> beam.Create(["a", "b"])
         | WaitOn(signal) | "Release" >> beam.Map(_log, log, "released"))
    lines = open(log, encoding="utf-8").read().splitlines()
    assert sorted(lines) == sorted([f"signal {n}" for n in range(20)]
                                   + ["released a", "released b"])
    assert all(line.startswith("signal") for line in lines[:20]), lines


def test_last_set_of_each_person_is_the_latest_snapshot_on_two_workers(tmp_path):
    export = shuffled_export()
    expected = export.expected()
    amplitude, posthog = servers(export)
    with amplitude, posthog:
        code, out, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path,
                                           "--direct_running_mode=multi_processing",
                                           "--direct_num_workers=2"))
        assert code == 0, err[-3000:]
        events = list(posthog.events)
    assert sorted(e["uuid"] for e in events) == sorted(expected)

    snapshots = [n for n, e in enumerate(events) if e["event"] == "$set"
                 and e["properties"].get("$lib") == "aplistorical"]
    assert len(snapshots) == 3  # user-1, user-2 and device-9, which never logged in
    # Every other event of the run, generated ones included, was accepted before any snapshot.
    assert min(snapshots) > max(n for n in range(len(events)) if n not in snapshots)
    assert_persons_as_amplitude_had_them(events, export.persons)
    snapshot_1 = next(events[n] for n in snapshots if events[n]["distinct_id"] == "user-1")
    assert snapshot_1["properties"]["$set"]["plan"] == "enterprise"
    assert snapshot_1["properties"]["$set"]["$initial_referrer"] == "news.example"
    assert snapshot_1["timestamp"] == "2024-03-03T10:00:00.000000Z"

    groups = {(e["properties"]["$group_type"], e["properties"]["$group_key"]): e
              for e in events if e["event"] == "$groupidentify"}
    assert len(groups) == sum(1 for e in events if e["event"] == "$groupidentify") == 6
    assert {key: e["properties"]["$group_set"] for key, e in groups.items()} == {
        ("company", "acme"): {"seats": 30, "industry": "retail"},
        ("company", "globex"): {"seats": 5}, ("project", "42"): {},
        ("team", "red"): {"floor": 3}, ("team", "blue"): {"floor": 2},
        ("team", "green"): {"floor": 9}}
    acme_event = groups[("company", "acme")]
    assert (acme_event["distinct_id"], acme_event["timestamp"]) == (
        "user-1", "2024-03-03T09:00:00.000000Z")
    assert groups[("team", "green")]["distinct_id"] == "device-9"
    for event in groups.values():
        assert event["properties"]["$geoip_disable"] is True

    rep = report(tmp_path)
    assert rep["rows_skipped"] == {"group_identify": 2}
    assert rep["generated_events_sent"] == {"$identify": 4, "$groupidentify": 6, "$set": 3}


def test_switches_turn_the_generated_events_off(tmp_path):
    export = shuffled_export(seed=8)
    expected = export.expected(identify_mode="off", group_identify=False,
                               person_snapshot=False)
    amplitude, posthog = servers(export)
    with amplitude, posthog:
        code, out, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path,
                                           "--identify_mode", "off", "--no_group_identify",
                                           "--no_person_snapshot"))
        assert code == 0, err[-3000:]
        assert sorted(e["uuid"] for e in posthog.events) == sorted(expected)
    assert report(tmp_path)["generated_events_sent"] == {}


def test_without_the_generated_record_a_rerun_sends_the_generated_events_again(tmp_path):
    # docs/identities.md's way to put the snapshots last again after a `resend` of events with $set.
    export = shuffled_export(seed=9)
    amplitude, posthog = servers(export)
    with amplitude, posthog:
        code, _, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path))
        assert code == 0, err[-3000:]
        first = list(posthog.events)
        (tmp_path / "ledger" / "generated.json").unlink()
        code, _, err = run_cli("--work_dir", str(tmp_path))
        assert code == 0, err[-3000:]
        again = posthog.events[len(first):]
    generated = [e for e in first if e["properties"].get("$lib") == "aplistorical"]
    assert sorted(e["uuid"] for e in again) == sorted(e["uuid"] for e in generated)
    assert [e["event"] for e in again[-3:]] == ["$set", "$set", "$set"]
    assert report(tmp_path)["generated_events_sent"] == {"$identify": 4, "$groupidentify": 6,
                                                         "$set": 3}
