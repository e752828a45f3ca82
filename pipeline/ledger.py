"""The job's ledger: one record per hour, and the step that commits an hour.

Layout under the state directory (``<work_dir>`` for real runs, ``<work_dir>/dry_run`` for dry
runs, so a dry run never marks an hour as sent):

- ``ledger/<YYYYMMDDTHH>.json``: status (done / empty / failed), counts, detail, time.
- ``facts/<YYYYMMDDTHH>.json``: the hour's partial aggregates (identity pairs, persons, groups).
- ``dead_letter/<YYYYMMDDTHH>.jsonl``: the hour's dead letters, one JSON object a line.

An hour is committed when its marker leaves the sink, that is after each of its events was
acknowledged or dead-lettered. Its dead letters and facts are written first and its ledger record
last, each file atomically, so a killed run never leaves a record that claims more than happened;
a rerun replaces all three files of an hour it redoes.
"""

from __future__ import annotations

import apache_beam as beam
import orjson
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from connectors.errors import MigrationAbort
from connectors.files import configure_gcs_emulator, exists, read_bytes, write_atomically
from pipeline.job import join, utc_now
from transforms.records import DONE, EMPTY, FAILED, PENDING, DeadLetter, HourMarker

LEDGER, FACTS, DEAD_LETTER = "ledger", "facts", "dead_letter"
GENERATED = "generated"  # the record of the events the job generates after all hours


def state_dir(work_dir: str, dry_run: bool) -> str:
    return join(work_dir, "dry_run") if dry_run else work_dir


def hour_path(state: str, kind: str, hour: str) -> str:
    suffix = ".jsonl" if kind == DEAD_LETTER else ".json"
    return join(state, kind, hour + suffix)


def read_records(state: str) -> dict[str, dict]:
    """Every ledger record of the job, by hour (the generated record under GENERATED)."""
    pattern = join(state, LEDGER, "*.json")
    records = {}
    for match in FileSystems.match([pattern])[0].metadata_list:
        record = orjson.loads(read_bytes(match.path))
        records[record["hour"]] = record
    return records


def status_of(records: dict[str, dict], hour: str) -> str:
    return records.get(hour, {}).get("status", PENDING)


def write_record(state: str, hour: str, status: str, counts: dict, detail=None, **extra) -> dict:
    return save_record(state, {"hour": hour, "status": status, "detail": detail,
                               "counts": counts, **extra})


def save_record(state: str, record: dict) -> dict:
    """Writes ``record`` (with ``hour``) as its hour's ledger record, stamped with the time."""
    record = {**record, "updated_at": utc_now()}
    write_atomically(hour_path(state, LEDGER, record["hour"]), orjson.dumps(record))
    return record


def write_dead_letters(path: str, letters: list[DeadLetter]) -> None:
    write_atomically(path, b"".join(letter.to_json() + b"\n" for letter in letters))


def read_dead_letters(path: str) -> list[DeadLetter]:
    return [DeadLetter.from_json(line) for line in read_bytes(path).splitlines() if line]


class _CommitHourFn(beam.DoFn):
    """Writes each hour's dead letters, facts and ledger record, in that order."""

    def __init__(self, state: str):
        self._state = state
        self._hours = {status: Metrics.counter("ledger", f"hours_{status}")
                       for status in (DONE, EMPTY, FAILED)}

    def setup(self):
        configure_gcs_emulator()

    def process(self, marker: HourMarker):
        path = hour_path(self._state, DEAD_LETTER, marker.hour)
        if marker.letters or exists(path):  # a redone hour replaces what an earlier run left
            write_dead_letters(path, list(marker.letters))
        write_atomically(hour_path(self._state, FACTS, marker.hour), orjson.dumps(marker.facts))
        write_record(self._state, marker.hour, marker.status, marker.counts, marker.detail)
        self._hours[marker.status].inc()
        yield marker.hour, marker.status


class CommitHours(beam.PTransform):
    """``PCollection[HourMarker] -> PCollection[(hour, status)]``.

    Writes each hour's dead letters (carried on its marker), facts and ledger record under
    ``state``. Apply it to markers that have passed every stage of their hour.
    """

    def __init__(self, state: str):
        super().__init__()
        self._state = state

    def expand(self, pcoll):
        return pcoll | "Commit" >> beam.ParDo(_CommitHourFn(self._state))


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
