"""The coder of the PCollections that carry ``HourMarker``s, so that measuring them stays cheap.

Beam estimates the size of a sample of every stage's output (about ten elements, then some
10·ln n of n) by encoding it. Its default coder pickles an ``HourMarker``, and a marker carries
its hour's facts, megabytes of person properties, on the way from translation to the ledger:
pickling them only to be measured cost about 5% of the CPU the pipeline's main stage spent on
its own thread. ``StageRecordCoder`` encodes every element as Beam's default coder does and
estimates every size the same way, except a marker's: a fixed allowance, and one more per dead
letter it carries; and a list of events (a chunk's, up to 500) is estimated from its first and
last event rather than encoded whole.
"""

from __future__ import annotations

from apache_beam import coders
from apache_beam.coders.coder_impl import CallbackCoderImpl

from transforms.records import HourMarker

__all__ = ["StageRecord", "StageRecordCoder"]

# What a marker's hour, status, counts and facts (and each of its dead letters) are taken to
# weigh, in bytes. It only feeds the runner's size statistics, and the facts never go to PostHog.
_MARKER_BYTES = 4096


class StageRecord:
    """The type hint of a PCollection of events, lists of events and ``HourMarker``s (and of
    the source's ``LineChunk``s and ``ExportLine``s), which ``StageRecordCoder`` encodes."""


class StageRecordCoder(coders.Coder):
    """Beam's default coder (``FastPrimitivesCoder``), with cheap size estimates of markers."""

    def __init__(self):
        self._default = coders.FastPrimitivesCoder()

    def encode(self, value):
        return self._default.encode(value)

    def decode(self, encoded):
        return self._default.decode(encoded)

    def _create_impl(self):
        default = self._default.get_impl()

        def estimate(value):
            if type(value) is HourMarker:
                return _MARKER_BYTES * (1 + len(value.letters))
            if type(value) is list and len(value) > 2:
                # A chunk's events, hundreds of them: its first and last stand for the rest.
                ends = default.estimate_size(value[0]) + default.estimate_size(value[-1])
                return len(value) * ends // 2 + 2
            return default.estimate_size(value)

        return CallbackCoderImpl(default.encode, default.decode, estimate)

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self):
        return StageRecord

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))


coders.registry.register_coder(StageRecord, StageRecordCoder)
