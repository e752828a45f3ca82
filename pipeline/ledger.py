"""The job's ledger: one record per hour, and the step that commits an hour.

Layout under the state directory (``<work_dir>`` for real runs, ``<work_dir>/dry_run`` for dry
runs, so a dry run never marks an hour as sent):

- ``ledger/<YYYYMMDDTHH>.json``: status (done / empty / failed), counts, detail, time, and
  ``fetched_after`` (the start of the run that fetched the hour: see ``connectors.hours``).
- ``facts/<YYYYMMDDTHH>.json``: the hour's partial aggregates (identity pairs, persons, groups).
- ``dead_letter/<YYYYMMDDTHH>.jsonl``: the hour's dead letters, one JSON object a line.
- ``ledger_index.json``: a compacted copy of every ledger record with the size and time of the
  file it was read from. Each run rewrites it, so that a run of a long job reads one file and
  lists the ledger instead of reading one file per hour; a record whose file differs from its
  entry is read again, so the per-hour records stay the truth.

An hour with no facts (an empty hour) has no facts file, and one without dead letters no dead
letter file: a multi-year job of mostly empty hours writes one small file per hour, not three.

An hour is committed when its marker leaves the sink, that is after each of its events was
acknowledged or dead-lettered. Its dead letters and facts are written first and its ledger record
last, each file atomically, so a killed run never leaves a record that claims more than happened;
a rerun replaces all three files of an hour it redoes.
"""

from __future__ import annotations

import os

import apache_beam as beam
import orjson
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from connectors.errors import MigrationAbort
from connectors.files import configure_gcs_emulator, exists, read_bytes, remove, write_atomically
from connectors.hours import empty_is_final
from pipeline.job import join, utc_now
from transforms.facts import GROUPS, WARNINGS
from transforms.records import DONE, EMPTY, FAILED, PENDING, DeadLetter, HourMarker

LEDGER, FACTS, DEAD_LETTER = "ledger", "facts", "dead_letter"
INDEX = "ledger_index.json"
GENERATED = "generated"  # the record of the events the job generates after all hours


def state_dir(work_dir: str, dry_run: bool) -> str:
    return join(work_dir, "dry_run") if dry_run else work_dir


def hour_path(state: str, kind: str, hour: str) -> str:
    suffix = ".jsonl" if kind == DEAD_LETTER else ".json"
    return join(state, kind, hour + suffix)


def read_records(state: str, update_index: bool = False) -> dict[str, dict]:
    """Every ledger record of the job, by hour (the generated record under GENERATED).

    Records come from ``ledger_index.json`` when their file's size and time are those the index
    saw, else from the file. With ``update_index``, the index is rewritten when it was stale.
    """
    index = _load_index(state)
    records, fresh, stale = {}, {}, False
    for path, size, updated in _list_records(state):
        name = path.rsplit("/", 1)[-1]
        version = [size, updated]
        cached = index.get(name)
        if cached is not None and updated is not None and cached[:2] == version:
            record = cached[2]
        else:
            record = orjson.loads(read_bytes(path))
            stale = True
        fresh[name] = [*version, record]
        records[record["hour"]] = record
    if update_index and (stale or len(fresh) != len(index)):
        write_atomically(join(state, INDEX), orjson.dumps({"version": 1, "records": fresh}))
    return records


def _list_records(state: str) -> list[tuple[str, int, float | None]]:
    """(path, size, time updated) of every ledger record file."""
    folder = join(state, LEDGER)
    if FileSystems.get_scheme(folder) not in (None, "file"):
        return [(m.path, m.size_in_bytes, m.last_updated_in_seconds)
                for m in FileSystems.match([join(folder, "*.json")])[0].metadata_list]
    # Beam's local glob costs ~60 µs a file (a listing per match); one scandir costs ~2.
    folder = folder[len("file://"):] if folder.startswith("file://") else folder
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        if entry.name.endswith(".json") and entry.is_file():
            info = entry.stat()
            found.append((entry.path, info.st_size, info.st_mtime))
    return found


def _load_index(state: str) -> dict[str, list]:
    path = join(state, INDEX)
    try:
        data = orjson.loads(read_bytes(path)) if exists(path) else {}
    except (orjson.JSONDecodeError, OSError):
        return {}  # a damaged index only costs reading the records themselves
    return data.get("records", {}) if data.get("version") == 1 else {}


def status_of(records: dict[str, dict], hour: str) -> str:
    return records.get(hour, {}).get("status", PENDING)


def settled(records: dict[str, dict], hour: str) -> bool:
    """Whether the hour needs no more fetching: done, or empty from a fetch made late enough for
    the empty answer to be final (``connectors.hours.empty_is_final``). A record written before
    ``fetched_after`` existed is judged by when it was written."""
    status = status_of(records, hour)
    if status != EMPTY:
        return status == DONE
    record = records[hour]
    return empty_is_final(hour, record.get("fetched_after") or record.get("updated_at"))


def write_record(state: str, hour: str, status: str, counts: dict, detail=None, **extra) -> dict:
    return save_record(state, {"hour": hour, "status": status, "detail": detail,
                               "counts": counts, **extra})


def save_record(state: str, record: dict) -> dict:
    """Writes ``record`` (with ``hour``) as its hour's ledger record, stamped with the time."""
    record = {**record, "updated_at": utc_now()}
    write_atomically(hour_path(state, LEDGER, record["hour"]), orjson.dumps(record))
    return record


def _summary(facts: dict) -> dict:
    """What the report reads of an hour's facts, kept on its ledger record so that building the
    report reads no facts file: the per-day and per-event counts, the warnings, the group types."""
    summary = {"days": facts.get("days", {}), "event_names": facts.get("event_names", {})}
    if facts.get(WARNINGS):
        summary[WARNINGS] = facts[WARNINGS]
    kinds = sorted({row[0] for row in facts.get(GROUPS, ())})
    if kinds:
        summary[GROUPS] = [[kind] for kind in kinds]  # as facts hold them, types only
    return summary


def write_dead_letters(path: str, letters: list[DeadLetter]) -> None:
    write_atomically(path, b"".join(letter.to_json() + b"\n" for letter in letters))


def read_dead_letters(path: str) -> list[DeadLetter]:
    return [DeadLetter.from_json(line) for line in read_bytes(path).splitlines() if line]


class _CommitHourFn(beam.DoFn):
    """Writes each hour's dead letters, facts and ledger record, in that order."""

    def __init__(self, state: str, fetched_after: str | None):
        self._state = state
        self._fetched_after = fetched_after
        self._hours = {status: Metrics.counter("ledger", f"hours_{status}")
                       for status in (DONE, EMPTY, FAILED)}

    def setup(self):
        configure_gcs_emulator()

    def process(self, marker: HourMarker):
        path = hour_path(self._state, DEAD_LETTER, marker.hour)
        if marker.letters or exists(path):  # a redone hour replaces what an earlier run left
            write_dead_letters(path, list(marker.letters))
        path = hour_path(self._state, FACTS, marker.hour)
        if any(marker.facts.values()):
            write_atomically(path, orjson.dumps(marker.facts))
        elif exists(path):  # this hour had facts in an earlier run and has none now
            remove(path)
        write_record(self._state, marker.hour, marker.status, marker.counts, marker.detail,
                     fetched_after=self._fetched_after, summary=_summary(marker.facts))
        self._hours[marker.status].inc()
        yield marker.hour, marker.status


class CommitHours(beam.PTransform):
    """``PCollection[HourMarker] -> PCollection[(hour, status)]``.

    Writes each hour's dead letters (carried on its marker), facts and ledger record under
    ``state``. Apply it to markers that have passed every stage of their hour.
    ``fetched_after`` (ISO UTC, the run's start) is stored in each record: every hour of the run
    was fetched after it, which tells whether an empty answer came too early to be final.
    """

    def __init__(self, state: str, fetched_after: str | None = None):
        super().__init__()
        self._state = state
        self._fetched_after = fetched_after

    def expand(self, pcoll):
        return pcoll | "Commit" >> beam.ParDo(_CommitHourFn(self._state, self._fetched_after))


class _RefuseUnassignedFn(beam.DoFn):
    def __init__(self):
        self._letters: list[DeadLetter] = []

    def start_bundle(self):
        self._letters = []

    def process(self, letter: DeadLetter):
        if letter.hour is None:
            self._letters.append(letter)

    def finish_bundle(self):
        if not self._letters:
            return
        reasons = sorted({letter.reason for letter in self._letters})
        raise MigrationAbort(
            f"{len(self._letters)} dead letter(s) ({', '.join(reasons)}) left the PostHog sink "
            "with no hour: their events reached it without their hour's marker after them in "
            "the same bundle (the runner split an hour across bundles), so no ledger record can "
            "hold them. The run stops rather than lose them.")


class RefuseUnassignedLetters(beam.PTransform):
    """``PCollection[DeadLetter] -> None``: fails the bundle on a letter with no hour.

    Apply it to the hourly sink's ``failed`` output. Every hour's letters reach the ledger on
    its marker (see ``CommitHours``); a letter with ``hour=None`` means the runner split an
    hour's events from its marker, a case the ledger cannot record. Dropping the letter would
    lose its event without a trace, so the run fails instead, naming how many and why.
    """

    def expand(self, pcoll):
        return pcoll | "Refuse" >> beam.ParDo(_RefuseUnassignedFn())
