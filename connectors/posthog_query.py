"""A client for PostHog's query API: run a HogQL query, get its rows.

``POST {app_host}/api/projects/{project_id}/query/`` with ``{"query": {"kind": "HogQLQuery",
"query": ...}}`` and ``Authorization: Bearer <personal API key>`` (scope Query Read); the answer
holds ``columns`` and ``results`` (https://github.com/PostHog/posthog/blob/master/posthog/api/query.py).
The app host is not the ingestion host: ``us.i.posthog.com`` takes events, ``us.posthog.com``
answers queries.

- 429, 408, 425, 5xx, timeouts and dropped connections are retried with exponential backoff and
  full jitter, never sooner than ``Retry-After``; PostHog allows about 120 HogQL queries an hour
  per key by default, so a 429 may ask for minutes. After ``max_retry_seconds`` the last failure
  is raised as ``QueryError``.
- 401/403: ``AuthenticationError`` naming ``--posthog_personal_api_key`` or
  ``--posthog_project_id``; the key's value is never part of a message.
- other 4xx (a query PostHog cannot run): ``QueryError`` with PostHog's ``detail``.
- a 200 whose body is not the query API's JSON (a proxy's page, a truncated body, rows that do
  not match the columns): ``QueryError``; nothing of it is returned.
"""

from __future__ import annotations

import random
import time
from typing import Callable
from urllib.parse import urlsplit

import orjson
import requests

from connectors.errors import AuthenticationError, MigrationAbort
from connectors.retry_after import parse_retry_after

__all__ = ["PostHogQueryClient", "QueryError", "QueryResult", "app_host_for"]

_RETRYABLE = frozenset({408, 425, 429})
_DETAIL_CHARS = 300


class QueryError(MigrationAbort):
    """A query failed for good or its answer could not be read."""


class QueryResult:
    """``columns`` and ``rows`` of one query; ``records()`` gives one dict per row."""

    def __init__(self, columns: list[str], rows: list[list]):
        self.columns, self.rows = columns, rows

    def records(self) -> list[dict]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def app_host_for(posthog_host: str) -> str:
    """PostHog Cloud's app host for its ingestion host; any other host is used as it is."""
    parts = urlsplit(posthog_host)
    cloud = {"us.i.posthog.com": "https://us.posthog.com",
             "eu.i.posthog.com": "https://eu.posthog.com"}
    return cloud.get((parts.hostname or "").lower(), posthog_host.rstrip("/"))


class PostHogQueryClient:
    """Runs HogQL queries for one project; use as a context manager (it holds a session)."""

    def __init__(self, app_host: str, project_id: str, personal_api_key: str, *,
                 timeout: float = 120.0, max_retry_seconds: float = 900.0,
                 verify_tls: bool = True, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        if not personal_api_key:
            raise ValueError("--posthog_personal_api_key: required")
        self._url = f"{app_host.rstrip('/')}/api/projects/{project_id}/query/"
        self._key = personal_api_key
        self._timeout = timeout
        self._max_retry_seconds = max_retry_seconds
        self._verify = verify_tls
        self._sleep, self._clock = sleep, clock
        self._session: requests.Session | None = None
        self.queries_sent = 0  # requests made, retries included

    def __enter__(self) -> "PostHogQueryClient":
        self._session = requests.Session()
        return self

    def __exit__(self, *exc) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __repr__(self) -> str:  # never the key
        return f"PostHogQueryClient({self._url!r})"

    def run(self, hogql: str) -> QueryResult:
        """The rows of ``hogql``, after retrying what is worth retrying."""
        body = orjson.dumps({"query": {"kind": "HogQLQuery", "query": hogql}})
        headers = {"Authorization": f"Bearer {self._key}", "Content-Type": "application/json"}
        started = self._clock()
        attempt = 0
        while True:
            attempt += 1
            failure, wait_at_least = self._attempt(body, headers)
            if isinstance(failure, QueryResult):
                return failure
            waited = self._clock() - started
            backoff = random.uniform(0, min(60.0, 2.0 ** attempt))
            delay = max(backoff, wait_at_least or 0.0)
            if waited + delay > self._max_retry_seconds:
                raise QueryError(f"PostHog's query API kept failing for {waited:.0f} s "
                                 f"({attempt} attempts): {failure}", "--posthog_app_host")
            self._sleep(delay)

    def _attempt(self, body: bytes, headers: dict) -> tuple[QueryResult | str, float | None]:
        """The result, or why this attempt failed and how long to wait at least."""
        self.queries_sent += 1
        try:
            response = self._session.post(self._url, data=body, headers=headers,
                                          timeout=self._timeout, verify=self._verify,
                                          allow_redirects=False)
        except requests.Timeout:
            return f"no answer within {self._timeout:g} s", None
        except requests.ConnectionError as exc:
            return f"connection failed ({type(exc).__name__})", None
        status = response.status_code
        if status in (401, 403):
            flag = ("--posthog_personal_api_key" if status == 401 or
                    "scope" in response.text.lower() else "--posthog_project_id")
            raise AuthenticationError(
                f"{flag}: PostHog's query API refused the request ({status}: "
                f"{_detail(response)}); the personal API key needs the Query Read scope on "
                "this project", flag)
        if status in _RETRYABLE or status >= 500:
            return (f"HTTP {status}: {_detail(response)}",
                    parse_retry_after(response.headers.get("Retry-After")))
        if status != 200:
            raise QueryError(f"PostHog's query API answered {status}: {_detail(response)}",
                             "--posthog_app_host" if status in (301, 302, 404, 405) else None)
        return _parse(response.content), None


def _detail(response: requests.Response) -> str:
    try:
        detail = orjson.loads(response.content).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        detail = None
    text = str(detail) if detail else response.text
    return " ".join(text.split())[:_DETAIL_CHARS] or "(no body)"


def _parse(content: bytes) -> QueryResult:
    try:
        answer = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise QueryError("PostHog's query API answered 200 with a body that is not JSON "
                         f"({content[:80]!r}...); is --posthog_app_host PostHog's app host?",
                         "--posthog_app_host") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("results"), list) \
            or not isinstance(answer.get("columns"), list):
        raise QueryError("PostHog's query API answered 200 without columns and results",
                         "--posthog_app_host")
    columns, rows = answer["columns"], answer["results"]
    if any(not isinstance(row, list) or len(row) != len(columns) for row in rows):
        raise QueryError("PostHog's query API answered rows that do not match its columns",
                         "--posthog_app_host")
    return QueryResult([str(c) for c in columns], rows)
