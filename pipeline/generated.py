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
from apache_beam.pvalue import PCollection

from connectors.files import configure_gcs_emulator, exists, read_bytes
from pipeline.ledger import (DEAD_LETTER, FACTS, GENERATED, hour_path, write_dead_letters,
                             write_record)
from pipeline.snapshots import (file_identify_event, group_identify_event, identify_event,
                                person_snapshot_event)
from transforms.facts import FILES, GROUPS, PERSON_SET, PERSON_SET_ONCE, best_row, keyed_rows
from transforms.records import DONE, FAILED

__all__ = ["IDENTIFY_MODES", "GenerateEvents", "GeneratedEvents", "RecordGenerated", "WaitOn"]

IDENTIFY_MODES = ("pairs", "per_file", "off")


def _read_facts(hour: str, state: str, _barrier) -> list[dict]:
    configure_gcs_emulator()
    path = hour_path(state, FACTS, hour)
    return [orjson.loads(read_bytes(path))] if exists(path) else []


def _pairs(facts: dict):
    for user_id, device_id, timestamp in facts.get("pairs", ()):
        yield (user_id, device_id), timestamp


def _file_identifies(facts: dict):
    # One event per (hour, file, user): each hour's facts already hold the file's first event.
    for row in facts.get(FILES, ()):
        yield file_identify_event(row)


def _person_rows(facts: dict):
    for kind in (PERSON_SET, PERSON_SET_ONCE):
        for (user_id,), row in keyed_rows(facts, kind):
            yield user_id, (kind, row)


class _PersonFn(beam.CombineFn):
    """Per user: ``{PERSON_SET: latest row, PERSON_SET_ONCE: earliest row}`` over all hours."""

    def create_accumulator(self):
        return {}

    def add_input(self, accumulator, tagged):
        kind, row = tagged
        known = accumulator.get(kind)
        accumulator[kind] = row if known is None else best_row(kind, (known, row))
        return accumulator

    def merge_accumulators(self, accumulators):
        merged = {}
        for accumulator in accumulators:
            for tagged in accumulator.items():
                self.add_input(merged, tagged)
        return merged

    def extract_output(self, accumulator):
        return accumulator


def _snapshot(user_and_rows):
    _, rows = user_and_rows
    latest = rows.get(PERSON_SET)
    if latest is not None:
        event = person_snapshot_event(latest, rows.get(PERSON_SET_ONCE))
        if event is not None:
            yield event


class GeneratedEvents(NamedTuple):
    """The outputs of ``GenerateEvents``, both ``PCollection[event dict]``.

    ``events``: ``$identify`` and ``$groupidentify``, to send once every hour is committed.
    ``snapshots``: each user's final ``$set``, to send only after everything else (``WaitOn``).
    """

    events: PCollection
    snapshots: PCollection


class GenerateEvents(beam.PTransform):
    """``PBegin -> GeneratedEvents``: the job's generated events, from the facts of ``hours``.

    ``barrier`` is a PCollection that is complete only when every hour of the run is committed.
    ``identify_mode``: ``pairs`` (one ``$identify`` per user and device), ``per_file`` (one per
    user per export file, with the user's properties then; from the ``files`` facts, which the
    translate stage gathers only when given each export line) or ``off``. ``group_identify``: one
    ``$groupidentify`` per group with its latest properties. ``person_snapshot``: one ``$set`` per
    user with its latest properties.
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
        facts = (pbegin
                 | "Hours" >> beam.Create(self._hours)
                 | "ReadFacts" >> beam.FlatMap(_read_facts, self._state,
                                               beam.pvalue.AsList(self._barrier)))
        outputs = []
        if self._identify_mode == "pairs":
            outputs.append(facts
                           | "Pairs" >> beam.FlatMap(_pairs)
                           | "EarliestPerPair" >> beam.CombinePerKey(min)
                           | "Identify" >> beam.MapTuple(identify_event))
        elif self._identify_mode == "per_file":
            outputs.append(facts | "IdentifyPerFile" >> beam.FlatMap(_file_identifies))
        if self._group_identify:
            outputs.append(facts
                           | "Groups" >> beam.FlatMap(keyed_rows, GROUPS)
                           | "LatestPerGroup" >> beam.CombinePerKey(partial(best_row, GROUPS))
                           | "GroupIdentify" >> beam.MapTuple(
                               lambda _, row: group_identify_event(row)))
        if outputs:
            events = outputs | "AllGenerated" >> beam.Flatten()
        else:
            events = pbegin | "NoEvents" >> beam.Create([])
        if self._person_snapshot:
            snapshots = (facts
                         | "Persons" >> beam.FlatMap(_person_rows)
                         | "LatestPerPerson" >> beam.CombinePerKey(_PersonFn())
                         | "PersonSnapshot" >> beam.FlatMap(_snapshot))
        else:
            snapshots = pbegin | "NoSnapshots" >> beam.Create([])
        return GeneratedEvents(events, snapshots)


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
                     sent_by_day: dict):
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
    write_record(state, GENERATED, FAILED if failed else DONE, counts, dead=reasons, days=days)


def _all(pcolls, label: str):
    if isinstance(pcolls, PCollection):
        return pcolls
    return tuple(pcolls) | label >> beam.Flatten()


class RecordGenerated(beam.PTransform):
    """Writes ``ledger/generated.json``: generated events sent per name and those that failed,
    and (``days``) those sent or tried per UTC day of their timestamp and name.

    Input: the generated ``PCollection[event dict]`` (or a tuple of them, one per sink) and, as
    ``failed``, the sinks' ``PCollection[DeadLetter]`` (or a list of them); output: a
    PCollection with one None once the record is written, after every sink is done.
    """

    def __init__(self, state: str, failed):
        super().__init__()
        self._state, self._failed = state, failed

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
        return (events.pipeline
                | "Once" >> beam.Create([None])
                | "WriteRecord" >> beam.Map(_write_generated, self._state,
                                            beam.pvalue.AsDict(sent),
                                            beam.pvalue.AsDict(failed_names),
                                            beam.pvalue.AsList(failed),
                                            beam.pvalue.AsDict(sent_by_day)))
