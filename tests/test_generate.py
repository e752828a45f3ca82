"""The sample-data generator: same seed, same bytes; the quirks of real exports; hour placement."""

from __future__ import annotations

import collections
import re
from datetime import datetime, timedelta

import orjson
import pytest

from sandbox import generate
from sandbox.generate import (
    BAD_ROW_KINDS, COLUMNS, generate_rows, generate_rows_by_hour, write_jsonl,
)

TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
FIXTURE_COLUMNS = set().union(*(
    orjson.loads(line) for line in open("tests/data/amplitude_export_rows.jsonl", "rb")))


def _parse(line: bytes) -> dict | None:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


def _parses_as_time(text) -> bool:
    try:
        datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")
    except (TypeError, ValueError):
        return False
    return bool(TIME.match(text))


def _is_good(row: dict | None) -> bool:
    return (row is not None and set(row) == set(COLUMNS) and bool(row["event_type"])
            and bool(row["user_id"] or row["device_id"]) and _parses_as_time(row["event_time"]))


@pytest.fixture(scope="module")
def sample() -> list[tuple[str, bytes]]:
    return list(generate_rows_by_hour(20_000, "20240301T00", 48, seed=7))


@pytest.fixture(scope="module")
def rows(sample) -> list[dict]:
    return [row for row in (_parse(line) for _, line in sample) if _is_good(row)]


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not():
    first = list(generate_rows(3000, "20240101T00", 5, seed=3))
    assert first == list(generate_rows(3000, "20240101T00", 5, seed=3))
    assert first != list(generate_rows(3000, "20240101T00", 5, seed=4))
    assert len(first) == 3000


def test_rows_and_rows_by_hour_agree(sample):
    assert [line for _, line in sample] == list(generate_rows(20_000, "20240301T00", 48, seed=7))


def test_every_row_lands_inside_its_hour_and_every_hour_gets_rows(sample):
    per_hour = collections.Counter(hour for hour, _ in sample)
    expected = [(datetime(2024, 3, 1) + timedelta(hours=h)).strftime("%Y%m%dT%H")
                for h in range(48)]
    assert sorted(per_hour) == expected
    assert sum(per_hour.values()) == 20_000
    assert max(per_hour.values()) > 2 * min(per_hour.values())  # the daily curve
    for hour, line in sample:
        row = _parse(line)
        if row is None:
            continue
        upload = datetime.strptime(row["server_upload_time"], "%Y-%m-%d %H:%M:%S.%f")
        assert upload.strftime("%Y%m%dT%H") == hour
        if _is_good(row):
            assert datetime.strptime(row["event_time"], "%Y-%m-%d %H:%M:%S.%f") <= upload


def test_within_an_hour_rows_come_in_upload_order(sample):
    uploads = [_parse(line)["server_upload_time"] for hour, line in sample
               if hour == "20240301T12" and _parse(line) is not None]
    assert uploads == sorted(uploads)


def test_every_column_of_the_real_export_is_present_with_nulls(rows):
    assert set(COLUMNS) == FIXTURE_COLUMNS
    assert all(list(row) == list(COLUMNS) for row in rows)
    assert any(row["idfa"] is None and row["partner_id"] is None for row in rows)
    for column in ("event_time", "client_event_time", "server_upload_time",
                   "server_received_time", "client_upload_time", "processed_time"):
        assert all(TIME.match(row[column]) for row in rows), column


def test_rows_are_one_to_three_kilobytes(sample):
    sizes = [len(line) for _, line in sample if _is_good(_parse(line))]
    assert 1000 <= min(sizes) and max(sizes) <= 3072
    assert max(sizes) - min(sizes) > 1000


def test_web_rows_carry_the_browser_in_os_fields_and_page_properties(rows):
    web = [row for row in rows if row["platform"] == "Web"]
    assert web
    assert {row["os_name"] for row in web} <= {"Chrome", "Safari", "Firefox", "Edge"}
    assert {"Windows", "Mac OS"} <= {row["device_family"] for row in web}
    pages = [row for row in web if row["event_type"] == "[Amplitude] Page Viewed"]
    assert pages and all(row["event_properties"]["[Amplitude] Page URL"].startswith("https://")
                         and "[Amplitude] Page Path" in row["event_properties"] for row in pages)
    assert any(row["library"] == "segment" and row["$schema"] == 12 for row in web)


def test_mobile_and_server_rows(rows):
    platforms = collections.Counter(row["platform"] for row in rows)
    assert platforms["iOS"] > 0 and platforms["Android"] > 0
    ios = [row for row in rows if row["platform"] == "iOS"]
    assert all(row["os_name"] == "ios" and row["device_id"] == row["device_id"].upper()
               for row in ios)
    server = [row for row in rows if row["library"] == "http/2.0"]
    assert server and all(row["session_id"] == -1 and row["platform"] is None for row in server)
    assert all(row["session_id"] > 0 for row in rows if row["platform"] is not None)


def test_identity_quirks(rows):
    anonymous = sum(row["user_id"] is None for row in rows) / len(rows)
    assert 0.25 <= anonymous <= 0.35
    users_by_device = collections.defaultdict(set)
    for row in rows:
        if row["user_id"]:
            users_by_device[row["device_id"]].add(row["user_id"])
    assert any(len(users) == 2 for users in users_by_device.values())
    insert_ids = [row["$insert_id"] for row in rows]
    assert any(not UUID.match(value) for value in insert_ids)
    assert any(value.startswith("ajs-") for value in insert_ids)
    assert any(re.fullmatch(r"[A-Za-z ]+:\d+", value) for value in insert_ids)
    assert len(set(insert_ids)) == len(insert_ids)
    uuids = [row["uuid"] for row in rows]
    assert any(value is None for value in uuids)
    assert all(UUID.match(value) for value in uuids if value is not None)


def test_groups_in_both_shapes_with_group_properties(rows):
    grouped = [row for row in rows if row["groups"]]
    assert any(isinstance(row["groups"].get("company"), str) for row in grouped)
    assert any(isinstance(row["groups"].get("team"), list) for row in grouped)
    for row in grouped:
        for group_type, keys in row["groups"].items():
            for key in [keys] if isinstance(keys, str) else keys:
                assert key in row["group_properties"][group_type]


def test_user_properties_have_initial_keys_and_change_over_time(rows):
    assert any("initial_utm_source" in row["user_properties"] for row in rows)
    plans = collections.defaultdict(set)
    for row in rows:
        if row["user_id"] and "plan" in row["user_properties"]:
            plans[row["user_id"]].add(row["user_properties"]["plan"])
    assert any(len(values) > 1 for values in plans.values())


def test_session_markers_and_identify_rows(rows):
    names = collections.Counter(row["event_type"] for row in rows)
    assert names["session_start"] and names["session_end"] and names["$identify"]
    assert names["$identify"] < 0.02 * len(rows)


def test_bad_rows_of_every_kind_and_none_when_asked(sample):
    bad = [line for _, line in sample if not _is_good(_parse(line))]
    assert 0 < len(bad) < 0.006 * len(sample)
    many = [line for line in generate_rows(4000, "20240101T00", 2, seed=1, bad_share=0.05)]
    seen = set()
    for line in many:
        row = _parse(line)
        if row is None:
            seen.add("invalid_json")
        elif not row.get("event_type"):
            seen.add("missing_event_type")
        elif not (row["user_id"] or row["device_id"]):
            seen.add("no_identity")
        elif not _parses_as_time(row["event_time"]):
            seen.add("unparseable_time")
            assert _parses_as_time(row["server_upload_time"])
    assert seen == set(BAD_ROW_KINDS)
    clean = list(generate_rows(4000, "20240101T00", 2, seed=1, bad_share=0.0))
    assert all(_is_good(_parse(line)) for line in clean)


@pytest.mark.parametrize("kwargs, name", [
    (dict(n=-1), "n"), (dict(hours=0), "hours"), (dict(bad_share=1.5), "bad_share"),
    (dict(start_hour="2024-01-01 00:00"), "start_hour"),
    (dict(start_hour="20241301T00"), "start_hour"),
])
def test_bad_arguments_are_refused_naming_the_parameter(kwargs, name):
    arguments = dict(n=10, start_hour="20240101T00", hours=1) | kwargs
    with pytest.raises(ValueError, match=name):
        generate_rows(**arguments)


def test_both_hour_spellings_are_accepted():
    assert list(generate_rows(50, "2024-01-01T05", 1)) == list(generate_rows(50, "20240101T05", 1))


def test_write_jsonl_and_the_command_line(tmp_path, capsys):
    by_function = tmp_path / "a.jsonl"
    by_cli = tmp_path / "b.jsonl"
    assert write_jsonl(by_function, 500, "20240101T00", 3, seed=2) == 500
    assert generate.main(["--rows", "500", "--start", "20240101T00", "--hours", "3",
                          "--seed", "2", "--out", str(by_cli)]) == 0
    assert by_function.read_bytes() == by_cli.read_bytes()
    expected = list(generate_rows(500, "20240101T00", 3, seed=2))
    assert by_function.read_bytes().splitlines() == expected
    with pytest.raises(SystemExit) as exit_info:
        generate.main(["--rows", "5", "--start", "yesterday", "--out", str(tmp_path / "c")])
    assert exit_info.value.code == 2
    assert "start_hour" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
