"""The mapping table in docs/mapping.md, transforms/mapping.py and the translation must agree.

Three checks: docs/mapping.md shows exactly ``render_table()``; every row of the table has an
example here that the translation satisfies (copy rows are checked straight from their data); and
every column of a real export row is either mapped or listed as not migrated.
"""

import uuid
from pathlib import Path

import orjson
import pytest

from transforms import mapping
from transforms.settings import TranslationSettings
from transforms.translate import DEAD_REASONS, SKIP_REASONS, UUID_NAMESPACE, translate_line

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- mapping-table:begin -->", "<!-- mapping-table:end -->"
BASE = {
    "event_type": "Signed Up", "user_id": "user-1", "device_id": "device-1", "amplitude_id": 77,
    "app": 636686, "uuid": None, "$insert_id": "insert-1", "event_id": 42,
    "event_time": "2025-07-01 17:18:14.370000", "client_event_time": "2025-07-01 17:18:10.5",
    "server_received_time": "2025-07-01 17:18:45.113000", "event_properties": {"plan": "pro"},
    "user_properties": {}, "groups": {}, "session_id": -1, "platform": None, "os_name": None,
    "os_version": None,
}
WEB = {"platform": "Web", "os_name": "Firefox", "os_version": "128", "device_family": None,
       "device_type": "Android", "device_model": "Pixel 8"}
ANDROID = {"platform": "Android", "os_version": "14", "device_model": "Pixel Tablet",
           "device_manufacturer": None, "device_brand": "samsung", "device_carrier": "Vodafone"}


def docs_region() -> str:
    text = (ROOT / "docs" / "mapping.md").read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    return text.split(BEGIN)[1].split(END)[0]


def translate(changes=None, **flags):
    row = {**BASE, **(changes or {})}
    return translate_line(orjson.dumps(row), TranslationSettings.from_flags(**flags))


def props(changes=None, **flags):
    translation = translate(changes, **flags)
    assert translation.event is not None, translation
    return translation.event["properties"]


# One example per rule row, keyed like the table: (sources, destination).
RULE_EXAMPLES = {
    (("event_type",), "event"): lambda: (
        translate({"event_type": "[Amplitude] Element Clicked"}).event["event"] == "$autocapture"
        and translate({"event_type": "Viewed Page"}, rename_event=["Viewed Page::Page"])
        .event["event"] == "Page"),
    (("event_type",), "not migrated"): lambda: (
        translate({"event_type": "session_end"}).reason == "session_marker"
        and translate(ignore_event=["Signed Up"]).reason == "ignored"),
    (mapping.IDENTITY_FIELDS, "distinct_id"): lambda: (
        translate({"user_id": " "}).event["distinct_id"] == "device-1"
        and translate({"user_id": None, "device_id": None}).event["distinct_id"] == "amplitude:77"),
    (("uuid", "$insert_id", "app"), "uuid"): lambda: (
        translate().event["uuid"] == str(uuid.uuid5(UUID_NAMESPACE, "636686:insert-1"))
        and translate({"uuid": "AAAAAAAA-7C25-4992-8D41-DCDBD556C1A9"}).event["uuid"]
        == "aaaaaaaa-7c25-4992-8d41-dcdbd556c1a9"),
    (mapping.TIMESTAMP_FIELDS, "timestamp"): lambda: (
        translate({"event_time": "bad"}).event["timestamp"] == "2025-07-01T17:18:10.500000Z"),
    (("event_properties.*",), "properties.*"): lambda: (
        props()["plan"] == "pro" and translate({"event_properties": []}).reason
        == "invalid_event_properties"),
    (("event_properties.language",), "properties.locale"): lambda: (
        props({"event_properties": {"language": "English"}},
              rename_property=["language::locale"])["locale"] == "English"
        and "locale" not in props({"event_properties": {"language": "English"}})),
    ((), "properties.$geoip_disable"): lambda: props()["$geoip_disable"] is True,
    ((), "properties.$import_job_id"): lambda: (
        props({"event_properties": {"$import_job_id": "x"}},
              import_job_id="job-1")["$import_job_id"] == "job-1"
        and "$import_job_id" not in props()),
    (("os_name",), "properties.$browser"): lambda: props(WEB)["$browser"] == "Firefox",
    (("os_version",), "properties.$browser_version"): lambda: (
        props(WEB)["$browser_version"] == "128"),
    (("device_family", "device_type", "device_model"), "properties.$os"): lambda: (
        props(WEB)["$os"] == "Android"),
    (("device_family", "device_type", "device_model"), "properties.$device_type"): lambda: (
        props(WEB)["$device_type"] == "Mobile"),
    (("platform", "os_name"), "properties.$os"): lambda: props(ANDROID)["$os"] == "Android",
    (("os_version",), "properties.$os_version"): lambda: (
        props(ANDROID)["$os_version"] == "14" and props({"os_version": "6.1"})["$os_version"]
        == "6.1" and "$os_version" not in props(WEB)),
    (("device_model",), "properties.$device_model"): lambda: (
        props(ANDROID)["$device_model"] == "Pixel Tablet"),
    (("device_manufacturer", "device_brand"), "properties.$device_manufacturer"): lambda: (
        props(ANDROID)["$device_manufacturer"] == "samsung"),
    (("device_model", "device_family"), "properties.$device_type"): lambda: (
        props(ANDROID)["$device_type"] == "Tablet"),
    (("device_carrier",), "properties.$network_carrier"): lambda: (
        props(ANDROID)["$network_carrier"] == "Vodafone"),
    (("os_name",), "properties.$os"): lambda: props({"os_name": "Linux"})["$os"] == "Linux",
    (("session_id",), "properties.$amplitude_session_id"): lambda: (
        props({"session_id": 1751390294370})["$amplitude_session_id"] == 1751390294370),
    (("session_id", "device_id"), "properties.$session_id"): lambda: (
        uuid.UUID(props({"session_id": 1751390294370})["$session_id"]).int >> 80
        == 1751390294370),
    (("groups",), "properties.$groups"): lambda: (
        props({"groups": {"org": ["a", "b"]}})["$groups"] == {"org": "a"}),
    (("user_properties.*",), "properties.$set.*"): lambda: (
        props({**WEB, "user_properties": {"role": "admin"}})["$set"]
        == {"role": "admin", "$os": "Android", "$browser": "Firefox", "$device_type": "Mobile"}),
    (("user_properties.*",), "properties.*"): lambda: (
        _root := props({"user_properties": {"role": "admin", "plan": "free"}},
                       user_properties_mode="root"),
        (_root["role"], _root["plan"], "$set" in _root) == ("admin", "pro", False))[-1],
    (("user_properties.*",), "properties.user_properties"): lambda: (
        props({"user_properties": {"role": "admin"}}, user_properties_mode="property")
        ["user_properties"] == {"role": "admin"}),
    (("user_properties.initial_*",), "properties.$set_once.$initial_*"): lambda: (
        props({"user_properties": {"initial_referrer": "x", "initial_gclid": "EMPTY"}})
        ["$set_once"] == {"$initial_referrer": "x"}),
}


def key(row: mapping.FieldMapping):
    return row.sources, row.destination


def test_docs_show_the_mapping_table():
    assert mapping.render_table() in docs_region(), (
        "docs/mapping.md and transforms/mapping.py disagree: paste the output of "
        "`python -m transforms.mapping` between the mapping-table markers")
    table_lines = [line for line in docs_region().splitlines() if line.startswith("|")]
    assert len(table_lines) == len(mapping.TABLE) + 2  # header, rule, one line per mapping


def test_docs_document_the_namespace_the_modes_and_every_reason():
    region = docs_region()
    assert f"`{UUID_NAMESPACE}`" in region
    for mode in ("set", "root", "property"):
        assert f"- `{mode}`" in region
    for reason in DEAD_REASONS | SKIP_REASONS:
        assert f"`{reason}`" in region


def test_table_rows_are_unique_and_every_rule_row_has_an_example():
    keys = [key(row) for row in mapping.TABLE]
    assert len(keys) == len(set(keys))
    rules = {key(row) for row in mapping.TABLE if not row.copy}
    assert rules == set(RULE_EXAMPLES), "add or drop examples to match the table's rule rows"


@pytest.mark.parametrize("row", [row for row in mapping.TABLE if not row.copy],
                         ids=lambda row: f"{'+'.join(row.sources)}->{row.destination}")
def test_rule_rows_hold_in_the_translation(row):
    assert RULE_EXAMPLES[key(row)]()


def _put(changes: dict, source: str, value) -> None:
    for container in ("event_properties", "user_properties"):
        if source.startswith(container + "."):
            changes.setdefault(container, {})[source[len(container) + 1:]] = value
            return
    changes[source] = value


@pytest.mark.parametrize("row", [row for row in mapping.TABLE if row.copy],
                         ids=lambda row: row.destination)
def test_copy_rows_hold_in_the_translation(row):
    destination = row.destination.removeprefix("properties.")
    for position, source in enumerate(row.sources):
        changes = {"event_properties": {}}
        for earlier in row.sources[:position]:  # earlier sources empty, so this one is used
            _put(changes, earlier, "")
        _put(changes, source, f"value of {source}")
        assert props(changes)[destination] == f"value of {source}"
    empty = {"event_properties": {}}
    for source in row.sources:
        _put(empty, source, None)
    assert destination not in props(empty)


def test_every_export_column_is_mapped_or_listed_as_not_migrated():
    lines = (ROOT / "tests" / "data" / "amplitude_export_rows.jsonl").read_bytes().splitlines()
    columns = set().union(*(orjson.loads(line) for line in lines))
    mapped = {source for row in mapping.TABLE for source in row.sources
              if not source.startswith(("event_properties.", "user_properties."))}
    mapped |= {"event_properties", "user_properties"}
    assert columns - mapped - set(mapping.NOT_MIGRATED) == set()
    assert mapped & set(mapping.NOT_MIGRATED) == set()
