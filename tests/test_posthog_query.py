"""The query API client against the sandbox PostHog's query API, and the sandbox's HogQL."""

import pytest

from connectors.errors import AuthenticationError
from connectors.posthog_query import PostHogQueryClient, QueryError, app_host_for
from sandbox.hogql import DEFAULT_RETURNED_ROWS, MAX_SELECT_RETURNED_ROWS, HogQLError, to_sqlite
from sandbox.posthog import PostHogCaptureServer
from sandbox.posthog_query_api import MALFORMED

KEY, PERSONAL = "phc_query_test", "phx_query_test_secret"
COUNT = ("SELECT toDate(toTimeZone(timestamp, 'UTC')) AS day, event, uniqExact(uuid) AS uuids, "
         "count() AS stored FROM events WHERE properties.$import_job_id = 'job' "
         "GROUP BY day, event ORDER BY day, event LIMIT 100")


def _event(n: int, day: int, job: str = "job") -> dict:
    return {"event": "e", "distinct_id": "u", "uuid": f"00000000-0000-4000-8000-{n:012d}",
            "timestamp": f"2024-03-0{day}T23:59:59.5+00:00", "properties": {"$import_job_id": job}}


@pytest.fixture
def server():
    with PostHogCaptureServer(KEY, personal_api_key=PERSONAL, project_id="7",
                              retry_after="3", slow_seconds=1.0) as srv:
        srv._accept([_event(1, 1), _event(2, 1), _event(2, 1), _event(3, 2), _event(4, 2, "other")])
        yield srv


def _client(server, sleeps=None, **kwargs):
    sleeps = [] if sleeps is None else sleeps
    return PostHogQueryClient(server.url, "7", PERSONAL, sleep=sleeps.append, **kwargs)


def test_counts_distinct_uuids_per_day_for_the_job_only(server):
    with _client(server) as client:
        result = client.run(COUNT)
    assert result.records() == [{"day": "2024-03-01", "event": "e", "uuids": 2, "stored": 3},
                                {"day": "2024-03-02", "event": "e", "uuids": 1, "stored": 1}]


def test_429_waits_for_retry_after_and_5xx_is_retried(server):
    server.query_faults.extend([429, 503, (500, None)])
    sleeps = []
    with _client(server, sleeps) as client:
        assert len(client.run(COUNT).rows) == 2
        assert client.queries_sent == 4
    assert sleeps[0] >= 3 and sleeps[1] >= 3 and len(sleeps) == 3


def test_a_timeout_is_retried(server):
    server.query_faults.append("slow")
    with _client(server, timeout=0.3) as client:
        assert len(client.run(COUNT).rows) == 2
        assert client.queries_sent == 2


def test_retries_end_with_a_clear_error(server):
    server.query_faults.extend([(503, "10")] * 5)
    with _client(server, max_retry_seconds=5) as client, pytest.raises(QueryError) as raised:
        client.run(COUNT)
    assert "kept failing" in str(raised.value) and "503" in str(raised.value)


def test_a_malformed_answer_is_a_clear_error(server):
    server.query_faults.append(MALFORMED)
    with _client(server) as client, pytest.raises(QueryError, match="not JSON"):
        client.run(COUNT)


def test_a_wrong_key_or_project_names_the_flag_never_the_key(server):
    wrong = "phx_wrong_secret_value"
    with PostHogQueryClient(server.url, "7", wrong) as client, \
            pytest.raises(AuthenticationError) as raised:
        client.run(COUNT)
    assert raised.value.flag == "--posthog_personal_api_key" and wrong not in str(raised.value)
    with PostHogQueryClient(server.url, "8", PERSONAL) as client, \
            pytest.raises(AuthenticationError) as raised:
        client.run(COUNT)
    assert raised.value.flag == "--posthog_project_id" and PERSONAL not in str(raised.value)


def test_a_query_posthog_cannot_run_fails_with_its_detail(server):
    with _client(server) as client, pytest.raises(QueryError, match="Unknown table"):
        client.run("SELECT 1 FROM nowhere LIMIT 1")


def test_rows_are_limited_as_posthog_limits_them_wherever_the_limit_is_written():
    with PostHogCaptureServer(KEY, personal_api_key=PERSONAL, project_id="7") as srv:
        srv._accept([_event(n, 1) for n in range(1, 151)])
        with _client(srv) as client:
            assert len(client.run("SELECT uuid FROM events").rows) == DEFAULT_RETURNED_ROWS
            # A LIMIT on a line of its own, as ``verify --persons`` writes it.
            assert len(client.run("SELECT uuid\nFROM events\nLIMIT 120").rows) == 120
            assert len(client.run("SELECT uuid FROM events LIMIT 7").rows) == 7
    assert to_sqlite("SELECT uuid FROM events LIMIT 99999999").sql.endswith(
        f" LIMIT {MAX_SELECT_RETURNED_ROWS}")


def test_silent_loss_modes_answer_200_and_keep_nothing():
    with PostHogCaptureServer(KEY, quota=2) as srv:
        srv._accept([_event(n, 1) for n in range(1, 5)])
        assert srv.stats()["kept"] == 2 and srv.stats()["silently_dropped"] == 2
    with PostHogCaptureServer(KEY, drop_older_than_days=30) as srv:
        recent = {**_event(9, 1), "timestamp": None}
        srv._accept([_event(1, 1), recent])
        assert list(srv.uuids) == [recent["uuid"]]


def test_app_host_is_derived_from_the_ingestion_host():
    assert app_host_for("https://us.i.posthog.com") == "https://us.posthog.com"
    assert app_host_for("https://eu.i.posthog.com/") == "https://eu.posthog.com"
    assert app_host_for("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"


@pytest.mark.parametrize("query, problem", [
    ("SELECT uuid FROM sessions", "Unknown table"),
    ("SELECT nope FROM events", "Field not found"),
    ("SELECT sumIf(1, 2) FROM events", "Unsupported function"),
    ("SELECT toTimeZone(timestamp, 'Europe/Paris') FROM events", "UTC only"),
    ("SELECT uuid FROM events WHERE", "Syntax error"),
])
def test_hogql_the_sandbox_cannot_evaluate_is_refused(query, problem):
    with pytest.raises(HogQLError, match=problem):
        to_sqlite(query)
