"""PostHogClient edges: pacing vs the retry budget, one Retry-After parser, 400s not about events."""

import email.utils
import math
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from connectors import amplitude_http, posthog_client
from connectors.amplitude_http import ExportClient
from connectors.errors import MigrationAbort
from connectors.posthog_client import DELIVERY_FAILED, REJECTED_BY_POSTHOG, PostHogClient
from sandbox.amplitude import AmplitudeExportServer, Fault
from sandbox.posthog import PostHogCaptureServer
from tests.amplitude_rows import rows_for_hours

KEY = "phc_budget_test_key"


def events(n):
    return [{"event": "Page Viewed", "distinct_id": f"user-{i}", "uuid": str(uuid.uuid4()),
             "properties": {"i": i}} for i in range(n)]


class FakeClock:
    """Stands in for the client's ``time`` module: sleeping only moves this clock on."""

    def __init__(self):
        self.now = 1_000.0
        self.slept = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def server():
    with PostHogCaptureServer(KEY, retry_after="0") as srv:
        yield srv


def test_pacing_does_not_count_against_the_retry_budget(server, monkeypatch):
    # Before: 1 event/s paces a batch of 1,000 for ~1,000 s, which ate the 600 s budget, so one
    # 503 dead-lettered the whole batch as delivery_failed after a single attempt.
    clock = FakeClock()
    monkeypatch.setattr(posthog_client, "time", clock)
    server.inject(503)
    with PostHogClient(server.url, KEY, max_events_per_second=1, batch_size=1000,
                       max_retry_seconds=600, backoff_base=0.001, backoff_cap=0.005,
                       sleep_interval_ms=50) as client:
        result = client.send(events(1000))
    assert (result.acknowledged, result.failed, result.retries) == (1000, [], 1)
    assert server.requests == 2
    assert sum(clock.slept) > 1500  # it was paced, twice, and still retried


def test_back_off_still_counts_against_the_retry_budget(server, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(posthog_client, "time", clock)
    server.fault_rate, server.fault_kinds = 1.0, (503,)
    with PostHogClient(server.url, KEY, max_events_per_second=1, batch_size=10,
                       max_retry_seconds=30, backoff_base=4, backoff_cap=8) as client:
        # Jitter at its upper bound makes the count exact: waits of 4, 8, 8, 8 s fit in the 30 s
        # budget and the next 8 s would not. Random jitter could fit more than ten tiny waits.
        client._random.uniform = lambda low, high: high
        result = client.send(events(10))
    assert [f.reason for f in result.failed] == [DELIVERY_FAILED] * 10
    assert server.requests == 5


@pytest.mark.parametrize("value, seconds", [
    ("120", 120.0), (" 1.5 ", 1.5), ("0", 0.0), ("-3", None), ("soon", None), (None, None),
    ("inf", None), ("nan", None), ("", None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: no wait
])
def test_one_retry_after_parser_serves_both_clients(value, seconds):
    # Before: amplitude_http had its own parser that ignored "1.5" while PostHog's took it.
    assert amplitude_http.parse_retry_after is posthog_client.parse_retry_after
    assert posthog_client.parse_retry_after(value) == seconds


def test_retry_after_http_date_in_the_future():
    later = datetime.now(timezone.utc) + timedelta(seconds=90)
    waited = posthog_client.parse_retry_after(email.utils.format_datetime(later, usegmt=True))
    assert 60 < waited <= 90 and not math.isnan(waited)


def test_amplitude_honours_a_fractional_retry_after(tmp_path):
    hour = "20240305T10"
    with AmplitudeExportServer(rows_for_hours({hour: 3}), "k", "s") as amplitude:
        amplitude.add_faults(Fault(status=503, retry_after="0.4"), hour=hour)
        delays = []
        with ExportClient(amplitude.url, "k", "s", max_attempts=3, max_retry_seconds=10,
                          request_timeout=5, backoff_base=0.001,
                          on_retry=delays.append) as client:
            assert client.fetch(hour, str(tmp_path / "h.zip")).status == "done"
    assert len(delays) == 1 and delays[0] >= 0.4


def test_a_400_that_is_not_about_the_event_stops_the_run_after_few_requests(server):
    # Before: a proxy (or PostHog) refusing every request with 400 cost 2n-1 requests per batch
    # and turned every event into rejected_by_posthog, which resend cannot help.
    server.fault_rate, server.fault_kinds = 1.0, (400,)
    with PostHogClient(server.url, KEY, batch_size=64) as client:
        with pytest.raises(MigrationAbort) as raised:
            client.send(events(64))
    assert raised.value.flag == "--posthog_host"
    assert "HTTP 400" in str(raised.value) and KEY not in str(raised.value)
    assert server.requests <= math.log2(64) + 1


def test_a_400_about_the_event_still_dead_letters_it(server):
    sent = events(8)
    sent[5]["distinct_id"] = ""
    with PostHogClient(server.url, KEY) as client:
        result = client.send(sent)
    assert result.acknowledged == 7
    assert [(f.event, f.reason) for f in result.failed] == [(sent[5], REJECTED_BY_POSTHOG)]
