"""``verify --persons N``: do N persons in PostHog hold the properties of the job's snapshot?

The distinct_ids are the N with a snapshot and the smallest SHA-1 of their id, so reruns check
the same ones. What each one's person should hold is the job's person snapshot, built from the
job's facts by the same code the job sends it with (``pipeline.people``: a device belongs to its
first user, a person's properties are gathered over all of its distinct_ids). PostHog is asked
through the ``person_distinct_ids`` table, whose ``person`` field joins the person
(https://github.com/PostHog/posthog/blob/master/posthog/hogql/database/schema/person_distinct_ids.py).
"""

from __future__ import annotations

import hashlib
import heapq

import orjson

from connectors.files import exists, read_bytes
from connectors.posthog_query import PostHogQueryClient, QueryError
from pipeline.ledger import FACTS, GENERATED, hour_path, read_records
from pipeline.people import owners_of, person_of, snapshots_of
from pipeline.verify_compare import quote
from transforms.facts import PERSON_SET, PERSON_SET_ONCE
from transforms.records import DONE

__all__ = ["check_persons", "expected_persons", "persons_query"]

_IDS_PER_QUERY = 200


def _facts(work_dir: str):
    for hour, record in sorted(read_records(work_dir).items()):
        path = hour_path(work_dir, FACTS, hour)
        if hour != GENERATED and record.get("status") == DONE and exists(path):
            yield orjson.loads(read_bytes(path))


def _rank(user_id: str) -> bytes:
    return hashlib.sha1(user_id.encode()).digest()


def _picked(work_dir: str, n: int) -> set[str]:
    """The ``n`` distinct_ids with a snapshot whose ids hash lowest, without holding them all."""
    heap: list[tuple[bytes, str]] = []  # max-heap by rank, through negated bytes
    held: set[str] = set()
    for facts in _facts(work_dir):
        for distinct_id in {row[0] for row in facts.get(PERSON_SET, ())}:
            if distinct_id in held:
                continue
            item = (bytes(255 - b for b in _rank(distinct_id)), distinct_id)
            if len(heap) < n:
                heapq.heappush(heap, item)
                held.add(distinct_id)
            elif item > heap[0]:
                _, gone = heapq.heapreplace(heap, item)
                held.discard(gone)
                held.add(distinct_id)
    return held


def expected_persons(work_dir: str, n: int) -> dict[str, dict]:
    """distinct_id -> the properties its person's snapshot sets, for the ``n`` picked ids.

    Devices are given to their first users over the pairs of the whole job (one entry per
    device held in memory), as the job does.
    """
    picked = _picked(work_dir, n)
    if not picked:
        return {}
    pairs: dict[tuple[str, str], str] = {}
    for facts in _facts(work_dir):
        for user_id, device_id, timestamp in facts.get("pairs", ()):
            known = pairs.get((user_id, device_id))
            if known is None or timestamp < known:
                pairs[(user_id, device_id)] = timestamp
    owners = owners_of((user, device, ts) for (user, device), ts in pairs.items())
    people = {person_of(distinct_id, owners) for distinct_id in picked}
    rows: dict[str, dict] = {PERSON_SET: [], PERSON_SET_ONCE: []}
    for facts in _facts(work_dir):
        for kind in rows:
            rows[kind] += [row for row in facts.get(kind, ())
                           if person_of(row[0], owners) in people]
    expected = {}
    for event in snapshots_of(rows, owners):
        if event["distinct_id"] in picked:
            expected[event["distinct_id"]] = event["properties"]["$set"]
    return dict(sorted(expected.items()))


def persons_query(distinct_ids: list[str]) -> str:
    return ("SELECT distinct_id, person.properties AS properties\n"
            "FROM person_distinct_ids\n"
            f"WHERE distinct_id IN ({', '.join(quote(d) for d in distinct_ids)})\n"
            f"LIMIT {len(distinct_ids)}")


def check_persons(client: PostHogQueryClient, work_dir: str, n: int, queries: list[str]) -> dict:
    """``{"checked", "mismatches": [{"distinct_id", "property", "expected", "found"}]}``."""
    expected = expected_persons(work_dir, n)
    ids = sorted(expected)
    found: dict[str, dict] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        query = persons_query(ids[start:start + _IDS_PER_QUERY])
        queries.append(query)
        for record in client.run(query).records():
            properties = record.get("properties")
            if isinstance(properties, str):
                try:
                    properties = orjson.loads(properties)
                except orjson.JSONDecodeError:
                    raise QueryError("PostHog's answer holds person properties that are not "
                                     "JSON", "--posthog_app_host") from None
            found[str(record.get("distinct_id"))] = properties or {}
    mismatches = []
    for user_id in ids:
        person = found.get(user_id)
        if person is None:
            mismatches.append({"distinct_id": user_id, "property": None,
                               "expected": "a person", "found": None})
            continue
        for name, value in sorted(expected[user_id].items()):
            if person.get(name) != value:
                mismatches.append({"distinct_id": user_id, "property": name,
                                   "expected": value, "found": person.get(name)})
    return {"checked": len(ids), "mismatches": mismatches}
