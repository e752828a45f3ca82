"""Realistic Amplitude export rows for the source's tests and benchmark.

Rows are copies of the recorded rows in tests/data/amplitude_export_rows.jsonl with distinct ids
and upload times spread over the requested hours.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import orjson
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker

from connectors.amplitude import _Keys, _ReadExportHours
from transforms.records import LineChunk

_DATA = os.path.join(os.path.dirname(__file__), "data", "amplitude_export_rows.jsonl")
with open(_DATA, "rb") as _handle:
    TEMPLATES = [orjson.loads(line) for line in _handle if line.strip()]


def make_row(index: int, uploaded: dt.datetime) -> dict:
    row = dict(TEMPLATES[index % len(TEMPLATES)])
    stamp = uploaded.strftime("%Y-%m-%d %H:%M:%S.%f")
    row.update({
        "$insert_id": str(uuid.UUID(int=index + 1)),
        "event_id": index,
        "user_id": f"user-{index % 97}",
        "server_upload_time": stamp,
        "server_received_time": stamp,
        "client_upload_time": stamp,
        "event_time": stamp,
        "client_event_time": stamp,
    })
    return row


def rows_for_hours(counts: dict[str, int], start_index: int = 0) -> list[dict]:
    """``counts`` maps an hour (YYYYMMDDTHH) to how many rows were uploaded in it."""
    rows, index = [], start_index
    for hour, count in counts.items():
        base = dt.datetime.strptime(hour, "%Y%m%dT%H")
        for i in range(count):
            rows.append(make_row(index, base + dt.timedelta(seconds=(i * 7919) % 3600)))
            index += 1
    return rows


def lines_of(rows: list[dict]) -> list[bytes]:
    return [orjson.dumps(row) for row in rows]


def one_per_line(element) -> list:
    """A source's element as the ``ExportLine``s it carries (a marker as itself): tests compare
    lines, whichever chunks the source grouped them in."""
    return element.export_lines() if isinstance(element, LineChunk) else [element]


def read_export_hours(url: str, keys: tuple[str, str], hours: list[str], client_options: dict,
                      concurrency: int, preserve_dir: str | None = None) -> list:
    """The Export API source's DoFn called directly (setup, process, teardown): its elements in
    emission order, one per line."""
    fn = _ReadExportHours(url, _Keys(*keys), preserve_dir, client_options, concurrency)
    fn.setup()
    try:
        tracker = OffsetRestrictionTracker(OffsetRange(0, len(hours)))
        return [line for element in fn.process(tuple(hours), tracker=tracker)
                for line in one_per_line(element)]
    finally:
        fn.teardown()
