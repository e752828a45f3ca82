"""Rows with a lone surrogate escape or bytes that are not UTF-8: repaired, or kept replayable."""

import base64
import datetime as dt

import apache_beam as beam
import orjson
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms.records import DeadLetter, ExportLine, HourMarker
from transforms.repair import repair_line
from transforms.transform import DEAD_LETTER, EVENTS, TranslateToPostHog
from tests.amplitude_rows import make_row

HOUR = "20240305T10"


def _line(properties_json: bytes, index: int) -> bytes:
    """An event row (template ``index``) whose event_properties are ``properties_json``."""
    row = make_row(index, dt.datetime(2024, 3, 5, 10, 5))
    row["event_properties"] = {"placeholder": 1}
    return orjson.dumps(row).replace(b'{"placeholder":1}', properties_json)


@pytest.mark.parametrize("raw, repaired", [
    (rb'"\ud800"', rb'"\ufffd"'),                      # lone high surrogate
    (rb'"a\udc00b"', rb'"a\ufffdb"'),                  # lone low surrogate
    (rb'"\ud83d\ude00 \ud800"', rb'"\ud83d\ude00 \ufffd"'),  # a valid pair stays
    (rb'"\\ud800"', None),                             # an escaped backslash, not an escape
    (rb'"\\\ud800"', rb'"\\\ufffd"'),                  # backslash, then a lone surrogate
    (b'"caf\xe9"', '"caf\ufffd"'.encode()),            # Latin-1, not UTF-8
    (b'"fine \xc3\xa9"', None),                        # valid UTF-8: nothing to repair
])
def test_repair_line(raw, repaired):
    assert repair_line(raw) == repaired


def _run(lines):
    elements = [ExportLine(HOUR, "f.json", n + 1, line) for n, line in enumerate(lines)]
    elements.append(HourMarker(HOUR, "done", counts={"rows_read": len(lines)}))
    with test_pipeline.TestPipeline() as pipeline:
        out = pipeline | beam.Create(elements, reshuffle=False) | TranslateToPostHog()
        events = out[EVENTS] | beam.Filter(lambda e: not isinstance(e, HourMarker))
        markers = out[EVENTS] | beam.Filter(lambda e: isinstance(e, HourMarker))
        assert_that(events | beam.Map(lambda e: e["properties"].get("text")),
                    equal_to(["\ufffd", "caf\ufffd"]), label="Repaired")
        assert_that(markers | beam.Map(lambda m: (m.counts.get("repaired:text"),
                                                  m.counts.get("dead:invalid_json"))),
                    equal_to([(2, 1)]), label="Counts")
        assert_that(out[DEAD_LETTER] | beam.Map(lambda d: (
            d.reason, base64.b64decode(d.payload_base64) if d.payload_base64 else None)),
            equal_to([("invalid_json", lines[2])]), label="Letters")


def test_bad_text_in_a_property_is_repaired_and_broken_json_keeps_its_raw_bytes():
    # Before: both repairable rows were dead-lettered whole as invalid_json, and the letter of a
    # line that is not UTF-8 kept it only decoded with replacement characters.
    lines = [_line(rb'{"text":"\ud800"}', 2), _line(b'{"text":"caf\xe9"}', 3),
             _line(b'{"text":"caf\xe9"', 4)]  # not JSON even once repaired
    _run(lines)


def test_a_letter_round_trips_with_its_raw_bytes():
    letter = DeadLetter("invalid_json", "translate", HOUR, "f", 1, "caf\ufffd", "bad",
                        payload_base64=base64.b64encode(b"caf\xe9").decode())
    assert DeadLetter.from_json(letter.to_json()) == letter
    plain = DeadLetter("invalid_json", "translate", HOUR, "f", 1, "x", "bad")
    assert b"payload_base64" not in plain.to_json()  # only where the text is not the bytes
    assert DeadLetter.from_json(plain.to_json()) == plain
