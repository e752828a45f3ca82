"""Events the job generates from what it saw across all hours: identities, groups and persons.

They are computed after every hour of the run is committed (a side input on the commit step is the
barrier) from the per-hour facts in the work_dir, so hours done by earlier runs of the job count
too: a resumed job sends the same generated events as one that ran straight through, with the
same deterministic uuids. Each hour's facts hold partial picks (see ``transforms.facts``); the
picks over all hours are Beam aggregations here, so no worker holds the whole job in memory.

Person snapshots come last. PostHog applies ``$set`` in the order it ingests events, not by
their timestamps, so a parallel migration leaves each person with the properties of whichever
event happened to arrive last. The snapshot (each user's latest properties) is therefore sent by
a third sink that starts only once every other event, the other generated ones included, has
been acknowledged: ``WaitOn`` holds it back until the previous sink's output is complete.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import NamedTuple

import apache_beam as beam
import orjson
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import PCollection

from connectors.files import configure_gcs_emulator, exists, read_bytes
from connectors.posthog_client import DELIVERY_FAILED
from pipeline.ledger import (DEAD_LETTER, FACTS, GENERATED, hour_path, read_records, settled,
                             write_dead_letters, write_record)
from pipeline.people import ChooseIdentities, PersonSnapshots, person_fact_rows
from pipeline.snapshots import file_identify_event, group_identify_event
from transforms.facts import FILES, GROUPS, best_row, keyed_rows
from transforms.posthog_rules import MAX_GROUP_KEY_CHARS
from transforms.records import DONE, FAILED

__all__ = ["IDENTIFY_MODES", "GenerateEvents", "GeneratedEvents", "RecordGenerated", "WaitOn"]

IDENTIFY_MODES = ("pairs", "per_file", "off")


def _job_complete(_, state: str, hours: list[str], _barrier) -> bool:
    """Whether every hour of the job is settled (done, or empty for good: an empty answer
    fetched too soon will be fetched again) once this run's hours are committed."""
    configure_gcs_emulator()
    records = read_records(state)
    return all(settled(records, hour) for hour in hours)


def _facts_files(_, state: str, hours: frozenset, complete: bool) -> list[str]:
    """The facts files of ``hours``, from one listing: hours without facts have no file, and a
    long job would otherwise ask for each of thousands of hours whether its file exists."""
    if not complete:  # generated events are final only once the job has every hour
        return []
    configure_gcs_emulator()
    matched = FileSystems.match([hour_path(state, FACTS, "*")])[0].metadata_list
    return sorted(m.path for m in matched
                  if m.path.rsplit("/", 1)[-1].removesuffix(".json") in hours)


def _read_facts(path: str) -> dict:
    configure_gcs_emulator()
    return orjson.loads(read_bytes(path))


def _pairs(facts: dict):
    for user_id, device_id, timestamp in facts.get("pairs", ()):
        yield device_id, (user_id, timestamp)


def _file_identifies(facts: dict):
    # One event per (hour, file, user): each hour's facts already hold the file's first event.
    for row in facts.get(FILES, ()):
        event = file_identify_event(row)
        if event is not None:
            yield event


def _group_identifies(facts: dict):
    # PostHog drops a group whose key is over 400 characters: its $groupidentify would only
    # be refused, so it is not sent (the report counts group_key_too_long).
    for key, row in keyed_rows(facts, GROUPS):
        if len(row[1]) <= MAX_GROUP_KEY_CHARS:
            yield key, row


class GeneratedEvents(NamedTuple):
    """The outputs of ``GenerateEvents``.

    ``events``: ``$identify`` and ``$groupidentify``, to send once every hour is committed.
    ``snapshots``: each person's final ``$set``, to send only after everything else (``WaitOn``).
    ``identities``: ``(name, count)`` of ``pipeline.people.IDENTITY_COUNTS`` (pairs mode).
    ``complete``: one bool, whether every hour of the job was done; when not, the other outputs
    are empty and nothing is recorded (``RecordGenerated``), so a later run sends them.
    """

    events: PCollection
    snapshots: PCollection
    identities: PCollection
    complete: PCollection


class GenerateEvents(beam.PTransform):
    """``PBegin -> GeneratedEvents``: the job's generated events, from the facts of ``hours``.

    ``barrier`` is a PCollection that is complete only when every hour of the run is committed.
    Generated events carry the times of the job's earliest and latest events, so they are built
    only once every hour of ``hours`` is done or empty: sent earlier, a later run adding earlier
    hours would send them again under other dates, which PostHog does not deduplicate.
    ``identify_mode``: ``pairs`` (one ``$identify`` per device, with its first user: see
    ``pipeline.people``), ``per_file`` (one per user per export file, with the user's properties
    then; from the ``files`` facts, which the translate stage gathers only when given each
    export line) or ``off``. ``group_identify``: one ``$groupidentify`` per group with its latest
    properties. ``person_snapshot``: one ``$set`` per person and distinct_id with its latest
    properties.
    """

    def __init__(self, state: str, hours: list[str], barrier, identify_mode: str = "pairs",
                 group_identify: bool = True, person_snapshot: bool = True):
        super().__init__()
        if identify_mode not in IDENTIFY_MODES:
            raise ValueError(f"identify_mode: expected one of {', '.join(IDENTIFY_MODES)}, "
                             f"got {identify_mode!r}")
        self._state, self._hours, self._barrier = state, hours, barrier
        self._identify_mode = identify_mode
        self._group_identify, self._person_snapshot = group_identify, person_snapshot

    def expand(self, pbegin) -> GeneratedEvents:
        complete = (pbegin
                    | "Once" >> beam.Create([None])
                    | "JobComplete" >> beam.Map(_job_complete, self._state, self._hours,
                                                beam.pvalue.AsList(self._barrier)))
        facts = (pbegin
                 | "Start" >> beam.Create([None])
                 | "ListFacts" >> beam.FlatMap(_facts_files, self._state, frozenset(self._hours),
                                               beam.pvalue.AsSingleton(complete))
                 | "SpreadFacts" >> beam.Reshuffle()
                 | "ReadFacts" >> beam.Map(_read_facts))
        outputs = []
        # Devices belong to their first user in every mode that merges, so that snapshots are
        # per person; only pairs mode sends these $identify events.
        identities = (facts
                      | "Pairs" >> beam.FlatMap(_pairs)
                      | "ChooseIdentities" >> ChooseIdentities())
        owners = identities.owners
        if self._identify_mode == "pairs":
            outputs.append(identities.events)
        elif self._identify_mode == "per_file":
            outputs.append(facts | "IdentifyPerFile" >> beam.FlatMap(_file_identifies))
        else:
            owners = pbegin | "NoOwners" >> beam.Create([])
        if self._group_identify:
            outputs.append(facts
                           | "Groups" >> beam.FlatMap(_group_identifies)
                           | "LatestPerGroup" >> beam.CombinePerKey(partial(best_row, GROUPS))
                           | "GroupIdentify" >> beam.MapTuple(
                               lambda _, row: group_identify_event(row)))
        if outputs:
            events = outputs | "AllGenerated" >> beam.Flatten()
        else:
            events = pbegin | "NoEvents" >> beam.Create([])
        if self._person_snapshot:
            snapshots = (facts
                         | "Persons" >> beam.FlatMap(person_fact_rows)
                         | "PersonSnapshots" >> PersonSnapshots(owners))
        else:
            snapshots = pbegin | "NoSnapshots" >> beam.Create([])
        counts = identities.counts
        if self._identify_mode != "pairs":
            counts = pbegin | "NoIdentityCounts" >> beam.Create([])
        return GeneratedEvents(events, snapshots, counts, complete)


def _after(element, _done):
    return element


class WaitOn(beam.PTransform):
    """``PCollection[T] -> PCollection[T]``: the same elements, released once ``signal`` is done.

    A side input is complete only when the step that produces it has finished every bundle, so
    no element passes before ``signal`` (for example a sink's ``failed`` output) is complete.
    The signal is first counted down to one element, whatever its size.
    """

    def __init__(self, signal: PCollection):
        super().__init__()
        self._signal = signal

    def expand(self, pcoll: PCollection) -> PCollection:
        done = self._signal | "SignalDone" >> beam.combiners.Count.Globally()
        return pcoll | "Release" >> beam.Map(_after, beam.pvalue.AsSingleton(done))


def _day_and_name(event: dict) -> tuple[str, str]:
    return str(event.get("timestamp") or "")[:10], event["event"]


def _write_generated(_, state: str, sent_by_name: dict, failed_by_name: dict, failed: list,
                     sent_by_day: dict, identities: dict, complete: bool):
    if not complete:
        return
    configure_gcs_emulator()
    counts = {name: n - failed_by_name.get(name, 0) for name, n in sent_by_name.items()}
    # Per UTC day of the event's timestamp and name, failed ones included: `verify` subtracts
    # what dead_letter/generated.jsonl still holds, so a later `resend` needs no change here.
    days: dict[str, dict[str, int]] = {}
    for (day, name), n in sorted(sent_by_day.items()):
        days.setdefault(day, {})[name] = n
    path = hour_path(state, DEAD_LETTER, GENERATED)
    if failed or exists(path):
        write_dead_letters(path, failed)
    reasons = dict(Counter(letter.reason for letter in failed))
    # Like an hour's dead letters: only a delivery that may succeed later (resend, or a rerun)
    # leaves the record failed; an event PostHog refuses or that is too large never will be.
    status = FAILED if reasons.get(DELIVERY_FAILED) else DONE
    write_record(state, GENERATED, status, counts, dead=reasons, days=days,
                 identities=dict(sorted(identities.items())))


def _all(pcolls, label: str):
    if isinstance(pcolls, PCollection):
        return pcolls
    return tuple(pcolls) | label >> beam.Flatten()


class RecordGenerated(beam.PTransform):
    """Writes ``ledger/generated.json``: generated events sent per name and those that failed,
    and (``days``) those sent or tried per UTC day of their timestamp and name.

    Input: the generated ``PCollection[event dict]`` (or a tuple of them, one per sink) and, as
    ``failed``, the sinks' ``PCollection[DeadLetter]`` (or a list of them); ``identities``, the
    ``(name, count)`` of ``GeneratedEvents.identities``, is kept in the record for the report;
    ``complete``, ``GeneratedEvents.complete``: no record when false.
    Output: a PCollection with one None once the record is written, after every sink is done.
    """

    def __init__(self, state: str, failed, identities=None, complete=None):
        super().__init__()
        self._state, self._failed, self._identities = state, failed, identities
        self._complete = complete

    def expand(self, events):
        events = _all(events, "AllEvents")
        failed = _all(self._failed, "AllFailed")

        def by_name(pcoll, label):
            return (pcoll | f"{label}Names" >> beam.Map(lambda e: e["event"])
                    | f"{label}Count" >> beam.combiners.Count.PerElement())
        sent = by_name(events, "Sent")
        sent_by_day = (events | "SentDays" >> beam.Map(_day_and_name)
                       | "SentDaysCount" >> beam.combiners.Count.PerElement())
        failed_names = by_name(failed | "FailedEvents" >> beam.Map(lambda d: d.payload),
                               "Failed")
        identities = self._identities
        if identities is None:
            identities = events.pipeline | "NoIdentities" >> beam.Create([])
        complete = self._complete
        if complete is None:
            complete = events.pipeline | "Complete" >> beam.Create([True])
        return (events.pipeline
                | "Once" >> beam.Create([None])
                | "WriteRecord" >> beam.Map(_write_generated, self._state,
                                            beam.pvalue.AsDict(sent),
                                            beam.pvalue.AsDict(failed_names),
                                            beam.pvalue.AsList(failed),
                                            beam.pvalue.AsDict(sent_by_day),
                                            beam.pvalue.AsDict(identities),
                                            beam.pvalue.AsSingleton(complete)))
