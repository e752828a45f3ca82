"""Who is who in PostHog after the migration: one ``$identify`` per device, one snapshot per person.

PostHog processes historical events in order per distinct_id only, and merges persons by its own
rules (https://github.com/PostHog/posthog/blob/master/nodejs/src/worker/ingestion/persons/person-merge-service.ts):
a merge into an already identified person is refused, and a merge involving an id
``isDistinctIdUnmergeable`` holds is refused with only an ingestion warning. Sending every (user,
device) pair would let whichever ``$identify`` PostHog happens to process first win a shared
device, so the job decides, as Amplitude saw it:

- a device belongs to the first user seen on it (earliest pair, ties to the smaller user_id),
  among the users PostHog would merge it with; it gets one ``$identify``, with that user;
- a person is a user with the devices it owns (or a device no user owns), and each of its
  properties ends with its latest value, each first-touch (``$set_once``/``$initial_*``) property
  with its earliest, across all of its distinct_ids;
- that snapshot is sent last, on every distinct_id of the person that carried properties, so it
  is the last thing PostHog processes on each of their ordered lanes, in ``$set`` so that it
  replaces what ingestion order left (a ``$set`` event always writes the person:
  https://github.com/PostHog/posthog/blob/master/nodejs/src/worker/ingestion/persons/person-update.ts).

Ids are compared as capture stores them (NUL replaced, cut to 200 characters), which is also how
the ``$identify`` names the device, so the merge finds the device's events.
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline.snapshots import identify_event, person_snapshot_event
from transforms.facts import PERSON_SET, PERSON_SET_ONCE
from transforms.person_facts import EARLIEST, LATEST, PersonTable
from transforms.posthog_rules import captured_distinct_id, is_distinct_id_unmergeable

__all__ = ["IDENTITY_COUNTS", "NOT_MERGED", "ChooseIdentities", "Identities", "PersonSnapshots",
           "identify_events", "merge_refusal", "owners_of", "person_fact_rows", "person_of",
           "snapshot_events", "snapshots_of"]

# Why a pair gets no $identify, as the report names it.
SHARED_DEVICE, ILLEGAL_USER_ID, ILLEGAL_DEVICE_ID, SAME_ID = (
    "shared_device", "illegal_user_id", "illegal_device_id", "same_id")
NOT_MERGED = (SHARED_DEVICE, ILLEGAL_USER_ID, ILLEGAL_DEVICE_ID, SAME_ID)
PAIRS_SEEN, IDENTIFY_SENT, DEVICES_SHARED = "pairs_seen", "identify_sent", "devices_shared"
IDENTITY_COUNTS = (PAIRS_SEEN, IDENTIFY_SENT, DEVICES_SHARED,
                   *(f"not_merged:{reason}" for reason in NOT_MERGED))


def merge_refusal(user_id: str, device_id: str) -> str | None:
    """Why PostHog would not merge ``device_id`` into ``user_id`` (None: it would)."""
    user, device = captured_distinct_id(user_id), captured_distinct_id(device_id)
    if user == device:
        return SAME_ID  # nothing to merge: the device's events already are the user's
    if is_distinct_id_unmergeable(user):
        return ILLEGAL_USER_ID
    if is_distinct_id_unmergeable(device):
        return ILLEGAL_DEVICE_ID
    return None


class _UsersFn(beam.CombineFn):
    """Per device: ``{user_id: earliest timestamp}`` of every user seen with it.

    Lifted before the shuffle, it takes the pairs of every hour's facts straight to one element
    per device, where picking the earliest of each pair and then the device's first user took
    two shuffles. A device is rarely shared by many users, so the dict stays small.
    """

    def create_accumulator(self):
        return {}

    def add_input(self, accumulator, sighting):
        user_id, timestamp = sighting
        known = accumulator.get(user_id)
        if known is None or timestamp < known:
            accumulator[user_id] = timestamp
        return accumulator

    def merge_accumulators(self, accumulators):
        merged = None
        for accumulator in accumulators:
            if merged is None:
                merged = accumulator
                continue
            for sighting in accumulator.items():
                self.add_input(merged, sighting)
        return {} if merged is None else merged

    def extract_output(self, accumulator):
        return accumulator


# It yields tagged and plain elements: Beam would infer a union the next step refuses.
@beam.typehints.with_output_types(Any)
class _Identify(beam.DoFn):
    """``(device_id, {user_id: earliest timestamp})`` -> the device's ``$identify`` with its
    first mergeable user (ties to the smaller user_id), its owner, and the counts of its pairs."""

    def __init__(self):
        self._counters = {name: Metrics.counter("identities", name) for name in IDENTITY_COUNTS}

    def _count(self, name: str, n: int = 1):
        self._counters[name].inc(n)
        return beam.pvalue.TaggedOutput("counts", (name, n))

    def process(self, device_users):
        device_id, users = device_users
        yield self._count(PAIRS_SEEN, len(users))
        mergeable = []
        for user_id, timestamp in users.items():
            reason = merge_refusal(user_id, device_id)
            if reason is None:
                mergeable.append((timestamp, user_id))
            else:
                yield self._count(f"not_merged:{reason}")
        if not mergeable:
            return
        timestamp, user_id = min(mergeable)
        yield self._count(IDENTIFY_SENT)
        if len(mergeable) > 1:
            yield self._count(DEVICES_SHARED)
            yield self._count(f"not_merged:{SHARED_DEVICE}", len(mergeable) - 1)
        yield beam.pvalue.TaggedOutput("owners", (device_id, user_id))
        yield identify_event((user_id, captured_distinct_id(device_id)), timestamp,
                             uuid_of=(user_id, device_id))


class Identities(NamedTuple):
    """The outputs of ``ChooseIdentities``: ``events`` (``$identify`` dicts), ``owners``
    (``(device_id, user_id)`` for each merged device) and ``counts`` (``(name, n)`` summed)."""

    events: beam.PCollection
    owners: beam.PCollection
    counts: beam.PCollection


class ChooseIdentities(beam.PTransform):
    """``PCollection[(device_id, (user_id, timestamp))] -> Identities``: one ``$identify`` per
    device, with the first user PostHog would merge it with. Any number of sightings of a pair
    may come in (one per hour's facts): each pair counts once, at its earliest."""

    def expand(self, sightings) -> Identities:
        identified = (sightings
                      | "UsersPerDevice" >> beam.CombinePerKey(_UsersFn())
                      | "Identify" >> beam.ParDo(_Identify()).with_outputs(
                          "counts", "owners", main="events"))
        counts = identified.counts | "SumCounts" >> beam.CombinePerKey(sum)
        return Identities(identified.events, identified.owners, counts)


def snapshot_events(members: Iterable[tuple[bool, list]]) -> list[dict]:
    """The snapshot ``$set`` of one person on each of its distinct_ids, from the fact rows of all
    of them (``(LATEST, person_set row)`` and ``(EARLIEST, person_set_once row)``)."""
    latest, earliest = PersonTable(LATEST), PersonTable(EARLIEST)
    distinct_ids = set()
    for is_latest, (distinct_id, timestamp, uuid, properties) in members:
        distinct_ids.add(distinct_id)
        # One table for the whole person: its distinct_ids' values compete with each other.
        (latest if is_latest else earliest).add("", timestamp + uuid, properties)
    values: dict = {}
    newest = ""
    for table in (latest, earliest):  # a first-touch value wins a name both tables hold
        for key, (stamp, value) in table.values("").items():
            values[key] = value
            newest = max(newest, stamp)
    if not values:
        return []
    person = dict(sorted(values.items()))
    return [person_snapshot_event(distinct_id, newest[:-36], newest[-36:], person)
            for distinct_id in sorted(distinct_ids)]


def owners_of(pairs: Iterable[tuple[str, str, str]]) -> dict[str, tuple[str, str]]:
    """``device_id -> (timestamp, user_id)`` of its first mergeable user, from ``[user_id,
    device_id, earliest timestamp]`` pairs (the ``pairs`` facts): ``ChooseIdentities`` in
    memory, for a few hours' facts (``preview``) or a check (``verify``)."""
    owners: dict[str, tuple[str, str]] = {}
    for user_id, device_id, timestamp in pairs:
        if merge_refusal(user_id, device_id) is None:
            known = owners.get(device_id)
            if known is None or (timestamp, user_id) < known:
                owners[device_id] = (timestamp, user_id)
    return owners


def identify_events(owners: dict[str, tuple[str, str]]) -> list[dict]:
    """The ``$identify`` of each owned device (``owners_of``), by device."""
    return [identify_event((user_id, captured_distinct_id(device_id)), timestamp,
                           uuid_of=(user_id, device_id))
            for device_id, (timestamp, user_id) in sorted(owners.items())]


def person_of(distinct_id: str, owners: dict[str, tuple[str, str]]) -> str:
    """The id a person is known by: a device's owner, else the distinct_id itself."""
    owner = owners.get(distinct_id)
    return owner[1] if owner else distinct_id


def snapshots_of(facts: dict, owners: dict[str, tuple[str, str]]) -> list[dict]:
    """``PersonSnapshots`` in memory: every person's snapshot events from merged ``facts``."""
    members: dict[str, list] = {}
    for kind, latest in ((PERSON_SET, LATEST), (PERSON_SET_ONCE, EARLIEST)):
        for row in facts.get(kind, ()):
            members.setdefault(person_of(row[0], owners), []).append((latest, row))
    return [event for person in sorted(members) for event in snapshot_events(members[person])]


def _tables(accumulator) -> tuple[PersonTable, PersonTable]:
    """A ``_PersonFactsFn`` accumulator as live tables: it is either tables already, or the
    compact ``[latest, earliest]`` lists of ``[stamp, properties]`` that cross a shuffle."""
    if type(accumulator) is tuple:
        return accumulator
    tables = PersonTable(LATEST), PersonTable(EARLIEST)
    for table, rows in zip(tables, accumulator):
        for stamp, properties in rows:
            table.add("", stamp, properties)
    return tables


class _PersonFactsFn(beam.CombineFn):
    """One distinct_id's person facts over every hour: ``[latest, earliest]``, each a list of
    ``[stamp, {property: value}]`` (``person_set`` and ``person_set_once`` rows without the id).

    Beam lifts it before the shuffle, so one element per distinct_id and bundle crosses it
    rather than one per fact row of every hour (which cost more than translating the rows).
    """

    def create_accumulator(self):
        return PersonTable(LATEST), PersonTable(EARLIEST)

    def add_input(self, accumulator, rows):
        tables = _tables(accumulator)
        for table, part in zip(tables, rows):
            for stamp, properties in part:
                table.add("", stamp, properties)
        return tables

    def merge_accumulators(self, accumulators):
        merged = None
        for accumulator in accumulators:
            if merged is None:
                merged = _tables(accumulator)
                continue
            self.add_input(merged, self.compact(accumulator))
        return merged if merged is not None else self.create_accumulator()

    def compact(self, accumulator):
        if type(accumulator) is not tuple:
            return accumulator
        return [[[stamp, properties] for stamp, properties in table.by_stamp("")]
                for table in accumulator]

    def extract_output(self, accumulator):
        return self.compact(accumulator)


def person_fact_rows(facts: dict) -> Iterable[tuple[str, list]]:
    """``(distinct_id, [latest, earliest])`` for ``_PersonFactsFn``, from one set of facts."""
    by_id: dict[str, list] = {}
    for index, kind in enumerate((PERSON_SET, PERSON_SET_ONCE)):
        for distinct_id, timestamp, uuid, properties in facts.get(kind, ()):
            rows = by_id.get(distinct_id)
            if rows is None:
                rows = by_id[distinct_id] = [[], []]
            rows[index].append([timestamp + uuid, properties])
    return by_id.items()


def _person_of(joined):
    """``(distinct_id, {"facts": [[latest, earliest]], "owner": [user_id]})`` ->
    ``(person, (distinct_id, [latest, earliest]))``."""
    distinct_id, grouped = joined
    owners = list(grouped["owner"])
    person = owners[0] if owners else distinct_id
    for rows in grouped["facts"]:
        yield person, (distinct_id, rows)


def _snapshots(person_and_members):
    _, members = person_and_members
    return snapshot_events(
        (is_latest, [distinct_id, stamp[:-36], stamp[-36:], properties])
        for distinct_id, rows in members
        for is_latest, part in zip((LATEST, EARLIEST), rows)
        for stamp, properties in part)


class PersonSnapshots(beam.PTransform):
    """``PCollection[(distinct_id, [latest, earliest])] -> PCollection[event dict]``: each
    person's snapshot ``$set`` on each of its distinct_ids that carried properties.

    Input: ``person_fact_rows`` of each hour's facts (any number of elements per distinct_id).
    ``owners``: ``PCollection[(device_id, user_id)]`` of the merged devices (empty when the job
    sends no ``$identify``: then every distinct_id is a person of its own).
    """

    def __init__(self, owners):
        super().__init__()
        self._owners = owners

    def expand(self, rows):
        facts = rows | "PerDistinctId" >> beam.CombinePerKey(_PersonFactsFn())
        return ({"facts": facts, "owner": self._owners}
                | "ByDistinctId" >> beam.CoGroupByKey()
                | "ToPerson" >> beam.FlatMap(_person_of)
                | "ByPerson" >> beam.GroupByKey()
                | "Snapshot" >> beam.FlatMap(_snapshots))
