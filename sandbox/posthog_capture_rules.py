"""What PostHog's capture checks before it answers ``/batch/``, for the sandbox capture server.

The rules (https://github.com/PostHog/posthog/blob/master/rust/capture/src/v0_endpoint.rs): a
body over 20 MB decompressed is refused with 413; gzip is recognised by ``Content-Encoding``,
``?compression=gzip`` or its magic bytes; a wrong ``api_key``/``token`` is refused with 401; one
event without ``event`` or ``distinct_id``, or with a malformed ``uuid``, refuses the whole batch
with 400.
"""

from __future__ import annotations

import datetime
import time
import urllib.parse
import uuid
import zlib
from typing import Any

import orjson

__all__ = ["Refusal", "event_epoch", "judge_batch", "validation_error"]


class Refusal(Exception):
    """PostHog's answer to a request it refuses: ``status`` and the JSON ``answer``."""

    def __init__(self, status: int, answer: dict):
        super().__init__(status)
        self.status = status
        self.answer = answer


def event_epoch(timestamp: Any) -> float:
    """An event's time in seconds since the epoch; now when it has none (as capture does)."""
    if isinstance(timestamp, str):
        try:
            moment = datetime.datetime.fromisoformat(timestamp)
        except ValueError:
            return time.time()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        return moment.timestamp()
    return time.time()


def validation_error(code: str, detail: str) -> dict:
    return {"type": "validation_error", "code": code, "detail": detail}


def _event_problem(event: Any) -> str | None:
    if not isinstance(event, dict):
        return "not an object"
    if not isinstance(event.get("event"), str) or not event["event"]:
        return "missing 'event'"
    if event.get("distinct_id") in (None, ""):
        return "missing 'distinct_id'"
    if "uuid" in event:
        try:
            uuid.UUID(str(event["uuid"]))
        except ValueError:
            return "'uuid' is not a valid UUID"
    return None


def judge_batch(path: str, headers, raw: bytes, api_key: str,
                max_body_bytes: int) -> tuple[dict, int]:
    """The payload and its decompressed size, or ``Refusal`` with PostHog's answer."""
    parts = urllib.parse.urlsplit(path)
    if parts.path not in ("/batch", "/batch/"):
        raise Refusal(404, {"detail": "Not found"})
    if len(raw) > max_body_bytes:
        raise Refusal(413, validation_error("payload_too_large", "Request body is too large"))
    if (headers.get("Content-Encoding", "").lower() == "gzip"
            or "compression=gzip" in parts.query or raw[:2] == b"\x1f\x8b"):
        inflater = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        try:
            raw = inflater.decompress(raw, max_body_bytes + 1)
        except zlib.error:
            raise Refusal(400, validation_error("invalid_payload", "Body is not valid gzip")) from None
        if len(raw) > max_body_bytes:
            raise Refusal(413, validation_error("payload_too_large", "Request body is too large"))
        if not inflater.eof:
            raise Refusal(400, validation_error("invalid_payload", "Body is truncated gzip"))
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Refusal(400, validation_error("invalid_payload", "Body is not valid JSON")) from None
    if not isinstance(payload, dict):
        raise Refusal(400, validation_error("invalid_payload", "Body is not a JSON object"))
    if (payload.get("api_key") or payload.get("token")) != api_key:
        raise Refusal(401, {"type": "authentication_error", "code": "invalid_api_key",
                             "detail": "Project API key invalid. You can find your project "
                                       "API key in PostHog project settings."})
    if not isinstance(payload.get("batch"), list):
        raise Refusal(400, validation_error("invalid_payload", "'batch' must be a list of events"))
    for index, event in enumerate(payload["batch"]):
        problem = _event_problem(event)
        if problem:
            raise Refusal(400, validation_error("invalid_payload",
                                       f"Invalid event at index {index}: {problem}"))
    return payload, len(raw)
