"""Export hours: the unit the Amplitude source fetches, tracks and reports.

An hour is written ``YYYYMMDDTHH`` (UTC, by ``server_upload_time``), the form Amplitude's Export API
takes for ``start`` and ``end``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Iterable

__all__ = ["parse_hour", "hour_range", "hour_start", "hours_not_yet_exportable"]

_FORMATS = (
    (re.compile(r"\d{8}T\d{2}"), "%Y%m%dT%H"),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}"), "%Y-%m-%dT%H"),
)
# Amplitude makes data exportable about two hours after it was uploaded.
EXPORT_DELAY = dt.timedelta(hours=2)


def parse_hour(text: str) -> str:
    """``YYYYMMDDTHH`` or ``YYYY-MM-DDTHH`` -> ``YYYYMMDDTHH``; ValueError for anything else."""
    if isinstance(text, str):
        for pattern, fmt in _FORMATS:
            if pattern.fullmatch(text.strip()):
                try:
                    return dt.datetime.strptime(text.strip(), fmt).strftime("%Y%m%dT%H")
                except ValueError:
                    break
    raise ValueError(f"{text!r} is not an hour: use YYYYMMDDTHH or YYYY-MM-DDTHH (UTC)")


def hour_start(hour: str) -> dt.datetime:
    """The UTC instant an hour begins."""
    return dt.datetime.strptime(parse_hour(hour), "%Y%m%dT%H").replace(tzinfo=dt.timezone.utc)


def hour_range(start: str, end: str) -> list[str]:
    """Every hour from ``start`` to ``end``, both included (as Amplitude's export range is)."""
    first, last = hour_start(start), hour_start(end)
    if last < first:
        raise ValueError(f"end hour {parse_hour(end)} is before start hour {parse_hour(start)}")
    count = int((last - first) / dt.timedelta(hours=1)) + 1
    return [(first + dt.timedelta(hours=i)).strftime("%Y%m%dT%H") for i in range(count)]


def hours_not_yet_exportable(hours: Iterable[str], now: dt.datetime) -> list[str]:
    """The hours Amplitude may not serve completely yet: in the future or ended under 2 hours ago.

    An hour's last rows are uploaded at its end, so it is complete for export two hours after that.
    A naive ``now`` is taken as UTC.
    """
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    return [parse_hour(h) for h in hours
            if hour_start(h) + dt.timedelta(hours=1) + EXPORT_DELAY > now]
