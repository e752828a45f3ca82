"""Records that travel between the pipeline's stages.

They live here, beside the translation core, because every stage reads them: the Amplitude source
emits ``ExportLine`` and ``HourMarker``, the translate stage consumes them, the PostHog sink passes
markers on, and the job ledger commits them.

Between the source and the sink, an hour's rows travel in chunks: a ``LineChunk`` holds up to a few
hundred consecutive lines of one hour, and translate turns it into a list of events. A runner pays
its per-element work (bundle bookkeeping, receivers, windowed values) once per chunk rather than
once per row, which was about a fifth of the job's CPU time with one element per row.

An ``HourMarker`` is punctuation: the source emits one per hour *after* that hour's last line. Stages
fused into one chain see elements in the order they were emitted, so a stage that receives the
marker has already handled every line of its hour; each stage adds its own counts and passes the
marker on. The ledger writes an hour as done only when the marker has come out of the sink, that is
after every event of the hour was acknowledged by PostHog or handed to the dead letter.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import orjson

# Hour status values, shared by the source, the ledger and the report.
DONE = "done"
EMPTY = "empty"
FAILED = "failed"
PENDING = "pending"


class ExportLine(NamedTuple):
    """One raw line of an Amplitude export, with where it came from."""

    hour: str  # YYYYMMDDTHH of the export range (server_upload_time, UTC)
    file: str  # member or file name the line was read from
    line_number: int  # 1-based line number within that file
    line: bytes  # the raw NDJSON line, without its newline


class LineChunk(NamedTuple):
    """Consecutive raw lines of one export hour, in the order they were read.

    ``lines`` holds ``(file, line_number, line)`` triples with the meaning of ``ExportLine``'s
    fields (a list, not copied into a tuple: nothing changes it once emitted). A chunk never spans two hours and is never empty; the source emits an hour's chunks,
    then its ``HourMarker``.
    """

    hour: str  # YYYYMMDDTHH of the export range (server_upload_time, UTC)
    lines: Sequence[tuple[str, int, bytes]]

    def export_lines(self) -> list[ExportLine]:
        """The chunk's lines one by one, as ``ExportLine``s."""
        return [ExportLine(self.hour, *entry) for entry in self.lines]


class HourMarker(NamedTuple):
    """End-of-hour punctuation; see the module docstring.

    ``counts`` maps a count name to an integer; each stage adds its own names:
    the source ``rows_read``; translate ``events``, ``skipped:<reason>`` and ``dead:<reason>``;
    the sink ``events_sent`` and ``dead:<reason>``. ``facts`` holds per-hour partial aggregates
    (identity pairs, person and group snapshots) that the job merges across hours.
    ``letters`` carries the hour's dead letters to the ledger, so they are written before the
    hour is marked done. They ride on the marker rather than on a second PCollection because
    joining two PCollections (Flatten) breaks fusion on some runners, and the ledger would then
    see the hour only at the end of the run.
    """

    hour: str
    status: str  # DONE, EMPTY or FAILED, as the source saw the hour
    detail: str | None = None  # why the hour failed, for the report
    counts: dict[str, int] = {}
    facts: dict[str, Any] = {}
    letters: tuple["DeadLetter", ...] = ()

    def with_letters(self, extra) -> "HourMarker":
        """A copy that also carries the dead letters ``extra``."""
        return self._replace(letters=self.letters + tuple(extra)) if extra else self

    def with_counts(self, extra: dict[str, int]) -> "HourMarker":
        """A copy whose counts are these counts plus ``extra`` (added, never overwritten)."""
        merged = dict(self.counts)
        for name, value in extra.items():
            merged[name] = merged.get(name, 0) + value
        return self._replace(counts=merged)


class DeadLetter(NamedTuple):
    """A row or event that could not be migrated, and why.

    ``payload`` is the raw row (str) for rows that failed before translation, or the translated
    event (dict) for events PostHog did not take. A raw row that is not valid UTF-8 is held in
    ``payload`` decoded with U+FFFD and, byte for byte, in ``payload_base64``; otherwise that
    field is None and left out of the JSON.
    """

    reason: str
    stage: str  # "source", "translate" or "deliver"
    hour: str | None
    file: str | None
    line_number: int | None
    payload: Any
    detail: str | None = None
    payload_base64: str | None = None

    def to_json(self) -> bytes:
        data = self._asdict()
        if data["payload_base64"] is None:
            del data["payload_base64"]
        return orjson.dumps(data)

    @classmethod
    def from_json(cls, data: bytes | str) -> "DeadLetter":
        return cls(**orjson.loads(data))
