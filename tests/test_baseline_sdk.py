"""The SDK baseline, against the capture sandbox over real HTTP on loopback."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import orjson
import pytest

from benchmarks.baseline_sdk import run_baseline
from sandbox.generate import generate_rows
from sandbox.posthog import PostHogCaptureServer

API_KEY = "phc_baseline_test_key_4f1d"


@pytest.fixture
def server():
    with PostHogCaptureServer(API_KEY) as capture:
        yield capture


def _fixture_lines() -> list[bytes]:
    with open("tests/data/amplitude_export_rows.jsonl", "rb") as rows:
        return [line.rstrip(b"\n") for line in rows]


def test_every_captured_event_arrives_translated_as_the_guide_does(server):
    lines = _fixture_lines() + list(generate_rows(400, "20240101T00", 2, seed=5, bad_share=0))
    rows = [orjson.loads(line) for line in lines]
    result = run_baseline(lines, server.url, API_KEY)

    session_starts = sum(row["event_type"] == "session_start" for row in rows)
    assert result["rows_read"] == len(lines)
    assert result["rows_skipped"] == {"session_start": session_starts}
    assert result["rows_failed"] == {}
    assert result["events_captured"] == len(lines) - session_starts
    assert result["events_dropped"] == result["events_failed_upload"] == 0
    assert result["elapsed_seconds"] > 0 and result["rows_per_second"] > 0

    received = server.events
    assert len(received) == result["events_captured"]
    assert all(entry["historical_migration"] is True
               for entry in server.request_log if entry["status"] == 200)
    names = {event["event"] for event in received}
    assert "$pageview" in names and "$autocapture" in names
    assert not names & {"session_start", "[Amplitude] Page Viewed"}
    expected = [row for row in rows if row["event_type"] != "session_start"]
    # One consumer thread posts in queue order, so events arrive in the order they were read.
    for row, event in zip(expected, received):
        assert event["distinct_id"] == (row["user_id"] or row["device_id"])
        moment = datetime.strptime(row["event_time"], "%Y-%m-%d %H:%M:%S.%f")
        assert datetime.fromisoformat(event["timestamp"]) == moment.replace(tzinfo=timezone.utc)
        assert set(row["event_properties"]) <= set(event["properties"])
        assert event["properties"]["$device_id"] == row["device_id"]
        assert event["uuid"] != row["uuid"]  # the guide sends no uuid: a re-run duplicates
        assert "$groups" not in event["properties"]
    first_ios = next(event for row, event in zip(expected, received) if row["os_name"] == "ios")
    assert first_ios["properties"]["$browser_version"] == "18.5"


def test_bad_rows_are_counted_and_a_refused_batch_is_lost_whole(server):
    good = list(generate_rows(250, "20240101T00", 1, seed=6, bad_share=0))
    row = orjson.loads(good[0])
    no_key = {name: value for name, value in row.items() if name != "event_type"}
    lines = [b'{"event_type": "cut', orjson.dumps(no_key),
             orjson.dumps(row | {"event_time": "not a time"}),
             orjson.dumps(row | {"event_type": None})] + good[1:]
    session_starts = sum(orjson.loads(line)["event_type"] == "session_start"
                         for line in good[1:])
    result = run_baseline(lines, server.url, API_KEY)

    assert result["rows_failed"] == {"invalid_json": 1, "KeyError": 1, "ValueError": 1}
    assert result["events_captured"] == len(lines) - 3 - session_starts
    # The event without a name reaches PostHog, which refuses its whole batch of 100.
    assert result["events_failed_upload"] == 100
    assert len(server.events) == result["events_captured"] - 100
    assert any("missing 'event'" in kind for kind in result["sdk_log"])


def test_the_api_key_is_never_logged_or_returned(server, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    wrong_key = "phc_wrong_key_that_must_not_leak_93c2"
    lines = list(generate_rows(120, "20240101T00", 1, seed=8, bad_share=0))
    result = run_baseline(lines, server.url, wrong_key)

    assert result["events_captured"] > 0
    assert result["events_failed_upload"] == result["events_captured"]  # 401: all refused
    assert server.events == []
    out, err = capsys.readouterr()
    for text in (repr(result), out, err, caplog.text):
        assert wrong_key not in text
    assert logging.getLogger("posthog").propagate  # restored after the run


@pytest.mark.parametrize("host, key, message", [
    ("127.0.0.1:8000", API_KEY, "host"), ("", API_KEY, "host"),
    ("http://127.0.0.1:8000", "", "api_key"),
])
def test_bad_arguments_are_refused(host, key, message):
    with pytest.raises(ValueError, match=message):
        run_baseline([], host, key)
