"""Export hours: the unit the Amplitude source fetches, tracks and reports.

An hour is written ``YYYYMMDDTHH`` (UTC, by ``server_upload_time``), the form Amplitude's Export API
takes for ``start`` and ``end``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Iterable

__all__ = ["EMPTY_RECHECK", "MIGRATION_AGE", "empty_is_final", "exportable_at", "hour_range",
           "hour_start", "hours_not_yet_exportable", "hours_too_recent_to_migrate",
           "migratable_at", "parse_hour"]

_FORMATS = (
    (re.compile(r"\d{8}T\d{2}"), "%Y%m%dT%H"),
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}"), "%Y-%m-%dT%H"),
)
# Amplitude makes data exportable about two hours after it was uploaded
# (https://amplitude.com/docs/apis/analytics/export, "Considerations").
EXPORT_DELAY = dt.timedelta(hours=2)
# PostHog's migration guide (https://posthog.com/docs/migrate) wants migrated events' timestamps
# at least 48 hours before their import; an hour's rows have timestamps up to its end.
MIGRATION_AGE = dt.timedelta(hours=48)
# An empty answer fetched sooner than this after the hour ended may only mean Amplitude had not
# loaded the hour yet (its two hours are "at a minimum"; late loads happen), so it is asked again.
EMPTY_RECHECK = dt.timedelta(hours=24)


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
    if (isinstance(hour, str) and len(hour) == 11 and hour[8] == "T" and hour[:8].isdigit()
            and hour[9:].isdigit()):
        # The canonical form, as the ledger holds it: a multi-year job asks this of every hour
        # at start-up, and strptime costs ~25 µs a call. datetime() still rejects a bad date.
        try:
            return dt.datetime(int(hour[:4]), int(hour[4:6]), int(hour[6:8]), int(hour[9:]),
                               tzinfo=dt.timezone.utc)
        except ValueError:
            pass  # let parse_hour say what is wrong
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
    now = _utc(now)
    return [parse_hour(h) for h in hours if exportable_at(h) > now]


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def exportable_at(hour: str) -> dt.datetime:
    """When Amplitude's Export API should serve the whole hour."""
    return hour_start(hour) + dt.timedelta(hours=1) + EXPORT_DELAY


def migratable_at(hour: str) -> dt.datetime:
    """When the hour's events are old enough for PostHog's historical import."""
    return hour_start(hour) + dt.timedelta(hours=1) + MIGRATION_AGE


def hours_too_recent_to_migrate(hours: Iterable[str], now: dt.datetime) -> list[str]:
    """The hours whose events are under ``MIGRATION_AGE`` old at ``now`` (naive means UTC)."""
    now = _utc(now)
    return [parse_hour(h) for h in hours if migratable_at(h) > now]


def empty_is_final(hour: str, fetched_after: str | None) -> bool:
    """Whether an empty answer can be trusted: it was fetched ``EMPTY_RECHECK`` after the hour
    ended or later. ``fetched_after`` is an ISO UTC time no later than the fetch (the start of
    the run that fetched it); unknown means not final."""
    if not fetched_after:
        return False
    fetched = _utc(dt.datetime.fromisoformat(fetched_after.replace("Z", "+00:00")))
    return fetched >= hour_start(hour) + dt.timedelta(hours=1) + EMPTY_RECHECK
