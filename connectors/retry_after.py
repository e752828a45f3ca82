"""``Retry-After`` as both HTTP clients read it (PostHog capture and Amplitude's Export API)."""

from __future__ import annotations

import email.utils
import math
import re
from datetime import datetime, timezone

__all__ = ["parse_retry_after"]

# RFC 9110 allows whole seconds only; a decimal ("1.5") is common enough from proxies to honour.
# A sign is not allowed: "-3" is malformed and ignored, like any other value we cannot read.
_SECONDS = re.compile(r"\d+(\.\d+)?")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP date).

    None when the header is absent or unreadable (the caller's own back-off then applies); 0 for
    a date already past. ``now`` (aware, UTC) is for tests.
    """
    if not value or not value.strip():
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        seconds = float(value)
        return seconds if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())
