"""The sandbox PostHog's query API: ``POST /api/projects/<project_id>/query/``.

As PostHog answers it (https://github.com/PostHog/posthog/blob/master/posthog/api/query.py):
``Authorization: Bearer <personal API key>``; 401 for a missing or wrong key, 403 for a project
the key may not read; a body ``{"query": {"kind": "HogQLQuery", "query": "..."}}``; 400 with a
``detail`` when the query cannot be resolved; otherwise 200 with ``columns``, ``types`` and
``results`` (one list per row), at most as many as ``sandbox.hogql`` says PostHog returns. The
HogQL is really evaluated over the events the capture server kept (``sandbox.posthog_store``).

Faults for the query API are queued apart from capture's with ``server.query_faults.extend``:
an HTTP status (429 and 503 carry ``Retry-After: server.retry_after``; a ``(status,
retry_after)`` pair sets it), ``"drop"``, ``"slow"`` (answer after ``server.slow_seconds``) or
``"malformed"`` (a 200 whose body is not the query API's JSON).
"""

from __future__ import annotations

import re
import time

import orjson

from sandbox.hogql import HogQLError

__all__ = ["MALFORMED", "handle_query"]

MALFORMED = "malformed"
_CLICKHOUSE_TYPES = {int: "UInt64", float: "Float64", type(None): "Nullable(Nothing)"}
_PATH = re.compile(r"^/api/projects/([^/?]+)/query/?(?:\?.*)?$")


def _refusal(kind: str, code: str, detail: str) -> dict:
    return {"type": kind, "code": code, "detail": detail, "attr": None}


def _answer(server, handler, entry: dict, raw: bytes) -> tuple[int, dict, dict | None]:
    match = _PATH.match(handler.path)
    if match is None:
        return 404, {"detail": "Not found."}, None
    authorization = handler.headers.get("Authorization") or ""
    if not authorization.startswith("Bearer "):
        return 401, _refusal("authentication_error", "not_authenticated",
                             "Authentication credentials were not provided."), None
    if authorization[len("Bearer "):] != server.personal_api_key:
        return 401, _refusal("authentication_error", "authentication_failed",
                             "Personal API key found in request Authorization header is "
                             "invalid."), None
    if match.group(1) != server.project_id:
        return 403, _refusal("authentication_error", "permission_denied",
                             "You don't have access to the project."), None
    try:
        body = orjson.loads(raw)
        query = body["query"]
        if query.get("kind") != "HogQLQuery" or not isinstance(query.get("query"), str):
            raise ValueError
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError):
        return 400, _refusal("validation_error", "parse_error",
                             'Expected {"query": {"kind": "HogQLQuery", "query": "..."}}'), None
    entry["query"] = query["query"]
    if server.store is None:
        return 400, _refusal("validation_error", "query_error",
                             "This sandbox keeps no events (keep_events is off)"), None
    try:
        columns, results = server.store.query(query["query"])
    except HogQLError as exc:
        return 400, _refusal("validation_error", "query_error", str(exc)), None
    first = results[0] if results else [None] * len(columns)
    types = [[name, _CLICKHOUSE_TYPES.get(type(value), "String")]
             for name, value in zip(columns, first)]
    return 200, {"columns": columns, "types": types, "results": results,
                 "hogql": query["query"], "hasMore": False, "is_cached": False}, None


def handle_query(server, handler) -> None:
    """Answers one query API request on ``handler`` for the capture ``server``."""
    raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    entry = {"status": None, "query": None, "fault": None}
    with server._lock:
        server.query_log.append(entry)
        fault = server.query_faults.popleft() if server.query_faults else None
    entry["fault"] = fault
    if fault == "drop":
        return handler.drop()
    if fault == "slow":
        time.sleep(server.slow_seconds)
    if isinstance(fault, (int, tuple)):
        status, retry_after = fault if isinstance(fault, tuple) else (
            fault, server.retry_after if fault in (429, 503) else None)
        entry["status"] = status
        return handler.answer(status, _refusal("throttled" if status == 429 else "server_error",
                                               "fault", "Injected fault"),
                              {"Retry-After": retry_after} if retry_after is not None else None)
    if fault == MALFORMED:
        entry["status"] = 200
        body = b"<html><body>Bad gateway</body></html>"
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        return None
    status, body, headers = _answer(server, handler, entry, raw)
    entry["status"] = status
    return handler.answer(status, body, headers)
