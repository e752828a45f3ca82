"""The HogQL ``verify`` sends and how its answer is compared with what the job sent.

One query per range of days counts, per UTC day of ``timestamp`` and per event name, the
distinct uuids and the rows PostHog holds with the job's ``$import_job_id``. Rows beyond distinct
uuids are duplicates ClickHouse has not merged yet: PostHog's events table deduplicates only when
it merges parts (https://github.com/PostHog/posthog/blob/master/posthog/models/event/sql.py).
HogQL turns ``timestamp`` into the project's time zone, hence ``toTimeZone(..., 'UTC')``.
Every query has a LIMIT: without one the API returns 100 rows, and never more than 50,000
(https://github.com/PostHog/posthog/blob/master/posthog/hogql/constants.py).
"""

from __future__ import annotations

import datetime as dt

__all__ = ["QUERY_LIMIT", "compare", "count_query", "day_ranges", "quote"]

QUERY_LIMIT = 10_000
EQUAL, SHORT, OVER = "equal", "short", "over"


def quote(text: str) -> str:
    """A HogQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def count_query(job_name: str, first_day: str, end_day: str, limit: int = QUERY_LIMIT) -> str:
    """Distinct uuids and rows per day and event of the job in ``[first_day, end_day)``."""
    return (
        "SELECT toDate(toTimeZone(timestamp, 'UTC')) AS day, event, "
        "uniqExact(uuid) AS uuids, count() AS stored\n"
        "FROM events\n"
        f"WHERE properties.$import_job_id = {quote(job_name)}\n"
        f"  AND timestamp >= toDateTime('{first_day} 00:00:00', 'UTC')\n"
        f"  AND timestamp < toDateTime('{end_day} 00:00:00', 'UTC')\n"
        "GROUP BY day, event\n"
        "ORDER BY day, event\n"
        f"LIMIT {limit}")


def _next(day: str, days: int = 1) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=days)).isoformat()


def day_ranges(days: list[str], names: int) -> list[tuple[str, str]]:
    """``[first, end)`` ranges covering ``days``, each expected to answer within the LIMIT.

    A range spans at most as many days as QUERY_LIMIT rows allow with ``names`` event names a
    day (doubled, for names the job did not send); gaps between far-apart days are skipped.
    """
    span = max(1, QUERY_LIMIT // (2 * max(1, names) + 10))
    ranges: list[tuple[str, str]] = []
    for day in sorted(set(days)):
        if ranges and day < _next(ranges[-1][0], span):
            ranges[-1] = (ranges[-1][0], _next(day))
        else:
            ranges.append((day, _next(day)))
    return ranges


def halves(first: str, end: str) -> list[tuple[str, str]]:
    """Two ranges splitting ``[first, end)``; ``[]`` for a single day."""
    length = (dt.date.fromisoformat(end) - dt.date.fromisoformat(first)).days
    if length <= 1:
        return []
    middle = _next(first, length // 2)
    return [(first, middle), (middle, end)]


def _status(sent: int, uuids: int) -> str:
    return SHORT if uuids < sent else OVER if uuids > sent else EQUAL


def _rows(sent: dict[str, int], found: dict[str, list[int]], key: str) -> list[dict]:
    rows = []
    for name in sorted(set(sent) | set(found)):
        uuids, stored = found.get(name, (0, 0))
        rows.append({key: name, "sent": sent.get(name, 0), "uuids": uuids, "stored": stored,
                     "duplicates_pending": max(0, stored - uuids),
                     "status": _status(sent.get(name, 0), uuids)})
    return rows


def compare(sent_days: dict[str, int], sent_names: dict[str, int], records: list[dict]) -> dict:
    """Per day and per event name: sent, distinct uuids and rows found, and their status."""
    by_day: dict[str, list[int]] = {}
    by_name: dict[str, list[int]] = {}
    for record in records:
        for key, into in ((str(record["day"])[:10], by_day), (str(record["event"]), by_name)):
            slot = into.setdefault(key, [0, 0])
            slot[0] += int(record["uuids"])
            slot[1] += int(record["stored"])
    days = _rows(sent_days, by_day, "day")
    events = _rows(sent_names, by_name, "event")
    short = [row["day"] for row in days if row["status"] == SHORT]
    return {
        "status": SHORT if short else EQUAL,
        "short_days": short,
        "over_days": [row["day"] for row in days if row["status"] == OVER],
        "equal_days": sum(1 for row in days if row["status"] == EQUAL),
        "events_sent": sum(sent_days.values()),
        "uuids_found": sum(row["uuids"] for row in days),
        "duplicates_pending": sum(row["duplicates_pending"] for row in days),
        "days": days,
        "events": events,
    }
