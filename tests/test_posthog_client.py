"""PostHogClient against the capture sandbox over real HTTP: each answer branch, retries, pacing."""

import logging
import time
import uuid
from datetime import datetime, timezone

import pytest

from connectors.errors import AuthenticationError, MigrationAbort
from connectors.posthog_client import (DELIVERY_FAILED, EVENT_TOO_LARGE, INVALID_EVENT,
                                       REJECTED_BY_POSTHOG, PostHogClient)
from connectors.posthog_pacing import TokenBucket, parse_retry_after
from sandbox.posthog import DROP, LOST, SLOW, PostHogCaptureServer

KEY = "phc_client_test_key"
FAST = dict(backoff_base=0.001, backoff_cap=0.005, max_retry_seconds=5)


def events(n, start=0, **extra):
    return [{"event": "Page Viewed", "distinct_id": f"user-{i}", "uuid": str(uuid.uuid4()),
             "properties": {"i": i}, **extra} for i in range(start, start + n)]


@pytest.fixture
def server():
    with PostHogCaptureServer(KEY, retry_after="0") as srv:
        yield srv


def client_for(server, **settings):
    return PostHogClient(server.url, KEY, **{**FAST, **settings})


def test_sends_gzipped_historical_batches_without_sent_at(server):
    sent = events(2500)
    with client_for(server, batch_size=1000) as client:
        result = client.send(sent)
    assert (result.acknowledged, result.failed, result.batch_sizes) == (2500, [], [1000, 1000, 500])
    assert server.events == sent
    for request in server.request_log:
        assert request["content_encoding"] == "gzip"
        assert request["user_agent"].startswith("aplistorical/")
        assert request["historical_migration"] is True
        assert request["sent_at"] is False


def test_batches_stay_under_max_batch_bytes(server):
    sent = events(60, padding="x" * 900)
    with client_for(server, max_batch_bytes=10_000, max_event_bytes=5_000) as client:
        result = client.send(sent)
    assert result.acknowledged == 60
    assert len(result.batch_sizes) > 6
    assert all(request["body_bytes"] <= 10_000 for request in server.request_log)
    assert server.events == sent


def test_one_invalid_event_among_999_is_isolated(server):
    valid = events(999)
    invalid = {"event": "Broken", "properties": {}}  # no distinct_id
    with client_for(server) as client:
        result = client.send(valid[:400] + [invalid] + valid[400:])
    assert result.acknowledged == 999
    assert [(f.event, f.reason) for f in result.failed] == [(invalid, REJECTED_BY_POSTHOG)]
    assert "distinct_id" in result.failed[0].detail and "HTTP 400" in result.failed[0].detail
    assert sorted(server.uuids) == sorted(e["uuid"] for e in valid)
    assert server.duplicates == 0
    # Bisection costs about two requests per halving, not one per event.
    assert server.requests <= 2 * 10 + 1


def test_bad_uuid_is_rejected_alone(server):
    sent = events(4)
    sent[2]["uuid"] = "0000-not-a-uuid"
    with client_for(server) as client:
        result = client.send(sent)
    assert result.acknowledged == 3
    assert [(f.event["uuid"], f.reason) for f in result.failed] == [("0000-not-a-uuid",
                                                                    REJECTED_BY_POSTHOG)]


def test_413_splits_until_batches_fit_and_an_event_alone_too_large_is_dead_lettered():
    with PostHogCaptureServer(KEY, max_body_bytes=20_000) as server:
        sent = events(50, padding="y" * 700)
        huge = events(1, padding="z" * 30_000)[0]  # under the client's limit, over the server's
        with client_for(server) as client:
            result = client.send(sent[:25] + [huge] + sent[25:])
        assert result.acknowledged == 50
        assert [(f.event, f.reason) for f in result.failed] == [(huge, EVENT_TOO_LARGE)]
        assert "HTTP 413" in result.failed[0].detail
        assert server.events == sent


def test_events_over_max_event_bytes_or_not_objects_are_never_sent(server):
    with client_for(server, max_event_bytes=2000) as client:
        result = client.send([events(1, blob="b" * 3000)[0], "a string", {"bad": {1, 2}}])
    assert [f.reason for f in result.failed] == [EVENT_TOO_LARGE, INVALID_EVENT, INVALID_EVENT]
    assert server.requests == 0


@pytest.mark.parametrize("fault", [None, 401, 403])
def test_refused_key_stops_with_a_message_about_the_project_key(server, fault):
    server.inject(fault)
    key = "phc_wrong_key" if fault is None else KEY
    with PostHogClient(server.url, key, **FAST) as client:
        with pytest.raises(AuthenticationError) as raised:
            client.send(events(3))
    message = str(raised.value)
    assert "--posthog_api_key" in message and "POSTHOG_API_KEY" in message
    assert key not in message
    assert raised.value.flag == "--posthog_api_key"
    assert server.requests == 1  # no retry


@pytest.mark.parametrize("fault", [301, 404])
def test_a_host_that_is_not_a_capture_endpoint_stops_the_run(server, fault):
    server.inject(fault)
    with client_for(server) as client:
        with pytest.raises(MigrationAbort) as raised:
            client.send(events(1))
    assert raised.value.flag == "--posthog_host"


def test_other_4xx_rejects_the_batch_without_splitting(server):
    server.inject(422)
    with client_for(server) as client:
        result = client.send(events(8))
    assert [f.reason for f in result.failed] == [REJECTED_BY_POSTHOG] * 8
    assert server.requests == 1


def test_transient_failures_are_retried_until_acknowledged(server):
    server.inject(500, 502, 503, (429, "0"), 408, DROP)
    sent = events(10)
    with client_for(server) as client:
        result = client.send(sent)
    assert (result.acknowledged, result.failed, result.retries) == (10, [], 6)
    assert server.events == sent and server.duplicates == 0


def test_retry_after_is_honoured(server):
    server.inject((503, "0.3"))
    with client_for(server) as client:
        result = client.send(events(1))
    assert result.acknowledged == 1
    # The back-off alone would sleep at most 5 ms.
    assert result.throttled_ms >= 300


def test_retry_after_beyond_the_budget_fails_at_once(server):
    server.inject((429, "3600"))
    with client_for(server, max_retry_seconds=60) as client:
        result = client.send(events(2))
    assert [f.reason for f in result.failed] == [DELIVERY_FAILED] * 2
    assert "HTTP 429" in result.failed[0].detail
    assert server.requests == 1 and result.throttled_ms == 0


def test_persistent_failure_ends_in_delivery_failed_after_max_retry_seconds(server):
    server.fault_rate, server.fault_kinds = 1.0, (503,)
    with client_for(server, max_retry_seconds=0.1) as client:
        result = client.send(events(5))
    assert result.acknowledged == 0
    assert [f.reason for f in result.failed] == [DELIVERY_FAILED] * 5
    assert result.failed[0].detail.startswith("gave up after")
    assert server.requests == result.retries + 1 > 1


def test_slow_answer_times_out_and_the_retry_duplicates_on_the_server():
    with PostHogCaptureServer(KEY, slow_seconds=0.5) as server:
        server.inject(SLOW)
        sent = events(5)
        with client_for(server, timeout=0.2) as client:
            result = client.send(sent)
        assert result.acknowledged == 5 and result.retries >= 1
        # Each request the client gave up on is still accepted afterwards: at-least-once, with
        # the same uuids, which is what PostHog deduplicates on.
        expected = 5 * (result.retries + 1)
        deadline = time.monotonic() + 5
        while len(server.events) < expected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.duplicates == expected - 5
        assert set(server.uuids) == {e["uuid"] for e in sent}


def test_thirty_percent_faults_lose_nothing_and_duplicate_nothing():
    with PostHogCaptureServer(KEY, fault_rate=0.3, fault_kinds=(500, 503, 429, DROP),
                              retry_after="0", seed=42) as server:
        sent = events(5000)
        with client_for(server, batch_size=100) as client:
            result = client.send(sent)
        failed = {f.event["uuid"] for f in result.failed}
        assert all(f.reason == DELIVERY_FAILED for f in result.failed)
        assert result.acknowledged + len(failed) == len(sent)
        # These faults all strike before PostHog accepts anything, so exactly once.
        assert server.duplicates == 0
        assert set(server.uuids) == {e["uuid"] for e in sent} - failed
        assert result.retries == sum(1 for r in server.request_log if r["fault"] is not None) > 0


def test_lost_answers_duplicate_exactly_the_batches_whose_answer_was_lost():
    with PostHogCaptureServer(KEY, fault_rate=0.3, fault_kinds=(503, LOST), retry_after="0",
                              seed=3) as server:
        sent = events(2000)
        with client_for(server, batch_size=100) as client:
            result = client.send(sent)
        assert (result.acknowledged, result.failed) == (2000, [])
        lost = sum(r["events"] for r in server.request_log if r["fault"] == LOST)
        assert lost > 0 and server.duplicates == lost
        assert set(server.uuids) == {e["uuid"] for e in sent}


def test_sleep_interval_and_rate_limit_are_counted_as_throttling(server):
    with client_for(server, batch_size=100, sleep_interval_ms=20) as client:
        assert client.send(events(300)).throttled_ms >= 60
    with client_for(server, batch_size=500, max_events_per_second=1000) as client:
        result = client.send(events(2000))  # one second's burst, then waits
    assert result.acknowledged == 2000 and result.throttled_ms > 0


def test_token_bucket_paces_to_the_rate():
    now = [0.0]
    bucket = TokenBucket(100, clock=lambda: now[0])
    assert bucket.take(100) == 0  # a full second's burst
    assert bucket.take(50) == pytest.approx(0.5)
    now[0] += 0.5
    assert bucket.take(200) == pytest.approx(2.0)  # larger than the bucket: proportional wait
    now[0] += 100
    assert bucket.take(100) == 0  # refills only up to one second's worth
    assert bucket.take(1) == pytest.approx(0.01)


def test_parse_retry_after():
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=timezone.utc)
    assert parse_retry_after("120") == 120
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") is None  # malformed: the back-off alone applies
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now) == 30
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("inf") is None


@pytest.mark.parametrize("settings, flag", [
    (dict(host="us.i.posthog.com"), "--posthog_host"),
    (dict(api_key="  "), "POSTHOG_API_KEY"),
    (dict(batch_size=0), "--batch_size"),
    (dict(max_retry_seconds=-1), "--max_retry_seconds"),
    (dict(max_events_per_second=0), "--max_events_per_second"),
    (dict(sleep_interval_ms=-5), "--sleep_interval_ms"),
    (dict(max_event_bytes=2_000_000, max_batch_bytes=1_000_000), "max_event_bytes"),
])
def test_invalid_settings_raise_value_error_naming_the_flag(settings, flag):
    arguments = {"host": "https://eu.i.posthog.com", "api_key": KEY, **settings}
    with pytest.raises(ValueError, match=flag):
        PostHogClient(arguments.pop("host"), arguments.pop("api_key"), **arguments)


def test_tls_is_verified_by_default_and_insecure_is_opt_in(tmp_path, caplog):
    cert, key = _self_signed_certificate(tmp_path)
    with PostHogCaptureServer(KEY, certfile=cert, keyfile=key) as server:
        assert server.url.startswith("https://")
        with client_for(server) as client:
            with pytest.raises(MigrationAbort) as raised:
                client.send(events(1))
        assert raised.value.flag == "--insecure"
        with caplog.at_level(logging.WARNING):
            with client_for(server, verify_tls=False) as client:
                assert client.send(events(1)).acknowledged == 1
        assert "--insecure" in caplog.text


def test_the_key_never_reaches_logs_dead_letters_or_exceptions(server, caplog):
    secret = "phc_SECRET_never_print_me_4242"
    texts = []
    caplog.set_level(logging.DEBUG)
    with PostHogCaptureServer(secret, retry_after="0") as own:
        with PostHogClient(own.url, secret, **{**FAST, "max_retry_seconds": 0.05}) as client:
            own.fault_rate, own.fault_kinds = 1.0, (503,)
            result = client.send(events(3))  # delivery_failed
            own.fault_rate = 0
            own.inject(DROP, 500)
            result2 = client.send(events(2) + [{"event": "no id"}])  # rejected_by_posthog
            texts += [f.detail for f in result.failed + result2.failed]
            texts.append(repr(result) + repr(result2))
    with PostHogClient(server.url, secret, **FAST) as client:  # the sandbox expects another key
        with pytest.raises(AuthenticationError) as raised:
            client.send(events(1))
        texts += [str(raised.value), repr(raised.value)]
    with pytest.raises(ValueError) as invalid:
        PostHogClient("ftp://host", secret)
    texts.append(str(invalid.value))
    reasons = {f.reason for f in result.failed + result2.failed}
    assert {DELIVERY_FAILED, REJECTED_BY_POSTHOG} <= reasons
    texts.append(caplog.text)
    assert caplog.text  # retries and give-ups were logged
    assert not [text for text in texts if secret in text]


def _self_signed_certificate(directory):
    crypto = pytest.importorskip("cryptography")
    del crypto
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=1))
                   .not_valid_after(now + dt.timedelta(hours=1))
                   .add_extension(x509.SubjectAlternativeName(
                       [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)
