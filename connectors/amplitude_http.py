"""Amplitude Export API client: one hour per request, streamed to disk, retried within a bound.

Every HTTP status has exactly one meaning here (see ``ExportClient._attempt``), decided in one
place, so the source only sees DONE, EMPTY, FAILED or an ``AuthenticationError``.
"""

from __future__ import annotations

import logging
import random
import time
import urllib.parse
from typing import Callable, NamedTuple

import requests

from connectors import archive
from connectors.errors import AuthenticationError
from connectors.retry_after import parse_retry_after
from transforms.records import DONE, EMPTY, FAILED

__all__ = ["ExportClient", "FetchResult", "TOO_LARGE_ADVICE"]

_LOG = logging.getLogger(__name__)
_CHUNK = 1 << 20
# 429 and the 5xx family are how Amplitude says "later" (504 when an export times out on its
# side); 408 is a proxy's timeout. Everything else is an answer that retrying will not change.
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})
_CONNECT_TIMEOUT = 30.0
_SNIFF_BYTES = 512  # enough of a 404's body to tell an HTML page
TOO_LARGE_ADVICE = (
    "Amplitude refused to export this hour (HTTP 400): it is over the Export API's 4 GB limit. "
    "Export this period with Amplitude's cloud-storage export (Amazon S3 or Google Cloud "
    "Storage) and migrate those files with --source files --source_path <glob>.")


class FetchResult(NamedTuple):
    status: str  # DONE (zip written and validated), EMPTY (Amplitude's "no data" 404) or FAILED
    detail: str | None  # why it failed, for the report
    size: int  # bytes downloaded in the successful attempt
    # The zip's members decompressed while validating it, for ``archive.kept_lines``, when they
    # fit in the client's ``keep_bytes``; None otherwise (read the zip again).
    kept: list[tuple[str, list[bytes]]] | None = None


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None = None, throttled: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.throttled = throttled  # a 429: the project's limit, not this request's problem


class ExportClient:
    """Downloads single export hours. Open with ``open()`` (or ``with``), then call ``fetch``.

    Transient failures (429, 5xx, timeouts, dropped connections, truncated or corrupt zips) are
    retried with exponential back-off and jitter, honouring ``Retry-After``, until ``max_attempts``
    attempts or ``max_retry_seconds`` of waiting, whichever comes first. ``on_retry`` is called
    with the sleep before each retry (for metrics). Clients that share a ``throttle`` (one per
    worker, see ``connectors.amplitude_pool.Throttle``) all wait out the back-off after a 429.
    """

    def __init__(self, base_url: str, api_key: str, secret_key: str, *, max_attempts: int,
                 max_retry_seconds: float, request_timeout: float, backoff_base: float,
                 backoff_cap: float = 120.0, on_retry: Callable[[float], None] | None = None,
                 throttle=None, keep_bytes: int = 0):
        self._url = base_url.rstrip("/") + "/api/2/export"
        self._keep_bytes = keep_bytes
        self._auth = (api_key, secret_key)
        self._max_attempts = max_attempts
        self._max_retry_seconds = max_retry_seconds
        self._timeout = (min(_CONNECT_TIMEOUT, request_timeout), request_timeout)
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._on_retry = on_retry or (lambda _seconds: None)
        self._throttle = throttle
        self._session: requests.Session | None = None

    def open(self) -> "ExportClient":
        self._session = requests.Session()
        # The body is already a zip: compressing it again in transit gains nothing.
        self._session.headers["Accept-Encoding"] = "identity"
        return self

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    __enter__ = open

    def __exit__(self, *exc_info) -> None:
        self.close()

    def fetch(self, hour: str, dest: str) -> FetchResult:
        """Download hour ``hour`` (YYYYMMDDTHH) into the file ``dest`` and validate it."""
        deadline = time.monotonic() + self._max_retry_seconds
        attempt = 0
        while True:
            attempt += 1
            if self._throttle is not None:
                self._throttle.wait()
            try:
                return self._attempt(hour, dest)
            except _Retry as retry:
                reason = self._redact(retry.reason)
                delay = self._backoff(attempt, retry.retry_after)
                if retry.throttled and self._throttle is not None:
                    # Even when this hour gives up: the limit is the project's, not the hour's.
                    self._throttle.back_off(delay)
                if attempt >= self._max_attempts or time.monotonic() + delay > deadline:
                    return FetchResult(FAILED, f"gave up after {attempt} attempt(s) (limits: "
                                       f"{self._max_attempts} attempts, {self._max_retry_seconds:g}"
                                       f" s of retrying); last error: {reason}", 0)
                _LOG.debug("Hour %s: %s; retrying in %.2fs", hour, reason, delay)
                self._on_retry(delay)
                time.sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        # Equal jitter: at least half the exponential step, so retries from many workers spread
        # out without any of them hammering the API early.
        step = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
        delay = step * random.uniform(0.5, 1.0)
        return max(delay, retry_after) if retry_after is not None else delay

    def _attempt(self, hour: str, dest: str) -> FetchResult:
        assert self._session is not None, "ExportClient.open() was not called"
        try:
            with self._session.get(self._url, params={"start": hour, "end": hour}, auth=self._auth,
                                   stream=True, timeout=self._timeout) as response:
                code = response.status_code
                if code == 200:
                    size = self._save(response, dest)
                elif code == 404:
                    problem = self._foreign_404(response)
                    if problem:
                        return FetchResult(FAILED, (
                            f"HTTP 404 that is not Amplitude's \"no data\" answer: {problem}. "
                            "Check --amplitude_url (or --amplitude_region)."), 0)
                    return FetchResult(EMPTY, None, 0)
                elif code == 400:
                    return FetchResult(FAILED, TOO_LARGE_ADVICE, 0)
                elif code in (401, 403):
                    raise AuthenticationError(
                        f"Amplitude refused the credentials (HTTP {code}): check "
                        "--amplitude_api_key and --amplitude_secret_key (or AMPLITUDE_API_KEY and "
                        "AMPLITUDE_SECRET_KEY) and --amplitude_region/--amplitude_url.",
                        flag="--amplitude_api_key")
                elif code in _TRANSIENT:
                    raise _Retry(f"HTTP {code}",
                                 parse_retry_after(response.headers.get("Retry-After")),
                                 throttled=code == 429)
                else:
                    return FetchResult(FAILED, f"unexpected HTTP {code} from the Export API", 0)
        except requests.RequestException as exc:
            # Covers refused and dropped connections, timeouts and bodies cut short of their
            # Content-Length (urllib3 enforces it while streaming).
            raise _Retry(f"{type(exc).__name__}: {exc}") from None
        try:
            kept = archive.validate(dest, archive.ZIP, keep_bytes=self._keep_bytes)
        except archive.CorruptArchive as exc:
            raise _Retry(f"downloaded export is damaged: {exc}") from None
        return FetchResult(DONE, None, size, kept)

    def _foreign_404(self, response: requests.Response) -> str | None:
        """Why a 404 cannot be the Export API's "no data for this range", or None if it can be.

        Amplitude documents a 404 as the answer for a range with no data and documents no body
        for it (https://amplitude.com/docs/apis/analytics/export, "Response"). Its API answers
        at the path we asked for and never with a web page. So a 404 reached through a redirect
        to another path (a login page, a proxy's rewrite) or carrying an HTML page (a proxy's or
        web server's error page) is a wrong --amplitude_url, and every hour would otherwise be
        recorded empty for good. Any other 404 is trusted as "no data"; a URL that answers plain
        404s everywhere is caught later, when a whole run comes back empty.
        """
        asked, got = urllib.parse.urlsplit(self._url).path, urllib.parse.urlsplit(response.url).path
        if got.rstrip("/") != asked.rstrip("/"):
            return f"it came after a redirect to {got or '/'}"
        content_type = response.headers.get("Content-Type", "").lower()
        head = next(response.iter_content(_SNIFF_BYTES), b"")[:_SNIFF_BYTES].lstrip().lower()
        if "html" in content_type or head.startswith((b"<!doctype", b"<html")):
            return "it is an HTML page, as a proxy or web server sends"
        return None

    @staticmethod
    def _save(response: requests.Response, dest: str) -> int:
        size = 0
        with open(dest, "wb") as out:
            for chunk in response.iter_content(_CHUNK):
                out.write(chunk)
                size += len(chunk)
        # Content-Length counts the bytes on the wire, before any Content-Encoding is undone;
        # identity is asked for, but a proxy may compress anyway.
        received = response.raw.tell()
        expected = response.headers.get("Content-Length")
        if expected is not None and expected.isdigit() and int(expected) != received:
            raise _Retry(f"body ended after {received} of {expected} bytes")
        return size

    def _redact(self, text: str) -> str:
        for secret in self._auth:
            if secret:
                text = text.replace(secret, "***")
        return text
