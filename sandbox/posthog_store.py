"""What the sandbox PostHog keeps after capture's 200, and its query API over it.

Events go into an in-memory SQLite table in arrival order; the query API evaluates HogQL over it
(``sandbox.hogql``). PostHog shows historical events only after ingestion has caught up, so a
kept event becomes visible to queries ``visible_after_seconds`` after it arrived. Persons are
computed from the visible events in arrival order by ``sandbox.persons.PersonModel``, the
sandbox's model of PostHog's person processing (``$set``, ``$set_once``, ``$identify`` merges).

Nothing is deduplicated: ClickHouse merges duplicate uuids only when it merges parts, so a
query's ``count()`` can exceed ``uniqExact(uuid)`` for a while
(https://github.com/PostHog/posthog/blob/master/posthog/models/event/sql.py, ReplacingMergeTree).
"""

from __future__ import annotations

import collections
import datetime as dt
import sqlite3
import threading
import time
from typing import Any

import orjson

from sandbox.hogql import to_sqlite

__all__ = ["EventStore"]

_SCHEMA = """
CREATE TABLE events (uuid TEXT, event TEXT, distinct_id TEXT, timestamp TEXT, properties TEXT);
CREATE TABLE persons (id TEXT PRIMARY KEY, properties TEXT, is_identified INTEGER,
                      created_at TEXT);
CREATE TABLE person_distinct_ids (distinct_id TEXT PRIMARY KEY, person_id TEXT);
"""


def _utc_text(timestamp: Any) -> str:
    """PostHog's stored form of an event time, in UTC; capture uses now when there is none."""
    moment = None
    if isinstance(timestamp, str) and timestamp:
        try:
            moment = dt.datetime.fromisoformat(timestamp)
        except ValueError:
            moment = None
    if moment is None:
        moment = dt.datetime.now(dt.timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


class EventStore:
    """Thread-safe; ``add`` from capture's handler threads, ``query`` from the query API's."""

    def __init__(self, visible_after_seconds: float = 0.0):
        self.visible_after_seconds = visible_after_seconds
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.executescript(_SCHEMA)
        self._pending: collections.deque = collections.deque()  # (arrived_at, event)
        self._visible: list[dict] = []  # in arrival order, for the person model
        self._persons = None
        self._persons_fed = 0

    def add(self, events: list[dict]) -> None:
        now = time.monotonic()
        with self._lock:
            self._pending.extend((now, e) for e in events)

    def _publish(self) -> None:
        """Moves events whose ingestion delay has passed into the queried table."""
        # The delay is read now, not on arrival, so a test can change it while events wait.
        until = time.monotonic() - self.visible_after_seconds
        ready = []
        while self._pending and self._pending[0][0] <= until:
            ready.append(self._pending.popleft()[1])
        if not ready:
            return
        self._db.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
            [(str(e.get("uuid", "")), e["event"], str(e["distinct_id"]),
              _utc_text(e.get("timestamp")), orjson.dumps(e.get("properties") or {}).decode())
             for e in ready])
        self._visible.extend(ready)

    def _refresh_persons(self) -> None:
        if self._persons_fed == len(self._visible):
            return
        if self._persons is None:
            from sandbox.persons import PersonModel  # only queries about persons need it
            self._persons = PersonModel()
        for event in self._visible[self._persons_fed:]:
            self._persons.ingest(event)
        self._persons_fed = len(self._visible)
        self._db.execute("DELETE FROM persons")
        self._db.execute("DELETE FROM person_distinct_ids")
        for person in self._persons.persons():
            self._db.execute("INSERT INTO persons VALUES (?, ?, ?, ?)",
                             (str(person.uuid), orjson.dumps(person.properties).decode(),
                              int(bool(person.is_identified)), None))
            self._db.executemany("INSERT INTO person_distinct_ids VALUES (?, ?)",
                                 [(str(d), str(person.uuid)) for d in person.distinct_ids])

    def query(self, hogql: str) -> tuple[list[str], list[list]]:
        """Columns and rows of ``hogql``; raises ``sandbox.hogql.HogQLError`` when it cannot."""
        translated = to_sqlite(hogql)
        with self._lock:
            self._publish()
            if translated.reads_persons:
                self._refresh_persons()
            cursor = self._db.execute(translated.sql)
            columns = [d[0] for d in cursor.description]
            return columns, [list(row) for row in cursor.fetchall()]

    def merge(self) -> int:
        """Removes duplicates as ClickHouse does when it merges parts: one row per uuid, event,
        distinct_id and day (the sorting key of PostHog's events table); returns how many went."""
        with self._lock:
            self._publish()
            removed = self._db.execute(
                "DELETE FROM events WHERE rowid NOT IN (SELECT min(rowid) FROM events GROUP BY "
                "uuid, event, distinct_id, date(timestamp))").rowcount
            return removed

    def uuids(self) -> collections.Counter:
        """Every kept uuid and how often it was kept, visible yet or not."""
        with self._lock:
            self._publish()
            counts = collections.Counter(
                row[0] for row in self._db.execute("SELECT uuid FROM events"))
            counts.update(str(e.get("uuid", "")) for _, e in self._pending)
            return counts
