"""Rows travel in chunks: chunk boundaries, and the same results as one element per row."""

import gzip
from pathlib import Path

import apache_beam as beam
import orjson
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from connectors import emit
from connectors.emit import emit_hour
from connectors.files import ReadFromAmplitudeFiles
from connectors.posthog import WriteToPostHog
from sandbox.posthog import PostHogCaptureServer
from transforms.records import DONE, EMPTY, ExportLine, HourMarker, LineChunk
from transforms.settings import TranslationSettings
from transforms.transform import DEAD_LETTER, EVENTS, TranslateToPostHog, _TranslateFn
from transforms.translate import translate_line

ROWS = (Path(__file__).parent / "data" / "amplitude_export_rows.jsonl").read_bytes().splitlines()
BAD = b"{not json"
HOUR, NEXT = "20240305T10", "20240305T11"
KEY = "phc_chunk_test_key"


def triples(lines, file="part#0.json"):
    return [(file, number, line) for number, line in enumerate(lines, 1)]


def rows(n, bad_at=(), first=0):
    """``n`` distinct migratable rows, numbered from ``first``; the 1-based positions in
    ``bad_at`` are not JSON."""
    out = []
    for index in range(n):
        if index + 1 in bad_at:
            out.append(BAD)
            continue
        row = orjson.loads(ROWS[2 + index % 3])  # three ordinary events of the fixture
        row["$insert_id"] = f"chunk-{first + index}"
        row.pop("uuid", None)  # so that each row gets its own event uuid
        out.append(orjson.dumps(row))
    return out


def shapes(elements):
    return [("chunk", len(e.lines)) if isinstance(e, LineChunk) else ("marker", e.counts)
            for e in elements]


@pytest.mark.parametrize("n, expected", [
    (6, [("chunk", 3), ("chunk", 3)]),  # the hour ends exactly on a chunk boundary
    (7, [("chunk", 3), ("chunk", 3), ("chunk", 1)]),
    (1, [("chunk", 1)]),  # an hour of one line
    (0, []),  # an empty hour: its marker alone, never an empty chunk
])
def test_emit_hour_chunks_then_one_marker(n, expected):
    counted = []
    out = list(emit_hour(HOUR, triples(rows(n)), counted.append, chunk_rows=3))
    assert shapes(out) == expected + [("marker", {"rows_read": n})]
    assert out[-1] == HourMarker(HOUR, DONE, None, {"rows_read": n})
    assert counted == [n]
    assert [entry for chunk in out[:-1] for entry in chunk.lines] == triples(rows(n))
    assert all(chunk.hour == HOUR for chunk in out[:-1])


def test_a_chunk_also_closes_at_its_byte_bound():
    lines = [b"x" * 10] * 5
    out = list(emit_hour(HOUR, triples(lines), chunk_rows=100, chunk_bytes=25))
    assert shapes(out)[:-1] == [("chunk", 3), ("chunk", 2)]


def test_emit_hour_refuses_empty_chunks():
    with pytest.raises(ValueError, match="chunk_rows"):
        list(emit_hour(HOUR, [], chunk_rows=0))


def run_fn(elements):
    """The translate DoFn called directly: (main outputs, tagged outputs) in emission order."""
    fn = _TranslateFn(TranslationSettings(), facts_per_file=True)
    fn.setup()
    main, tagged = [], []
    for element in elements:
        for out in fn.process(element):
            (tagged if isinstance(out, beam.pvalue.TaggedOutput) else main).append(out)
    return main, [(t.tag, t.value) for t in tagged]


def flatten(main):
    out = []
    for element in main:
        out.extend(element if isinstance(element, list) else [element])
    return out


@pytest.mark.parametrize("bad_at", [(3, 4), (3,), (4,), (1, 6)])
def test_chunks_translate_as_their_lines_do_with_dead_letters_on_either_side(bad_at):
    # Chunks of 3 over 6 lines: the boundary falls between lines 3 and 4.
    lines = rows(6, bad_at)
    per_line = [ExportLine(HOUR, f, n, raw) for f, n, raw in triples(lines)]
    per_line.append(HourMarker(HOUR, DONE, None, {"rows_read": 6}))
    chunked = list(emit_hour(HOUR, triples(lines), chunk_rows=3))
    assert shapes(chunked)[:-1] == [("chunk", 3), ("chunk", 3)]

    main_lines, tagged_lines = run_fn(per_line)
    main_chunks, tagged_chunks = run_fn(chunked)
    assert flatten(main_chunks) == main_lines
    assert tagged_chunks == tagged_lines
    letters = [letter for tag, letter in tagged_chunks if tag == DEAD_LETTER]
    assert [letter.line_number for letter in letters] == list(bad_at)
    marker = main_chunks[-1]
    assert marker.counts == {"rows_read": 6, "events": 6 - len(bad_at),
                             "dead:invalid_json": len(bad_at)}
    assert [letter.line_number for letter in marker.letters] == list(bad_at)
    # A chunk whose rows all fail yields no empty list of events.
    assert all(element for element in main_chunks if isinstance(element, list))


def test_chunks_through_the_pipeline_to_the_sink(tmp_path):
    """Files → chunks → translate → WriteToPostHog on a real runner: an hour that ends exactly on
    a chunk boundary with dead letters either side of another, an hour of one line, an empty
    hour."""
    size = emit.CHUNK_ROWS
    first = rows(2 * size, bad_at=(size, size + 1))
    single = rows(1, first=2 * size)
    for hour, lines in ((HOUR, first), (NEXT, single)):
        name = f"77_{hour[:4]}-{hour[4:6]}-{hour[6:8]}_{int(hour[9:])}#0.json.gz"
        (tmp_path / name).write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    empty = "20240305T12"
    with PostHogCaptureServer(KEY) as server:
        with BeamTestPipeline() as p:
            read = p | ReadFromAmplitudeFiles(f"{tmp_path}/*.json.gz", [HOUR, NEXT, empty])
            translated = read | TranslateToPostHog()
            written = translated[EVENTS] | WriteToPostHog(server.url, KEY)
            assert_that(read | "Shapes" >> beam.Map(
                lambda e: ("chunk", e.hour, len(e.lines)) if isinstance(e, LineChunk)
                else ("marker", e.hour)), equal_to([
                    ("chunk", HOUR, size), ("chunk", HOUR, size), ("marker", HOUR),
                    ("chunk", NEXT, 1), ("marker", NEXT), ("marker", empty)]), label="Chunks")
            assert_that(written.checkpoints | beam.Map(
                lambda m: (m.hour, m.status, m.counts.get("rows_read"), m.counts.get("events"),
                           m.counts.get("events_sent"), m.counts.get("dead:invalid_json"),
                           tuple(letter.line_number for letter in m.letters))),
                equal_to([(HOUR, DONE, 2 * size, 2 * size - 2, 2 * size - 2, 2, (size, size + 1)),
                          (NEXT, DONE, 1, 1, 1, None, ()),
                          (empty, EMPTY, 0, 0, 0, None, ())]), label="Markers")
        expected = [translate_line(raw).event["uuid"] for raw in first + single
                    if raw != BAD]
        assert sorted(server.uuids) == sorted(expected)
