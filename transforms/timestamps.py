"""Amplitude time strings → PostHog timestamps, without losing precision or guessing a zone.

Exports write UTC as ``YYYY-MM-DD HH:MM:SS.ffffff`` (no zone); rows sent through other tools may
carry ISO 8601 with ``T`` and ``Z`` or an offset. Every result has exactly six fractional digits
and ends in ``Z``, so timestamps compare chronologically as plain strings.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from typing import Any

__all__ = ["parse_timestamp"]

# Rows of one export hour share a few thousand minutes: checking the calendar part once per
# "YYYY-MM-DD HH:MM:" keeps it out of the per-row path. Maps to the rewritten prefix, or ""
# when that prefix is not a valid time.
_MINUTES: dict[str, str] = {}
_CACHE_LIMIT = 65536
# Each month's last day, as two digits; February's 29th is then checked against the year.
_LAST_DAYS = {f"{month:02d}": f"{calendar.monthrange(2000, month)[1]:02d}"
              for month in range(1, 13)}


def _minute_prefix(head: str) -> str:
    """``YYYY-MM-DDTHH:MM:`` for a valid ``YYYY-MM-DD HH:MM:`` (or with ``T``), else ``""``."""
    if (head[4] != "-" or head[7] != "-" or head[10] not in " T" or head[13] != ":"
            or head[16] != ":"):
        return ""
    year, month, day, hour, minute = head[0:4], head[5:7], head[8:10], head[11:13], head[14:16]
    # Callers checked isascii(), so isdigit() means 0-9 here, and digit strings of one width
    # compare as their numbers do: the calendar checks need no int() nor datetime (which a busy
    # hour of rows would pay for once a minute).
    if not (year + month + day + hour + minute).isdigit():
        return ""
    last_day = _LAST_DAYS.get(month)
    if (last_day is None or not "01" <= day <= last_day or hour > "23" or minute > "59"
            or year == "0000"):  # datetime's years start at 1
        return ""
    if day == "29" and month == "02" and not calendar.isleap(int(year)):
        return ""
    return f"{head[:10]}T{head[11:]}"


def parse_timestamp(value: Any) -> str | None:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC) for a parseable time string, else None.

    Accepts ``YYYY-MM-DD HH:MM:SS`` or ``YYYY-MM-DDTHH:MM:SS``, then 1 to 6 fractional digits
    (more only when the extra digits are zeros), then nothing (UTC), ``Z`` or an offset
    (``+HH:MM``, ``+HHMM``, ``+HH``).
    """
    if type(value) is not str or len(value) < 19 or not value.isascii():
        return None
    head = _MINUTES.get(value[:17])
    if head is None:
        head = _minute_prefix(value[:17])
        if len(_MINUTES) >= _CACHE_LIMIT:
            _MINUTES.clear()
        _MINUTES[value[:17]] = head
    if not head or not value[17:19].isdigit() or value[17] > "5":
        return None
    if len(value) == 26 and value[19] == "." and value[20:].isdigit():  # the export's format
        return head + value[17:] + "Z"
    return _with_fraction_and_zone(value)


def _with_fraction_and_zone(value: str) -> str | None:
    rest = value[19:]
    fraction = ""
    if rest[:1] == ".":
        end = 1
        while end < len(rest) and rest[end].isdigit():
            end += 1
        fraction, rest = rest[1:end], rest[end:]
        if not fraction:
            return None
        if len(fraction) > 6:
            if fraction[6:].strip("0"):
                return None  # finer than microseconds: refuse rather than round
            fraction = fraction[:6]
    fraction = fraction.ljust(6, "0")
    if rest in ("", "Z", "z"):
        return f"{value[:10]}T{value[11:19]}.{fraction}Z"
    offset = _offset_minutes(rest)
    if offset is None:
        return None
    try:
        moment = datetime(int(value[0:4]), int(value[5:7]), int(value[8:10]), int(value[11:13]),
                          int(value[14:16]), int(value[17:19]), int(fraction))
        moment -= timedelta(minutes=offset)
    except (ValueError, OverflowError):
        return None
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond:06d}Z")


def _offset_minutes(text: str) -> int | None:
    """Minutes east of UTC for ``+HH:MM``, ``+HHMM`` or ``+HH`` (or ``-``), else None."""
    if text[:1] not in ("+", "-"):
        return None
    digits = text[1:].replace(":", "", 1) if len(text) == 6 and text[3] == ":" else text[1:]
    if len(digits) not in (2, 4) or not digits.isdigit():
        return None
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        return None
    sign = -1 if text[0] == "-" else 1
    return sign * (hours * 60 + minutes)
