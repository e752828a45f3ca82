"""A client for PostHog's batch capture endpoint (``POST {host}/batch/``), with or without Beam.

``WriteToPostHog`` builds one per DoFn instance; the ``resend`` command uses it directly on
dead-lettered events. ``send()`` returns every event it was given either acknowledged or failed
with a reason:

- 2xx: acknowledged.
- 400: PostHog refuses the whole batch when one event is invalid, so the batch is split in halves
  until the invalid events stand alone; those fail ``rejected_by_posthog`` with PostHog's answer.
  A well-formed event refused alone with an answer that names no event problem raises
  ``MigrationAbort`` (the request, not the event, is refused: see
  ``_raise_if_not_about_the_event``).
- 413: split and sent again; a single event that is still too large fails ``event_too_large``.
- 401/403: ``AuthenticationError`` (a wrong key would otherwise fail every event of the job).
- 3xx/404/405: ``MigrationAbort`` naming ``--posthog_host`` (nothing will ever be accepted there).
- 408, 425, 429, 5xx, timeouts and dropped connections: retried with exponential backoff and full
  jitter, waiting at least ``Retry-After``; once ``max_retry_seconds`` would be exceeded the events
  fail ``delivery_failed``. Time slept for pacing is not part of that budget.
- any other 4xx: the batch fails ``rejected_by_posthog`` without splitting.

A retried request may have reached PostHog before the failure (a timeout or a lost answer), so an
event can be stored twice; PostHog deduplicates on the event's ``uuid``, which is why every event
should carry one. ``encode()`` may be called from any thread; ``send()`` and ``send_encoded()``
from one thread at a time (they share a connection pool, the pacing bucket and the retry state).
"""

from __future__ import annotations

import gzip
import logging
import random
import time
from importlib import metadata
from typing import Any, Iterable, NamedTuple, Sequence

import orjson
import requests
import urllib3
from requests.adapters import HTTPAdapter

from connectors.errors import AuthenticationError, MigrationAbort
from connectors.posthog_answers import refused_for_the_request
from connectors.posthog_pacing import DEFAULT_HOST, TokenBucket, check_settings, parse_retry_after

__all__ = [
    "DEFAULT_HOST",
    "DELIVERY_FAILED",
    "EVENT_TOO_LARGE",
    "INVALID_EVENT",
    "REJECTED_BY_POSTHOG",
    "FailedEvent",
    "PostHogClient",
    "SendResult",
    "UnsendableEvent",
]

# Dead-letter reasons.
EVENT_TOO_LARGE = "event_too_large"
REJECTED_BY_POSTHOG = "rejected_by_posthog"
DELIVERY_FAILED = "delivery_failed"
INVALID_EVENT = "invalid_event"  # not a JSON-serialisable dict: nothing PostHog could take

# 408/425 are the server saying "not now"; 429 and 5xx are load shedding or outages at PostHog.
_RETRYABLE = frozenset({408, 425, 429})
# Level 1 halves the CPU of level 6 on event JSON for bodies about 10% larger.
_GZIP_LEVEL = 1
_DETAIL_CHARS = 2000

log = logging.getLogger(__name__)


class FailedEvent(NamedTuple):
    event: Any
    reason: str
    detail: str | None = None


class SendResult(NamedTuple):
    """What became of the events given to one ``send()`` call."""

    acknowledged: int
    failed: list[FailedEvent]
    batch_sizes: list[int]  # events per acknowledged request
    latencies_ms: list[float]  # one per request that got an answer
    retries: int
    throttled_ms: int  # time slept on purpose: pacing and back-off

    @property
    def batches_sent(self) -> int:
        return len(self.batch_sizes)


class UnsendableEvent(ValueError):
    """An event that must not be sent at all; ``reason`` is its dead-letter reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def _version() -> str:
    try:
        return metadata.version("aplistorical")
    except metadata.PackageNotFoundError:
        return "dev"


class _Tally:
    def __init__(self):
        self.acknowledged = 0
        self.failed: list[FailedEvent] = []
        self.batch_sizes: list[int] = []
        self.latencies_ms: list[float] = []
        self.retries = 0
        self.throttled_s = 0.0

    def fail(self, items, reason: str, detail: str) -> None:
        self.failed.extend(FailedEvent(event, reason, detail) for event, _ in items)

    def result(self) -> SendResult:
        return SendResult(self.acknowledged, self.failed, self.batch_sizes, self.latencies_ms,
                          self.retries, round(self.throttled_s * 1000))


class PostHogClient:
    """Sends events to ``POST {host}/batch/`` gzip-compressed, flagged ``historical_migration``.

    ``max_events_per_second`` paces this client alone (a token bucket), ``pacer`` with a bucket
    shared with other clients (it takes precedence); ``sleep_interval_ms`` is
    slept after every request. ``backoff_base``/``backoff_cap`` (seconds) shape the retry delays:
    attempt ``n`` waits a uniform random time in ``[0, min(cap, base * 2**n)]``, or ``Retry-After``
    if PostHog asks for longer.
    """

    def __init__(self, host: str, api_key: str, *, max_retry_seconds: float = 600,
                 verify_tls: bool = True, timeout: float = 30, backoff_base: float = 1.0,
                 backoff_cap: float = 60.0, max_events_per_second: float | None = None,
                 sleep_interval_ms: float = 0, batch_size: int = 1000,
                 max_batch_bytes: int = 10_000_000, max_event_bytes: int = 1_000_000,
                 pacer: TokenBucket | None = None):
        check_settings(host, api_key, max_retry_seconds=max_retry_seconds, timeout=timeout,
                       backoff_base=backoff_base, backoff_cap=backoff_cap,
                       max_events_per_second=max_events_per_second,
                       sleep_interval_ms=sleep_interval_ms, batch_size=batch_size,
                       max_batch_bytes=max_batch_bytes, max_event_bytes=max_event_bytes,
                       verify_tls=verify_tls)
        self.host = host.rstrip("/")
        self._url = self.host + "/batch/"
        self._key = api_key.strip()
        self._max_retry_seconds = max_retry_seconds
        self._timeout = timeout
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._interval_s = sleep_interval_ms / 1000
        self._batch_size = batch_size
        self._max_event_bytes = max_event_bytes
        self._verify_tls = verify_tls
        self._bucket = pacer or (TokenBucket(max_events_per_second, clock=time.monotonic)
                                 if max_events_per_second else None)
        self._random = random.Random()
        # The body is built by concatenation so that halves of a split batch reuse each event's
        # serialised bytes. No sent_at: PostHog would shift every historical timestamp by it.
        self._head = (b'{"api_key":' + orjson.dumps(self._key)
                      + b',"historical_migration":true,"batch":[')
        self.envelope_bytes = len(self._head) + 2
        self.max_payload_bytes = max_batch_bytes - self.envelope_bytes

        self._session = requests.Session()
        # Retries are ours (with Retry-After and a time budget); urllib3 must not add its own.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=2, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers.update({"User-Agent": f"aplistorical/{_version()}",
                                      "Content-Type": "application/json",
                                      "Content-Encoding": "gzip"})
        if not verify_tls:
            log.warning("TLS certificate verification is off for %s (--insecure)", self.host)
            # Warned once above; urllib3 would repeat it on every request.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def __enter__(self) -> "PostHogClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def encode(self, event: Any) -> bytes:
        """The event's JSON; raises ``UnsendableEvent`` for what must not be sent."""
        if not isinstance(event, dict):
            raise UnsendableEvent(INVALID_EVENT, f"not a JSON object but {type(event).__name__}")
        try:
            data = orjson.dumps(event)
        except TypeError as exc:
            raise UnsendableEvent(INVALID_EVENT, f"not serialisable as JSON: {exc}") from None
        if len(data) > self._max_event_bytes:
            raise UnsendableEvent(EVENT_TOO_LARGE, f"{len(data)} bytes of JSON, over the "
                                  f"{self._max_event_bytes}-byte limit for one event")
        return data

    def body(self, encoded: Iterable[bytes]) -> bytes:
        """The gzip-compressed request body of a batch of ``encode()``d events."""
        return gzip.compress(self._head + b",".join(encoded) + b"]}", compresslevel=_GZIP_LEVEL,
                             mtime=0)

    def send(self, events: Sequence[Any]) -> SendResult:
        """Send events in as many requests as the batch limits need."""
        items, unsendable = [], []
        for event in events:
            try:
                items.append((event, self.encode(event)))
            except UnsendableEvent as exc:
                unsendable.append(FailedEvent(event, exc.reason, str(exc)))
        result = self.send_encoded(items)
        result.failed[:0] = unsendable
        return result

    def send_encoded(self, items: Sequence[tuple[Any, bytes]]) -> SendResult:
        """Like ``send()`` for ``(event, encode(event))`` pairs."""
        tally = _Tally()
        chunk, size = [], 0
        for item in items:
            if chunk and (len(chunk) >= self._batch_size
                          or size + len(item[1]) + 1 > self.max_payload_bytes):
                self._deliver(chunk, tally)
                chunk, size = [], 0
            chunk.append(item)
            size += len(item[1]) + 1
        if chunk:
            self._deliver(chunk, tally)
        return tally.result()

    def _deliver(self, chunk: list, tally: _Tally) -> None:
        outcome, detail = self._post(chunk, tally)
        if outcome == "ok":
            tally.acknowledged += len(chunk)
            tally.batch_sizes.append(len(chunk))
        elif outcome in ("invalid", "too_large") and len(chunk) > 1:
            middle = len(chunk) // 2
            self._deliver(chunk[:middle], tally)
            self._deliver(chunk[middle:], tally)
        elif outcome == "too_large":
            tally.fail(chunk, EVENT_TOO_LARGE, detail)
        elif outcome in ("invalid", "rejected"):
            tally.fail(chunk, REJECTED_BY_POSTHOG, detail)
        else:
            log.warning("PostHog did not take a batch of %d events: %s", len(chunk), detail)
            tally.fail(chunk, DELIVERY_FAILED, detail)

    def _post(self, chunk: list, tally: _Tally) -> tuple[str, str]:
        """POST one batch, retrying what may pass later; return an outcome and its detail."""
        body = self.body(data for _, data in chunk)
        started = time.monotonic()
        # Pacing (--max_events_per_second, --sleep_interval_ms) is the user's own choice of
        # speed, not retrying: it is left out of the --max_retry_seconds budget, otherwise a slow
        # rate would spend the budget before the first retry.
        paced = 0.0
        attempt = 0
        while True:
            paced += self._pace(len(chunk), tally)
            sent = time.monotonic()
            try:
                # verify per request: requests lets REQUESTS_CA_BUNDLE override session.verify.
                response = self._session.post(self._url, data=body, timeout=self._timeout,
                                              verify=self._verify_tls, allow_redirects=False)
            except requests.RequestException as exc:
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                    raise MigrationAbort(
                        f"The TLS certificate of {self.host} could not be verified; check "
                        "--posthog_host, or pass --insecure if you trust this host.",
                        flag="--insecure") from None
                detail, wait_at_least = self._redact(f"{type(exc).__name__}: {exc}"), 0.0
            else:
                tally.latencies_ms.append((time.monotonic() - sent) * 1000)
                status = response.status_code
                detail = self._redact(f"HTTP {status}: {response.text[:_DETAIL_CHARS]}")
                if 200 <= status < 300:
                    return "ok", detail
                self._raise_if_fatal(response)
                if status == 400:
                    if len(chunk) == 1:
                        self._raise_if_not_about_the_event(chunk[0][0], detail)
                    return "invalid", detail
                if status == 413:
                    return "too_large", detail
                if status not in _RETRYABLE and status < 500:
                    return "rejected", detail
                wait_at_least = parse_retry_after(response.headers.get("Retry-After")) or 0.0
            finally:
                paced += self._sleep(self._interval_s, tally)
            # Full jitter spreads the retries of many workers hit by the same outage.
            delay = max(wait_at_least, self._random.uniform(
                0, min(self._backoff_cap, self._backoff_base * 2 ** attempt)))
            elapsed = time.monotonic() - started - paced
            if elapsed + delay > self._max_retry_seconds:
                return "failed", (f"gave up after {attempt + 1} attempts in {elapsed:.1f} s "
                                  f"(--max_retry_seconds {self._max_retry_seconds:g}, next wait "
                                  f"{delay:.1f} s); last answer: {detail}")
            log.debug("Retrying a batch of %d events in %.2f s after %s", len(chunk), delay, detail)
            tally.retries += 1
            self._sleep(delay, tally)
            attempt += 1

    def _raise_if_not_about_the_event(self, event: Any, detail: str) -> None:
        """Stop the run when one event alone is refused for a reason that is not about it.

        Every other event would be refused the same way: splitting on would cost 2n-1 requests
        per batch and dead-letter the whole job as ``rejected_by_posthog``, which ``resend``
        cannot undo. Bisection reaches its first single event after log2(n) requests, so this
        bounds what such a 400 costs. What counts as "about the event": ``refused_for_the_request``.
        """
        if not refused_for_the_request(event, detail):
            return
        raise MigrationAbort(
            f"PostHog at {self.host} refused a single well-formed event (it has an event name, "
            f"a distinct_id and a valid uuid) with {detail[:300]}. The request itself is refused, "
            "not the event: check --posthog_host (a proxy or a path in front of PostHog's "
            "capture endpoint?) and --posthog_api_key.", flag="--posthog_host")

    def _raise_if_fatal(self, response: requests.Response) -> None:
        status = response.status_code
        if status in (401, 403):
            raise AuthenticationError(
                f"PostHog at {self.host} refused the project API key (HTTP {status}). Check "
                "--posthog_api_key / POSTHOG_API_KEY: it must be the project API key (phc_...) of "
                "a project on this host; US and EU Cloud keys are not interchangeable.",
                flag="--posthog_api_key")
        if 300 <= status < 400 or status in (404, 405):
            where = response.headers.get("Location")
            raise MigrationAbort(
                f"{self._url} answered HTTP {status}"
                + (f" (redirect to {self._redact(where)})" if where else "")
                + ": this is not a PostHog capture endpoint; check --posthog_host.",
                flag="--posthog_host")

    def _pace(self, n_events: int, tally: _Tally) -> float:
        if self._bucket is None:
            return 0.0
        return self._sleep(self._bucket.take(n_events), tally)

    @staticmethod
    def _sleep(seconds: float, tally: _Tally) -> float:
        if seconds > 0:
            time.sleep(seconds)
            tally.throttled_s += seconds
            return seconds
        return 0.0

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "[redacted]")
