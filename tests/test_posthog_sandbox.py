"""The PostHog capture sandbox answers like PostHog's /batch/ endpoint, over real HTTP."""

import gzip
import subprocess
import sys
import uuid

import orjson
import pytest
import requests

from sandbox.posthog import DROP, LOST, PostHogCaptureServer

KEY = "phc_sandbox_test_key"


def event(n, **extra):
    return {"event": "Page Viewed", "distinct_id": f"user-{n}", "uuid": str(uuid.uuid4()), **extra}


def post(server, payload, *, compress=True, header=True, query=""):
    body = orjson.dumps(payload)
    headers = {"Content-Type": "application/json"}
    if compress:
        body = gzip.compress(body)
        if header:
            headers["Content-Encoding"] = "gzip"
    return requests.post(f"{server.url}/batch/{query}", data=body, headers=headers, timeout=5)


@pytest.fixture
def server():
    with PostHogCaptureServer(KEY, retry_after="0") as srv:
        yield srv


def test_accepts_a_valid_batch_and_records_it_in_order(server, tmp_path):
    events = [event(n) for n in range(3)]
    answer = post(server, {"api_key": KEY, "historical_migration": True, "batch": events})
    assert (answer.status_code, answer.json()) == (200, {"status": 1})
    assert server.events == events
    assert server.requests == 1
    assert server.request_log[0]["historical_migration"] is True


def test_token_field_is_accepted_and_a_wrong_or_missing_key_is_401(server):
    assert post(server, {"token": KEY, "batch": [event(1)]}).status_code == 200
    assert post(server, {"api_key": "phc_other", "batch": [event(2)]}).status_code == 401
    assert post(server, {"batch": [event(3)]}).status_code == 401
    assert len(server.events) == 1


@pytest.mark.parametrize("compress, header, query", [
    (True, True, ""),  # Content-Encoding: gzip
    (True, False, ""),  # magic bytes only
    (True, False, "?compression=gzip"),
    (False, False, ""),  # plain JSON
])
def test_bodies_are_read_gzipped_or_plain(server, compress, header, query):
    answer = post(server, {"api_key": KEY, "batch": [event(1)]}, compress=compress, header=header,
                  query=query)
    assert answer.status_code == 200
    assert len(server.events) == 1


def test_decompressed_body_over_the_limit_is_413():
    with PostHogCaptureServer(KEY, max_body_bytes=10_000) as server:
        # Highly compressible: small on the wire, over the limit once inflated.
        big = [event(n, padding="x" * 1000) for n in range(20)]
        answer = post(server, {"api_key": KEY, "batch": big})
        assert answer.status_code == 413
        assert post(server, {"api_key": KEY, "batch": big[:2]}).status_code == 200
        assert len(server.events) == 2


@pytest.mark.parametrize("bad", [
    {"distinct_id": "u"},
    {"event": "", "distinct_id": "u"},
    {"event": "e"},
    {"event": "e", "distinct_id": None},
    {"event": "e", "distinct_id": "u", "uuid": "not-a-uuid"},
    "not an object",
])
def test_one_invalid_event_rejects_the_whole_batch(server, bad):
    answer = post(server, {"api_key": KEY, "batch": [event(1), bad, event(2)]})
    assert answer.status_code == 400
    assert "index 1" in answer.json()["detail"]
    assert server.events == []


def test_unknown_path_is_404_and_garbage_is_400(server):
    assert requests.post(f"{server.url}/capture/", data=b"{}", timeout=5).status_code == 404
    assert requests.post(f"{server.url}/batch/", data=b"{nope", timeout=5).status_code == 400
    assert requests.post(f"{server.url}/batch/", data=b"\x1f\x8bjunk", timeout=5).status_code == 400


def test_records_to_jsonl_and_counts_duplicates_by_uuid(tmp_path):
    path = tmp_path / "accepted.jsonl"
    first, second = event(1), event(2)
    with PostHogCaptureServer(KEY, record_path=str(path)) as server:
        post(server, {"api_key": KEY, "batch": [first, second]})
        post(server, {"api_key": KEY, "batch": [first]})
        assert server.duplicates == 1
        assert server.uuids[first["uuid"]] == 2
        assert server.stats() == {"requests": 2, "events": 3, "kept": 3,
                                  "silently_dropped": 0, "queries": 0, "unique_uuids": 2,
                                  "duplicates": 1}
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert lines == [first, second, first]


def test_injected_faults_are_served_in_sequence(server):
    server.inject(500, 503, (429, "7"), (503, "Wed, 21 Oct 2015 07:28:00 GMT"), None)
    payload = {"api_key": KEY, "batch": [event(1)]}
    answers = [post(server, payload) for _ in range(6)]
    assert [a.status_code for a in answers] == [500, 503, 429, 503, 200, 200]
    assert "Retry-After" not in answers[0].headers
    assert answers[1].headers["Retry-After"] == "0"  # the server's retry_after
    assert answers[2].headers["Retry-After"] == "7"
    assert answers[3].headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert len(server.events) == 2


def test_dropped_connection_gives_no_answer_and_lost_answer_keeps_the_events(server):
    payload = {"api_key": KEY, "batch": [event(1)]}
    server.inject(DROP, LOST)
    with pytest.raises(requests.ConnectionError):
        post(server, payload)
    assert server.events == []
    with pytest.raises(requests.ConnectionError):
        post(server, payload)
    assert server.events == payload["batch"]


def test_fault_rate_is_reproducible_with_a_seed():
    def statuses(seed):
        with PostHogCaptureServer(KEY, fault_rate=0.5, seed=seed, retry_after="0") as server:
            return [post(server, {"api_key": KEY, "batch": [event(1)]}).status_code
                    for _ in range(20)]

    first = statuses(7)
    assert first == statuses(7)
    assert {200} < set(first) <= {200, 500, 503, 429}


def test_stats_endpoint(server):
    post(server, {"api_key": KEY, "batch": [event(1)]})
    assert requests.get(f"{server.url}/_sandbox/stats", timeout=5).json()["events"] == 1


def test_command_line_serves_until_terminated(tmp_path):
    record = tmp_path / "events.jsonl"
    help_text = subprocess.run([sys.executable, "-m", "sandbox.posthog", "--help"],
                               capture_output=True, text=True, check=True).stdout
    assert "--fault_rate" in help_text
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.posthog", "--api_key", KEY, "--record_path", str(record)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().split()[-1]
        answer = requests.post(f"{url}/batch/", json={"api_key": KEY, "batch": [event(1)]},
                               timeout=5)
        assert answer.status_code == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert '"events":1' in stderr
    assert len(record.read_bytes().splitlines()) == 1
