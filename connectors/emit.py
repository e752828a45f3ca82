"""How a source hands an hour's rows to the pipeline: ``LineChunk``s, then the ``HourMarker``.

Both sources (the Export API and export files) read an hour completely before this runs, so an hour
is emitted whole or, when its download or files are damaged, not at all.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

from transforms.records import DONE, HourMarker, LineChunk

__all__ = ["CHUNK_BYTES", "CHUNK_ROWS", "emit_hour"]

# Rows per element. Beam's per-element work between fused stages costs a few microseconds, next
# to about 15 for translating a row: at 500 rows a chunk it is under 0.1% of the work, and a
# chunk of average rows (2 KB) stays near 1 MB however many stages hold one at a time.
CHUNK_ROWS = 500
# Rows of up to 1 MB exist (PostHog's event limit): a chunk also closes at this many line bytes.
CHUNK_BYTES = 4 << 20


def emit_hour(hour: str, lines: Iterable[tuple[str, int, bytes]],
              count_rows: Callable[[int], None] | None = None, *,
              chunk_rows: int = CHUNK_ROWS,
              chunk_bytes: int = CHUNK_BYTES) -> Iterator[LineChunk | HourMarker]:
    """The hour's ``(file, line_number, line)`` triples as ``LineChunk``s, then its DONE marker.

    Chunks hold at most ``chunk_rows`` lines and close once they reach ``chunk_bytes``; no chunk
    is empty, and an hour without lines yields its marker alone. ``count_rows`` (a Beam counter's
    ``inc``, say) hears the hour's row count before the marker goes out.
    """
    if chunk_rows < 1 or chunk_bytes < 1:
        raise ValueError("chunk_rows and chunk_bytes must be at least 1")
    rows = 0
    chunk: list = []
    size = 0
    for entry in lines:
        chunk.append(entry)
        size += len(entry[2])
        if len(chunk) >= chunk_rows or size >= chunk_bytes:
            rows += len(chunk)
            yield LineChunk(hour, chunk)
            chunk, size = [], 0
    if chunk:
        rows += len(chunk)
        yield LineChunk(hour, chunk)
    if count_rows is not None:
        count_rows(rows)
    yield HourMarker(hour, DONE, None, {"rows_read": rows})
