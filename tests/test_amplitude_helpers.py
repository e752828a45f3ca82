"""Hour parsing and ranges, region hosts and Retry-After parsing."""

from __future__ import annotations

import datetime as dt
import email.utils

import pytest

from connectors.amplitude import base_url_for, hour_range, hours_not_yet_exportable, parse_hour
from connectors.retry_after import parse_retry_after as _retry_after
from connectors.files import hour_from_name


@pytest.mark.parametrize("text, hour", [
    ("20240305T07", "20240305T07"), ("2024-03-05T07", "20240305T07"),
    (" 2024-12-31T23 ", "20241231T23"),
])
def test_parse_hour_accepts_both_forms(text, hour):
    assert parse_hour(text) == hour


@pytest.mark.parametrize("text", [
    "2024030507", "20240305T7", "20240305T24", "20240230T01", "2024-03-05 07", "2024-03-05T07:00",
    "", None, 2024030507,
])
def test_parse_hour_rejects_anything_else(text):
    with pytest.raises(ValueError):
        parse_hour(text)


def test_hour_range_is_inclusive_and_crosses_days_and_leap_days():
    assert hour_range("20240228T22", "2024-02-29T01") == [
        "20240228T22", "20240228T23", "20240229T00", "20240229T01"]
    assert hour_range("20240305T10", "20240305T10") == ["20240305T10"]
    assert len(hour_range("20230101T00", "20231231T23")) == 365 * 24


def test_hour_range_rejects_reversed_bounds():
    with pytest.raises(ValueError, match="before"):
        hour_range("20240305T11", "20240305T10")


@pytest.mark.parametrize("region, url, base", [
    ("us", None, "https://amplitude.com"),
    ("eu", None, "https://analytics.eu.amplitude.com"),
    ("EU", "", "https://analytics.eu.amplitude.com"),
    ("eu", "http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
])
def test_base_url_for(region, url, base):
    assert base_url_for(region, url) == base


@pytest.mark.parametrize("region, url, flag", [
    ("asia", None, "--amplitude_region"), ("us", "amplitude.com", "--amplitude_url"),
    ("us", "https://k:s@amplitude.com", "--amplitude_url"),
])
def test_base_url_for_rejects(region, url, flag):
    with pytest.raises(ValueError, match=flag) as raised:
        base_url_for(region, url)
    assert ":s@" not in str(raised.value)


def test_hours_not_yet_exportable():
    now = dt.datetime(2024, 3, 5, 12, 30, tzinfo=dt.timezone.utc)
    hours = hour_range("20240305T08", "20240305T14")
    # 09:00-10:00 ended 2.5 h ago: ready. 10:00-11:00 ended 1.5 h ago: not yet.
    assert hours_not_yet_exportable(hours, now) == hour_range("20240305T10", "20240305T14")
    assert hours_not_yet_exportable(hours, now.replace(tzinfo=None)) == hour_range(
        "20240305T10", "20240305T14")
    assert hours_not_yet_exportable(["20230101T00"], now) == []


@pytest.mark.parametrize("name, hour", [
    ("gs://b/123/123_2024-03-05_7#0.json.gz", "20240305T07"),
    ("/x/123_2024-03-05_23#12.json", "20240305T23"),
    ("/x/exports/20240305T07.zip", "20240305T07"),
    ("2024-03-05T07.jsonl", "20240305T07"),
    ("/x/export.zip", None), ("/x/123_2024-03-05_24#0.json.gz", None), ("data.jsonl", None),
    ("/20240305T07/events.jsonl", None),  # only the file's own name counts
])
def test_hour_from_name(name, hour):
    assert hour_from_name(name) == hour


def test_retry_after_seconds_and_dates():
    assert _retry_after("7") == 7.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=90)
    assert 60 < _retry_after(email.utils.format_datetime(later, usegmt=True)) <= 90
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
