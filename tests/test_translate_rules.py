"""One or more tests per translation rule, in the order docs/mapping.md gives the rules."""

import pickle
import random
import re
import uuid
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from transforms import mapping
from transforms.settings import TranslationSettings
from transforms.translate import (DEAD_REASONS, SKIP_REASONS, UUID_NAMESPACE, identify_uuid,
                                  parse_timestamp, translate_line)

BASE = {
    "event_type": "Signed Up", "user_id": "user-1", "device_id": "device-1",
    "amplitude_id": 1234567, "app": 636686, "uuid": "817a8abf-7c25-4992-8d41-dcdbd556c1a9",
    "$insert_id": "insert-1", "event_id": 42, "event_time": "2025-07-01 17:18:14.370000",
    "client_event_time": "2025-07-01 17:18:14.000000",
    "server_received_time": "2025-07-01 17:18:45.113000", "event_properties": {"plan": "pro"},
    "user_properties": {}, "groups": {}, "session_id": -1, "platform": None, "os_name": None,
    "os_version": None, "device_family": None, "device_type": None, "device_model": None,
    "device_manufacturer": None, "device_brand": None, "device_carrier": None,
    "ip_address": None, "library": None, "version_name": None, "country": None, "region": None,
    "city": None, "location_lat": None, "location_lng": None,
}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def translate(changes=None, drop=(), **flags):
    row = {**BASE, **(changes or {})}
    for key in drop:
        del row[key]
    return translate_line(orjson.dumps(row), TranslationSettings.from_flags(**flags))


def event(changes=None, drop=(), **flags):
    translation = translate(changes, drop, **flags)
    assert translation.reason is None, translation
    return translation.event


def props(changes=None, drop=(), **flags):
    return event(changes, drop, **flags)["properties"]


def outcome(translation):
    return translation.reason, translation.dead


# Rule 1: JSON object or dead letter.

@pytest.mark.parametrize("line", [b"", b"{", b"not json", b'{"a": 1} trailing', b"\xff\xfe{}"])
def test_a_line_that_is_not_json_is_a_dead_letter(line):
    translation = translate_line(line)
    assert outcome(translation) == ("invalid_json", True)
    assert translation.event is None and translation.row is None and translation.detail


@pytest.mark.parametrize("line,what", [(b"[1, 2]", "an array"), (b'"row"', "a string"),
                                       (b"12", "a number"), (b"null", "null")])
def test_json_that_is_not_an_object_is_a_dead_letter(line, what):
    translation = translate_line(line)
    assert outcome(translation) == ("not_an_object", True)
    assert translation.detail == f"the line is {what}"


def test_reasons_split_into_dead_letters_and_skips():
    assert DEAD_REASONS == {"invalid_json", "not_an_object", "missing_event_type",
                            "missing_identity", "invalid_timestamp", "invalid_event_properties"}
    assert SKIP_REASONS == {"ignored", "session_marker", "group_identify"}


# Rule 2: event_type.

@pytest.mark.parametrize("value", [None, "", "   ", 12, ["Signed Up"]])
def test_missing_or_empty_event_type_is_a_dead_letter(value):
    translation = translate({"event_type": value})
    assert outcome(translation) == ("missing_event_type", True)
    assert translation.row["event_type"] == value


def test_absent_event_type_is_a_dead_letter():
    assert outcome(translate(drop=["event_type"])) == ("missing_event_type", True)


# Rule 3: skips, before any rename.

def test_ignored_events_are_skipped_by_their_source_name():
    translation = translate(ignore_event=["Signed Up"])
    assert outcome(translation) == ("ignored", False)
    assert translation.row["event_type"] == "Signed Up"
    assert outcome(translate(ignore_event=["Signed Up"], rename_event=["Signed Up::x"])) == (
        "ignored", False)
    assert outcome(translate(ignore_event=["Other"])) == (None, False)


@pytest.mark.parametrize("name", ["session_start", "session_end"])
def test_session_markers_are_skipped_even_when_renamed(name):
    assert outcome(translate({"event_type": name})) == ("session_marker", False)
    assert outcome(translate({"event_type": name}, rename_event=[f"{name}::kept"])) == (
        "session_marker", False)


# Rule 4: event names.

@pytest.mark.parametrize("source,expected", sorted(mapping.EVENT_NAMES.items()))
def test_built_in_event_names(source, expected):
    assert event({"event_type": source})["event"] == expected


def test_built_in_names_cover_pages_clicks_and_identify():
    assert {name for name, target in mapping.EVENT_NAMES.items() if target == "$pageview"} == {
        "[Amplitude] Page Viewed", "Viewed Page", "PageVisited", "pagevisited"}
    assert mapping.EVENT_NAMES["$identify"] == "$set"


def test_rename_event_wins_over_built_in_names_and_others_are_unchanged():
    assert event({"event_type": "Viewed Page"}, rename_event=["Viewed Page::Page"])["event"] == (
        "Page")
    assert event(rename_event=["Signed Up::signup"])["event"] == "signup"
    assert event(rename_event=["Other::x"])["event"] == "Signed Up"
    assert event({"event_type": "viewed page"})["event"] == "viewed page"  # names are exact


# Rule 5: distinct_id.

def test_distinct_id_prefers_user_then_device_then_amplitude_id():
    assert event()["distinct_id"] == "user-1"
    assert event({"user_id": "  "})["distinct_id"] == "device-1"
    assert event({"user_id": None})["distinct_id"] == "device-1"
    assert event({"user_id": None, "device_id": ""})["distinct_id"] == "amplitude:1234567"
    assert event({"user_id": 987})["distinct_id"] == "987"


def test_no_identity_at_all_is_a_dead_letter():
    translation = translate({"user_id": None, "device_id": " ", "amplitude_id": None})
    assert outcome(translation) == ("missing_identity", True)


# Rule 6: uuid.

def test_a_valid_row_uuid_is_kept_in_lower_case():
    assert event()["uuid"] == BASE["uuid"]
    assert event({"uuid": BASE["uuid"].upper()})["uuid"] == BASE["uuid"]


@pytest.mark.parametrize("bad", [None, "", "not-a-uuid", "817a8abf7c2549928d41dcdbd556c1a9",
                                 "0x7a8abf-7c25-4992-8d41-dcdbd556c1a9",
                                 "817a8abf-7c25-4992-8d41-dcdbd556c1ag",
                                 "817a8abf-7c25-4992-8d41-dcdbd556c1 9",
                                 "00000000-0000-0000-0000-000000000000", 12])
def test_without_a_valid_uuid_the_insert_id_names_the_event(bad):
    expected = str(uuid.uuid5(UUID_NAMESPACE, "636686:insert-1"))
    assert event({"uuid": bad})["uuid"] == expected


def test_without_uuid_or_insert_id_the_canonical_row_names_the_event():
    changes = {"uuid": None, "$insert_id": None}
    row = {**BASE, **changes}
    expected = str(uuid.uuid5(UUID_NAMESPACE,
                              orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode()))
    assert event(changes)["uuid"] == expected
    # Key order and spacing do not change the canonical form.
    reordered = b'{ ' + b", ".join(orjson.dumps({k: v})[1:-1] for k, v in reversed(row.items()))
    assert translate_line(reordered + b" }").event["uuid"] == expected


def test_uuids_are_deterministic_and_distinct_per_row():
    changes = {"uuid": None, "$insert_id": None}
    assert event(changes)["uuid"] == event(changes)["uuid"]
    assert event(changes)["uuid"] != event({**changes, "event_id": 43})["uuid"]
    assert event({"uuid": None})["uuid"] != event({"uuid": None, "app": 1})["uuid"]


def test_identify_uuid_is_a_uuid5_of_the_pair():
    expected = uuid.uuid5(UUID_NAMESPACE, '["$identify","user-1","device-1"]')
    assert identify_uuid("user-1", "device-1") == str(expected)
    assert identify_uuid("user-1", "device-2") != str(expected)


# Rule 7: timestamp.

@pytest.mark.parametrize("text,expected", [
    ("2025-07-01 17:18:14.370000", "2025-07-01T17:18:14.370000Z"),
    ("2025-07-01 17:18:14", "2025-07-01T17:18:14.000000Z"),
    ("2025-07-01 17:18:14.3", "2025-07-01T17:18:14.300000Z"),
    ("2025-07-01 17:18:14.123", "2025-07-01T17:18:14.123000Z"),
    ("2025-07-01T17:18:14.123456Z", "2025-07-01T17:18:14.123456Z"),
    ("2025-07-01T17:18:14Z", "2025-07-01T17:18:14.000000Z"),
    ("2025-07-01T17:18:14.123456789000Z", None),
    ("2025-07-01T17:18:14.123456000Z", "2025-07-01T17:18:14.123456Z"),
    ("2025-07-01T01:18:14.5+02:00", "2025-06-30T23:18:14.500000Z"),
    ("2025-07-01T22:48:14-0130", "2025-07-02T00:18:14.000000Z"),
    ("2025-07-01T17:18:14+00", "2025-07-01T17:18:14.000000Z"),
    ("2024-02-29 23:59:59.999999", "2024-02-29T23:59:59.999999Z"),
    ("2025-02-29 10:00:00.000000", None), ("2025-07-01 24:00:00.000000", None),
    ("2025-07-01 17:60:00.000000", None), ("2025-07-01 17:18:60.000000", None),
    ("2025-07-01 17:18:14.", None), ("2025-07-01 17:18:14.12a456", None),
    ("2025-07-01", None), ("20250701T171814", None), ("2025-07-01 17:18:14 UTC", None),
    ("2025-07-01T17:18:14+24:00", None), ("２025-07-01 17:18:14", None),
    ("2025-07-01 17:18:1٤.000000", None), (1751390294370, None), (None, None),
])
def test_timestamp_formats(text, expected):
    assert parse_timestamp(text) == expected


def test_timestamps_keep_microseconds_and_sort_as_strings():
    rng = random.Random(3)
    moments = [datetime(2000, 1, 1, tzinfo=timezone.utc) + timedelta(
        microseconds=rng.randrange(10**16)) for _ in range(500)]
    rendered = [parse_timestamp(m.strftime("%Y-%m-%d %H:%M:%S.%f")) for m in moments]
    assert all(TIMESTAMP.fullmatch(text) for text in rendered)
    assert [datetime.fromisoformat(text) for text in rendered] == moments
    assert sorted(rendered) == [rendered[i] for i in sorted(range(500), key=moments.__getitem__)]


def test_timestamp_falls_back_to_client_then_server_time():
    assert event()["timestamp"] == "2025-07-01T17:18:14.370000Z"
    assert event({"event_time": "garbage"})["timestamp"] == "2025-07-01T17:18:14.000000Z"
    assert event({"event_time": None, "client_event_time": ""})["timestamp"] == (
        "2025-07-01T17:18:45.113000Z")


def test_no_parseable_time_is_a_dead_letter_never_now():
    translation = translate({"event_time": "yesterday", "client_event_time": None},
                            drop=["server_received_time"])
    assert outcome(translation) == ("invalid_timestamp", True)
    assert "'yesterday'" in translation.detail


# Rule 8: event properties.

def test_event_properties_are_copied_and_null_means_none():
    assert props()["plan"] == "pro"
    assert "plan" not in props({"event_properties": None})
    assert "plan" not in props(drop=["event_properties"])


@pytest.mark.parametrize("value", [[1, 2], "plan=pro", 3])
def test_event_properties_that_are_not_an_object_are_a_dead_letter(value):
    assert outcome(translate({"event_properties": value})) == ("invalid_event_properties", True)


def test_rename_property_renames_event_property_keys():
    properties = props({"event_properties": {"language": "English", "plan": "pro"}},
                       rename_property=["language::locale"])
    assert properties["locale"] == "English" and "language" not in properties
    clash = props({"event_properties": {"language": "English", "locale": "en"}},
                  rename_property=["language::locale"])
    assert clash["locale"] == "English"  # the rename the user asked for wins


def test_translation_does_not_change_the_parsed_row():
    translation = translate({"event_properties": {"language": "English"}},
                            rename_property=["language::locale"])
    assert translation.row["event_properties"] == {"language": "English"}


# Rule 9: added properties.

def test_standard_properties_are_added_when_present():
    properties = props({
        "ip_address": "203.0.113.7", "library": "amplitude-ts/2.0", "version_name": "1.0.81",
        "country": "Malaysia", "region": "Selangor", "city": "Puchong", "location_lat": 0.0,
        "location_lng": 101.6})
    assert properties == {
        "plan": "pro", "$ip": "203.0.113.7", "$lib": "amplitude-ts/2.0", "$device_id": "device-1",
        "$app_version": "1.0.81", "$amplitude_user_id": "user-1",
        "$amplitude_device_id": "device-1", "$amplitude_id": 1234567, "$amplitude_event_id": 42,
        "$geoip_country_name": "Malaysia", "$geoip_subdivision_1_name": "Selangor",
        "$geoip_city_name": "Puchong", "$geoip_latitude": 0.0, "$geoip_longitude": 101.6,
        "$geoip_disable": True,
        "$set": {"$geoip_country_name": "Malaysia", "$geoip_subdivision_1_name": "Selangor",
                 "$geoip_city_name": "Puchong"},
    }


def test_null_or_empty_sources_are_left_out_but_geoip_is_always_disabled():
    properties = props({"ip_address": "", "user_id": None, "library": None})
    assert not {"$ip", "$lib", "$amplitude_user_id", "$app_version", "$geoip_country_name"} & set(
        properties)
    assert properties["$geoip_disable"] is True


def test_the_event_has_exactly_the_five_posthog_fields():
    assert list(event()) == ["event", "distinct_id", "uuid", "timestamp", "properties"]


# Rule 10: device, by platform.

WEB = {"platform": "Web", "os_name": "Chrome", "os_version": "86", "device_family": "Mac OS",
       "device_type": "Mac", "device_model": "Mac OS"}


def test_web_rows_read_os_fields_as_the_browser():
    properties = props(WEB)
    assert {k: properties.get(k) for k in ("$browser", "$browser_version", "$os",
                                           "$device_type", "$os_version")} == {
        "$browser": "Chrome", "$browser_version": "86", "$os": "Mac OS",
        "$device_type": "Desktop", "$os_version": None}


def test_web_os_falls_back_to_device_type_then_model_and_mobile_oses_are_mobile():
    assert props({**WEB, "device_family": None})["$os"] == "Mac"
    assert props({**WEB, "device_family": "", "device_type": None})["$os"] == "Mac OS"
    assert props({**WEB, "device_family": "iOS"})["$device_type"] == "Mobile"
    assert props({**WEB, "device_family": "Android"})["$device_type"] == "Mobile"
    bare = props({"platform": "Web"})
    assert "$os" not in bare and bare["$device_type"] == "Desktop"


IOS = {"platform": "iOS", "os_name": "ios", "os_version": "18.5", "device_model": "iPhone15,2",
       "device_family": "Apple iPhone", "device_manufacturer": "Apple", "device_brand": "Apple",
       "device_carrier": "Maxis"}


def test_mobile_rows():
    properties = props(IOS)
    assert {k: properties.get(k) for k in (
        "$os", "$os_version", "$device_model", "$device_manufacturer", "$device_type",
        "$network_carrier", "$browser")} == {
        "$os": "iOS", "$os_version": "18.5", "$device_model": "iPhone15,2",
        "$device_manufacturer": "Apple", "$device_type": "Mobile", "$network_carrier": "Maxis",
        "$browser": None}


def test_mobile_is_recognised_by_os_name_when_platform_says_nothing_useful():
    assert props({"platform": "Flutter", "os_name": "android"})["$os"] == "Android"
    assert props({"platform": None, "os_name": "ios"})["$os"] == "iOS"
    assert props({"platform": "android", "os_name": "ios"})["$os"] == "Android"


def test_tablets_manufacturer_fallback_and_unknown_carrier():
    assert props({**IOS, "device_model": "iPad13,4"})["$device_type"] == "Tablet"
    assert props({**IOS, "device_model": None, "device_family": "Samsung Galaxy Tablet"})[
        "$device_type"] == "Tablet"
    assert props({**IOS, "device_manufacturer": None, "device_brand": "Google"})[
        "$device_manufacturer"] == "Google"
    assert "$network_carrier" not in props({**IOS, "device_carrier": "Unknown"})


def test_other_platforms_copy_the_os_fields():
    properties = props({"platform": "Node.js", "os_name": "Linux", "os_version": "6.1"})
    assert (properties["$os"], properties["$os_version"]) == ("Linux", "6.1")
    assert "$device_type" not in properties and "$browser" not in properties


# Rule 11: page properties.

def test_page_properties():
    properties = props({"event_properties": {
        "[Amplitude] Page Location": "https://example.com/a?b=1",
        "[Amplitude] Page URL": "https://example.com/a", "[Amplitude] Page Domain": "example.com",
        "[Amplitude] Page Path": "/a", "[Amplitude] Page Title": "A",
        "[Amplitude] Viewport Height": 900, "[Amplitude] Viewport Width": 1440,
        "referrer": "https://search.example/", "referring_domain": "search.example"}})
    assert {k: properties[k] for k in (
        "$current_url", "$host", "$pathname", "$title", "$viewport_height", "$viewport_width",
        "$referrer", "$referring_domain")} == {
        "$current_url": "https://example.com/a?b=1", "$host": "example.com", "$pathname": "/a",
        "$title": "A", "$viewport_height": 900, "$viewport_width": 1440,
        "$referrer": "https://search.example/", "$referring_domain": "search.example"}
    assert properties["[Amplitude] Page Path"] == "/a"  # the originals stay


def test_page_url_and_user_property_referrer_are_fallbacks():
    properties = props({
        "event_properties": {"[Amplitude] Page URL": "https://example.com/a"},
        "user_properties": {"referrer": "https://ads.example/", "referring_domain": "ads.example"}})
    assert properties["$current_url"] == "https://example.com/a"
    assert (properties["$referrer"], properties["$referring_domain"]) == (
        "https://ads.example/", "ads.example")
    assert "$current_url" not in props({"event_properties": {"[Amplitude] Page URL": ""}})


# Rule 12: sessions.

def test_positive_session_ids_become_a_uuid7_starting_at_the_session():
    properties = props({"session_id": 1751390294370})
    assert properties["$amplitude_session_id"] == 1751390294370
    session = uuid.UUID(properties["$session_id"])
    assert (session.version, session.variant) == (7, uuid.RFC_4122)
    assert session.int >> 80 == 1751390294370
    assert str(session) == properties["$session_id"]


def test_session_uuid_is_stable_per_device_and_session():
    first = props({"session_id": 1751390294370})["$session_id"]
    assert props({"session_id": 1751390294370, "user_id": "user-2"})["$session_id"] == first
    assert props({"session_id": 1751390294370, "device_id": "device-2"})["$session_id"] != first
    assert props({"session_id": 1751390294371})["$session_id"] != first
    # Without a device the distinct_id stands in.
    no_device = props({"session_id": 1751390294370, "device_id": None})["$session_id"]
    assert no_device != first and no_device == props(
        {"session_id": 1751390294370, "device_id": None})["$session_id"]


@pytest.mark.parametrize("session_id", [-1, 0, None, "1751390294370", True])
def test_no_session(session_id):
    properties = props({"session_id": session_id})
    assert "$session_id" not in properties and "$amplitude_session_id" not in properties


# Rule 13: groups.

def test_groups_take_the_first_key_as_a_string():
    assert props({"groups": {"company": "acme", "team": ["t1", "t2"], "org": 17,
                             "empty": [], "none": None, "blank": ""}})["$groups"] == {
        "company": "acme", "team": "t1", "org": "17"}
    assert "$groups" not in props({"groups": {}})
    assert "$groups" not in props({"groups": None})


# Rule 14: user properties.

USER = {"plan": "pro", "initial_referrer": "https://ads.example/", "initial_utm_source": "EMPTY",
        "initial_gclid": None}


def test_initial_user_properties_also_go_to_set_once():
    properties = props({"user_properties": USER})
    assert properties["$set_once"] == {"$initial_referrer": "https://ads.example/"}
    for mode in ("root", "property"):
        assert props({"user_properties": USER}, user_properties_mode=mode)["$set_once"] == {
            "$initial_referrer": "https://ads.example/"}
    assert "$set_once" not in props({"user_properties": {"plan": "pro"}})


def test_set_mode_sets_user_properties_and_this_events_device_and_place():
    properties = props({**WEB, "user_properties": USER, "country": "Canada", "city": "Gander"})
    assert properties["$set"] == {**USER, "$os": "Mac OS", "$browser": "Chrome",
                                  "$device_type": "Desktop", "$geoip_country_name": "Canada",
                                  "$geoip_city_name": "Gander"}
    assert "$set" not in props({"user_properties": None})


def test_root_mode_merges_user_properties_and_event_properties_win():
    properties = props({"user_properties": {"plan": "free", "role": "admin"}},
                       user_properties_mode="root")
    assert (properties["plan"], properties["role"]) == ("pro", "admin")
    assert "$set" not in properties and "user_properties" not in properties


def test_property_mode_nests_user_properties():
    properties = props({"user_properties": {"role": "admin"}}, user_properties_mode="property")
    assert properties["user_properties"] == {"role": "admin"}
    assert "$set" not in properties and "role" not in properties
    assert "user_properties" not in props(user_properties_mode="property")


def test_user_properties_that_are_not_an_object_are_treated_as_none():
    assert "$set" not in props({"user_properties": ["x"]})


# Settings.

def test_settings_from_flags():
    settings = TranslationSettings.from_flags(
        ignore_event=["a", "b"], rename_event=["x::y", "p::q::r"],
        rename_property=["language::locale"], user_properties_mode="root")
    assert settings.ignore_events == frozenset({"a", "b"})
    assert dict(settings.rename_events) == {"x": "y", "p": "q::r"}
    assert dict(settings.rename_properties) == {"language": "locale"}
    assert settings.user_properties_mode == "root"


@pytest.mark.parametrize("flags,message", [
    ({"rename_event": ["x"]}, "--rename_event: expected SRC::DST, got 'x'"),
    ({"rename_event": ["::y"]}, "--rename_event: expected SRC::DST, got '::y'"),
    ({"rename_property": ["x::"]}, "--rename_property: expected SRC::DST, got 'x::'"),
    ({"rename_event": ["x::y", "x::z"]}, "--rename_event: 'x' is renamed twice"),
    ({"rename_event": "x::y"}, "--rename_event: expected a list"),
    ({"ignore_event": "x"}, "--ignore_event: expected a list"),
    ({"ignore_event": [""]}, "--ignore_event: expected a non-empty name"),
    ({"user_properties_mode": "merge"}, "--user_properties_mode: expected one of set, root"),
])
def test_bad_flags_name_the_flag(flags, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TranslationSettings.from_flags(**flags)


def test_settings_are_immutable_hashable_and_picklable():
    settings = TranslationSettings.from_flags(ignore_event=["a"], rename_event=["x::y"])
    with pytest.raises(TypeError):
        settings.rename_events["z"] = "w"
    with pytest.raises(AttributeError):
        settings.user_properties_mode = "root"
    copy = pickle.loads(pickle.dumps(settings))
    assert copy == settings and hash(copy) == hash(settings)
    assert copy.rename_events == {"x": "y"}


def test_settings_do_not_share_the_callers_dict():
    renames = {"x": "y"}
    settings = TranslationSettings(rename_events=renames)
    renames["x"] = "changed"
    assert settings.rename_events["x"] == "y"


# Order and robustness.

def test_the_first_failing_rule_names_the_reason():
    broken = {"event_type": None, "user_id": None, "device_id": None, "amplitude_id": None,
              "event_time": None, "client_event_time": None, "server_received_time": None,
              "event_properties": "x"}
    order = ["missing_event_type", "missing_identity", "invalid_timestamp",
             "invalid_event_properties"]
    fixes = [{"event_type": "Signed Up"}, {"user_id": "user-1"},
             {"event_time": "2025-07-01 17:18:14"}, {"event_properties": {}}]
    changes = dict(broken)
    for reason, fix in zip(order, fixes):
        assert outcome(translate(changes)) == (reason, True)
        changes.update(fix)
    assert outcome(translate(changes)) == (None, False)


def test_rows_nested_too_deep_to_write_back_still_get_a_stable_uuid():
    # orjson reads 300 levels but writes at most 254, so the canonical JSON cannot be built.
    nested = b'{"d":' * 300 + b"{}" + b"}" * 300
    line = orjson.dumps({**BASE, "uuid": None, "$insert_id": None})[:-1] + b',"extra":' + nested
    line += b"}"
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(orjson.loads(line))
    first, second = translate_line(line), translate_line(b" " + line + b"  ")
    assert first.event["uuid"] == second.event["uuid"]
    assert uuid.UUID(first.event["uuid"]).version == 5
