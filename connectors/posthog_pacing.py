"""Settings checks and pacing for the PostHog client: token bucket, ``Retry-After``."""

from __future__ import annotations

import threading
import time
import urllib.parse

from connectors.retry_after import parse_retry_after

__all__ = ["DEFAULT_HOST", "TokenBucket", "check_settings", "parse_retry_after", "shared_bucket"]

DEFAULT_HOST = "https://us.i.posthog.com"


def check_settings(host: str, api_key: str, *, max_retry_seconds: float = 600, timeout: float = 30,
                   backoff_base: float = 1.0, backoff_cap: float = 60.0,
                   max_events_per_second: float | None = None, sleep_interval_ms: float = 0,
                   batch_size: int = 1000, max_batch_bytes: int = 10_000_000,
                   max_event_bytes: int = 1_000_000, verify_tls: bool = True) -> None:
    """Raise ValueError naming the flag of the first invalid setting of a client or sink."""
    parts = urllib.parse.urlsplit(host or "")
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise ValueError("--posthog_host must be an http:// or https:// URL such as "
                         f"{DEFAULT_HOST}, got {host!r}")
    if not isinstance(verify_tls, bool):
        raise ValueError(f"verify_tls must be True or False, got {verify_tls!r}")
    if not isinstance(api_key, str) or not api_key.strip():
        raise ValueError("the PostHog project API key is empty: set --posthog_api_key or "
                         "POSTHOG_API_KEY")
    positive = {"--max_retry_seconds": (max_retry_seconds, True), "timeout": (timeout, False),
                "backoff_base": (backoff_base, False), "backoff_cap": (backoff_cap, False),
                "--sleep_interval_ms": (sleep_interval_ms, True),
                "--batch_size": (batch_size, False), "max_batch_bytes": (max_batch_bytes, False),
                "max_event_bytes": (max_event_bytes, False)}
    for flag, (value, zero_ok) in positive.items():
        if not isinstance(value, (int, float)) or not (value >= 0 if zero_ok else value > 0):
            raise ValueError(f"{flag} must be a number {'>= 0' if zero_ok else '> 0'}, "
                             f"got {value!r}")
    if max_events_per_second is not None and not max_events_per_second > 0:
        raise ValueError("--max_events_per_second must be > 0 (or unset), "
                         f"got {max_events_per_second!r}")
    if max_event_bytes > max_batch_bytes:
        raise ValueError(f"max_event_bytes ({max_event_bytes}) must not exceed max_batch_bytes "
                         f"({max_batch_bytes})")


class TokenBucket:
    """Average ``rate`` events/s with bursts of up to one second's worth.

    Tokens may go negative so that a batch larger than the bucket still passes after a
    proportional wait instead of never. Thread-safe: the sinks of one process may share a bucket.
    """

    def __init__(self, rate: float, clock=time.monotonic):
        self._rate = rate
        self._clock = clock
        self._tokens = rate
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self, n: int) -> float:
        """Take ``n`` tokens; return the seconds to wait before using them."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._rate,
                               self._tokens + (now - self._updated) * self._rate) - n
            self._updated = now
            return max(0.0, -self._tokens / self._rate)


_SHARED: dict[float, TokenBucket] = {}
_SHARED_LOCK = threading.Lock()


def shared_bucket(rate: float) -> TokenBucket:
    """The process's one bucket for ``rate``: every sink of a job in this process takes from it,
    so that the process keeps its share of a job-wide rate whatever number of sinks it runs."""
    with _SHARED_LOCK:
        if rate not in _SHARED:
            _SHARED[rate] = TokenBucket(rate)
        return _SHARED[rate]
