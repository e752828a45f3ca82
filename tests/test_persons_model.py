"""The PostHog person model in sandbox/persons.py, one PostHog rule per test."""

import pytest

from sandbox.persons import (PersonModel, capture_distinct_id, initial_name, interleave,
                             is_distinct_id_illegal, is_distinct_id_unmergeable)


def _event(name, distinct_id, n=0, **properties):
    return {"event": name, "distinct_id": distinct_id, "uuid": f"00000000-0000-4000-8000-{n:012d}",
            "timestamp": f"2024-01-01T00:00:{n:02d}Z", "properties": properties}


def _identify(user, device, n=0, **properties):
    return _event("$identify", user, n, **{"$anon_distinct_id": device}, **properties)


ILLEGAL = ["anonymous", "ANONYMOUS", "guest", "distinctid", "distinct_id", "id", "ID",
           "not_authenticated", "email", "undefined", "UnDeFiNeD", "true", "false",
           "[object Object]", "NaN", "None", "none", "null", "0", "'guest'", '"null"', "'0'",
           "", "   "]


@pytest.mark.parametrize("distinct_id", ILLEGAL)
def test_each_illegal_id_form_is_refused_in_a_merge(distinct_id):
    assert is_distinct_id_illegal(distinct_id)
    cases = [("user-1", distinct_id)]
    if distinct_id:  # capture refuses an event whose distinct_id is empty
        cases.append((distinct_id, "device-1"))
    for user, device in cases:
        model = PersonModel()
        model.ingest(_event("a", "device-1"))
        model.ingest(_event("a", "user-1"))
        model.ingest(_identify(user, device))
        assert model.person("device-1") is not model.person("user-1")
        assert model.warnings[-1][0] == "cannot_merge_with_illegal_distinct_id"


@pytest.mark.parametrize("distinct_id", ["nan", "Null", "NONE", "guests", "0.0", "user 0"])
def test_near_misses_are_legal(distinct_id):
    assert not is_distinct_id_illegal(distinct_id)


def test_nul_and_over_400_characters_are_unmergeable_but_not_illegal():
    for distinct_id in ("a\x00b", "x" * 401):
        assert not is_distinct_id_illegal(distinct_id)
        assert is_distinct_id_unmergeable(distinct_id)
    assert not is_distinct_id_unmergeable("x" * 400)
    model = PersonModel()
    model.ingest(_identify("user-1", "d\x00evice"))
    assert model.person("user-1").distinct_ids == {"user-1"}
    assert model.warnings == [("cannot_merge_with_illegal_distinct_id", "'d\\x00evice' with 'user-1'")]


def test_capture_cuts_distinct_ids_and_event_names_to_200_characters():
    assert capture_distinct_id("u" * 250) == "u" * 200
    assert capture_distinct_id("a\x00b") == "a\ufffdb"
    assert capture_distinct_id(42) == "42"
    assert capture_distinct_id("") is None
    model = PersonModel()
    model.ingest(_event("e" * 201, "u" * 250))
    assert model.person("u" * 200).distinct_ids == {"u" * 200}
    assert [kind for kind, _ in model.warnings] == ["distinct_id_truncated", "event_name_truncated"]


def test_first_identify_of_a_shared_device_wins():
    model = PersonModel()
    model.ingest(_event("a", "device", 1, **{"$set": {"plan": "anon"}}))
    model.ingest(_identify("alice", "device", 2))
    model.ingest(_event("a", "bob", 3))
    model.ingest(_identify("bob", "device", 4))
    alice = model.person("alice")
    assert alice.distinct_ids == {"alice", "device"} and alice.is_identified
    assert model.person("bob").distinct_ids == {"bob"}
    assert model.person("bob").is_identified  # marked identified although the merge was refused
    assert model.warnings == [("cannot_merge_already_identified", "'device' into 'bob'")]


def test_a_user_without_a_person_joins_the_devices_person_even_when_identified():
    model = PersonModel()
    model.ingest(_identify("alice", "device", 1))
    model.ingest(_identify("carol", "device", 2))  # carol has no person yet: no check at all
    assert model.person("carol") is model.person("alice")
    assert model.person("alice").distinct_ids == {"alice", "device", "carol"}


def test_merge_keeps_the_identified_side_on_conflicts_and_the_target_uuid():
    model = PersonModel()
    model.ingest(_event("a", "device", 1, **{"$set": {"plan": "free", "anon_only": 1}}))
    model.ingest(_event("a", "alice", 2, **{"$set": {"plan": "paid"}}))
    target_uuid = model.person("alice").uuid
    model.ingest(_identify("alice", "device", 3))
    alice = model.person("alice")
    assert alice.uuid == target_uuid
    assert alice.properties == {"plan": "paid", "anon_only": 1}
    assert len(model.persons()) == 1


def test_event_to_person_properties_last_processed_and_initial_first_processed():
    model = PersonModel()
    model.ingest(_event("a", "u", 1, **{"$app_version": "1.0", "utm_source": "ads",
                                        "$os_name": "iOS"}))
    model.ingest(_event("a", "u", 2, **{"$app_version": "2.0", "utm_source": "mail"}))
    properties = model.person("u").properties
    assert properties["$app_version"] == "2.0" and properties["utm_source"] == "mail"
    assert properties[initial_name("$app_version")] == "1.0"
    assert properties["$initial_utm_source"] == "ads"
    assert properties["$os"] == "iOS" and properties["$initial_os"] == "iOS"
    assert "$os_name" not in properties and "$initial_os_name" not in properties


def test_explicit_set_wins_over_the_event_property_copy():
    model = PersonModel()
    model.ingest(_event("a", "u", 1, **{"$app_version": "1.0", "$set": {"$app_version": "9"}}))
    assert model.person("u").properties["$app_version"] == "9"


def test_a_change_only_to_filtered_properties_is_not_written_unless_a_person_event():
    model = PersonModel()
    model.ingest(_event("a", "u", 1, **{"$browser": "Firefox"}))
    model.ingest(_event("a", "u", 2, **{"$browser": "Chrome"}))
    assert model.person("u").properties["$browser"] == "Firefox"
    model.ingest(_event("a", "u", 3, **{"$browser": "Chrome", "$app_version": "3"}))
    assert model.person("u").properties["$browser"] == "Chrome"
    model.ingest(_event("$set", "u", 4, **{"$set": {"$browser": "Safari"}}))
    assert model.person("u").properties["$browser"] == "Safari"


def test_set_once_and_unset():
    model = PersonModel()
    model.ingest(_event("a", "u", 1, **{"$set_once": {"first": 1}, "$set": {"gone": 1}}))
    model.ingest(_event("a", "u", 2, **{"$set_once": {"first": 2}, "$unset": ["gone"]}))
    assert model.person("u").properties == {"first": 1}


def test_persons_opted_out_and_exceptions_leave_no_trace():
    model = PersonModel()
    model.ingest(_event("a", "u", 1, **{"$process_person_profile": False, "$set": {"x": 1}}))
    assert model.person("u") is None
    model.ingest(_event("$exception", "u", 2, **{"$set": {"x": 1}}))
    assert model.person("u").properties == {}


def test_interleave_keeps_each_distinct_ids_order_and_varies_the_rest():
    events = [_event("a", f"id-{i % 3}", i) for i in range(30)]
    orders = [interleave(events, seed) for seed in range(5)]
    for order in orders:
        assert sorted(e["uuid"] for e in order) == sorted(e["uuid"] for e in events)
        for lane in ("id-0", "id-1", "id-2"):
            mine = [e["uuid"] for e in order if e["distinct_id"] == lane]
            assert mine == [e["uuid"] for e in events if e["distinct_id"] == lane]
    assert len({tuple(e["uuid"] for e in order) for order in orders}) > 1
