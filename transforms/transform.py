"""The translate stage: export lines in, PostHog events out, with every other row accounted for."""

from __future__ import annotations

import base64
from typing import Any, Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from transforms.coders import StageRecord
from transforms.facts import HourFacts, merge_facts
from transforms.records import DeadLetter, ExportLine, HourMarker, LineChunk
from transforms.settings import TranslationSettings
from transforms.repair import repair_line
from transforms.translate import INVALID_JSON, translate_line

__all__ = ["DEAD_LETTER", "EVENTS", "METRICS_NAMESPACE", "SKIPPED", "TranslateToPostHog"]

EVENTS = "events"
DEAD_LETTER = "dead_letter"
SKIPPED = "skipped"
METRICS_NAMESPACE = "aplistorical.translate"
_STAGE = "translate"


class _HourTally:
    """What one hour's lines came to, until that hour's marker passes."""

    __slots__ = ("counts", "facts", "letters")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {"events": 0}
        self.facts = HourFacts()
        self.letters: list[DeadLetter] = []  # the hour's dead letters, for its marker


class _TranslateFn(beam.DoFn):
    """Translates lines and stamps each hour's marker with that hour's counts and facts.

    The tallies live on the instance rather than per bundle: the source emits an hour's marker
    after its lines in the same fused chain, and a DoFn instance handles one bundle at a time,
    so the marker meets the tally its lines built. A failed bundle's instance is discarded with
    its tallies, and the retry starts from the lines again.
    """

    def __init__(self, settings: TranslationSettings, facts_per_file: bool = False):
        self._settings = settings
        self._facts_per_file = facts_per_file
        self._tallies: dict[str, _HourTally] = {}

    def setup(self) -> None:
        self._tallies = {}
        self._translated = Metrics.counter(METRICS_NAMESPACE, "rows_translated")
        self._reason_counters: dict[str, Any] = {}

    def _count_reason(self, prefix: str, reason: str) -> None:
        name = f"{prefix}_{reason}"
        counter = self._reason_counters.get(name)
        if counter is None:
            counter = self._reason_counters[name] = Metrics.counter(METRICS_NAMESPACE, name)
        counter.inc()

    def process(self, element: LineChunk | ExportLine | HourMarker) -> Iterator[Any]:
        kind = type(element)
        if kind is LineChunk:
            yield from self._translate_chunk(element)
        elif kind is HourMarker:
            yield self._close_hour(element)
        elif kind is ExportLine:
            yield from self._translate_one(element)
        else:
            raise TypeError(f"TranslateToPostHog expects LineChunk, ExportLine or HourMarker, "
                            f"got {kind.__name__}")

    def _tally(self, hour: str) -> _HourTally:
        tally = self._tallies.get(hour)
        if tally is None:
            tally = self._tallies[hour] = _HourTally()
        return tally

    def _translate_chunk(self, chunk: LineChunk) -> Iterator[Any]:
        """The chunk's rows not migrated as tagged records, then its events as one list."""
        hour, settings, per_file = chunk.hour, self._settings, self._facts_per_file
        tally = self._tally(hour)
        add = tally.facts.add
        events = []
        for file, number, line in chunk.lines:
            translation = translate_line(line, settings)
            if translation.event is None and translation.reason == INVALID_JSON:
                translation = self._repaired(line, translation, tally)
            element = ExportLine(hour, file, number, line) if per_file else None
            add(translation, element)
            if translation.event is not None:
                events.append(translation.event)
            else:
                yield self._not_migrated(translation, tally,
                                         element or ExportLine(hour, file, number, line))
        if events:
            tally.counts["events"] += len(events)
            self._translated.inc(len(events))
            yield events

    def _translate_one(self, element: ExportLine) -> Iterator[Any]:
        """As a chunk of one line, its event alone rather than in a list."""
        chunk = LineChunk(element.hour, [(element.file, element.line_number, element.line)])
        for output in self._translate_chunk(chunk):
            yield output[0] if type(output) is list else output

    def _not_migrated(self, translation, tally: _HourTally, element: ExportLine) -> TaggedOutput:
        reason = translation.reason
        key = f"{'dead' if translation.dead else 'skipped'}:{reason}"
        tally.counts[key] = tally.counts.get(key, 0) + 1
        self._count_reason("dead_lettered" if translation.dead else "skipped", reason)
        record = _letter(element, reason, translation.detail)
        if translation.dead:
            tally.letters.append(record)
        return TaggedOutput(DEAD_LETTER if translation.dead else SKIPPED, record)

    def _repaired(self, line: bytes, translation, tally: _HourTally):
        """The translation of ``line`` with its bad text repaired, if that makes it JSON."""
        repaired = repair_line(line)
        if repaired is None:
            return translation
        again = translate_line(repaired, self._settings)
        if again.reason == INVALID_JSON:
            return translation
        tally.counts["repaired:text"] = tally.counts.get("repaired:text", 0) + 1
        self._count_reason("repaired", "text")
        return again

    def _close_hour(self, marker: HourMarker) -> HourMarker:
        tally = self._tallies.pop(marker.hour, None) or _HourTally()
        facts = tally.facts.to_dict()
        if marker.facts:  # keep whatever an earlier stage already gathered
            facts = merge_facts(marker.facts, facts)
        return marker.with_counts(tally.counts)._replace(facts=facts).with_letters(tally.letters)


def _letter(element: ExportLine, reason: str, detail: str | None) -> DeadLetter:
    try:
        text, raw = element.line.decode("utf-8"), None
    except UnicodeDecodeError:  # keep the bytes replayable beside the readable text
        text = element.line.decode("utf-8", errors="replace")
        raw = base64.b64encode(element.line).decode("ascii")
    return DeadLetter(reason=reason, stage=_STAGE, hour=element.hour, file=element.file,
                      line_number=element.line_number, payload=text, detail=detail,
                      payload_base64=raw)


class TranslateToPostHog(beam.PTransform):
    """Translate Amplitude export lines into PostHog events.

    Input: ``PCollection[LineChunk | ExportLine | HourMarker]``, each hour's marker after its
    lines.
    Output: a ``DoOutputsTuple`` with
      - ``EVENTS`` (main): event dicts ``{"event", "distinct_id", "uuid", "timestamp",
        "properties"}``, one per ``ExportLine`` that migrates and one list of them, in line
        order, per ``LineChunk`` with any row that migrates; and each ``HourMarker`` after its
        hour's events, its counts plus
        ``events``, ``skipped:<reason>`` and ``dead:<reason>``, its facts those of the hour
        (see ``transforms.facts``), its ``letters`` plus the hour's dead letters;
      - ``DEAD_LETTER``: ``DeadLetter`` records (stage ``translate``) for rows that cannot migrate;
      - ``SKIPPED``: ``DeadLetter`` records for rows left out on purpose (session markers,
        ``--ignore_event``), so that every row is accounted for.
    Counters (namespace ``METRICS_NAMESPACE``): ``rows_translated``, ``skipped_<reason>``,
    ``dead_lettered_<reason>``, ``repaired_text`` (rows that parsed only once their invalid
    UTF-8 or lone surrogate escapes became U+FFFD, see ``transforms.repair``; the marker counts
    them as ``repaired:text``).
    """

    def __init__(self, settings: TranslationSettings | None = None,
                 facts_per_file: bool = False):
        """``facts_per_file`` also gathers each user's first event per export file (for
        Aplistorical's one-$identify-per-user-per-file mode); off, facts stay per hour only."""
        super().__init__()
        if settings is None:
            settings = TranslationSettings()
        if not isinstance(settings, TranslationSettings):
            raise ValueError(f"settings: expected TranslationSettings, got {type(settings).__name__}")
        self._settings = settings
        self._facts_per_file = facts_per_file

    def expand(self, lines: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return lines | "Translate" >> beam.ParDo(
            _TranslateFn(self._settings, self._facts_per_file)).with_output_types(
            StageRecord).with_outputs(DEAD_LETTER, SKIPPED, main=EVENTS)
