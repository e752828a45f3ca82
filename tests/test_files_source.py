"""ReadFromAmplitudeFiles and the FileSystems helpers, on local paths and gs:// (emulator)."""

from __future__ import annotations

import gzip
import os

import apache_beam as beam
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from connectors import files
from connectors.errors import MigrationAbort
from connectors.files import ReadFromAmplitudeFiles
from sandbox.amplitude import AmplitudeExportServer
from tests.amplitude_rows import lines_of, one_per_line, rows_for_hours
from tests.gcs_emulator import gcs_bucket  # noqa: F401  (fixture)
from transforms.records import DONE, EMPTY, FAILED, ExportLine, HourMarker

H10, H11, H12, H13, H14, H15 = (f"20240305T{h}" for h in range(10, 16))


def summary(element):
    if isinstance(element, ExportLine):
        return ("line", element.hour, element.line)
    return ("marker", element.hour, element.status, element.counts["rows_read"])


def expect(hours_lines: dict[str, list[bytes]], empty=(), failed=()):
    out = [("line", h, l) for h, lines in hours_lines.items() for l in lines]
    out += [("marker", h, DONE, len(lines)) for h, lines in hours_lines.items()]
    out += [("marker", h, EMPTY, 0) for h in empty] + [("marker", h, FAILED, 0) for h in failed]
    return out


def write(path: str, data: bytes) -> str:
    files.write_atomically(path, data)
    return path


@pytest.fixture(scope="module")
def exports():
    """Zip bodies as the Export API returns them, and the rows' lines per hour."""
    rows = rows_for_hours({H10: 6, H11: 4, H12: 3})
    for row in rows:
        row["app"] = 4242  # one app, so the zip's line order is the rows' order
    with AmplitudeExportServer(rows, "k", "s", part_rows=2) as server:
        zips = {h: server.export_zip(h, h) for h in (H10, H11, H12)}
        zips["11-12"] = server.export_zip(H11, H12)
    lines = lines_of(rows)
    return zips, {H10: lines[:6], H11: lines[6:10], H12: lines[10:]}


def populate(root: str, exports) -> dict[str, list[bytes]]:
    """A mix of every supported file shape under ``root``; returns the expected lines by hour."""
    zips, lines = exports
    write(f"{root}/exports/{H10}.zip", zips[H10])  # as --preserve_sources keeps it
    write(f"{root}/downloads/export.zip", zips["11-12"])  # as saved from the API
    h13 = [b'{"n":%d}' % i for i in range(12)]
    for part in range(0, 12, 5):  # Amplitude's S3 export: parts #0, #5, #10
        write(f"{root}/s3/77/77_2024-03-05_13#{part}.json.gz",
              gzip.compress(b"\n".join(h13[part:part + 5]) + b"\n"))
    write(f"{root}/plain/{H14}.jsonl", b'{"p":1}\n{"p":2}\n')
    write(f"{root}/plain/_SUCCESS", b"")
    return {H10: lines[H10], H11: lines[H11], H12: lines[H12], H13: h13,
            H14: [b'{"p":1}', b'{"p":2}']}


def read_all(pattern, hours=None):
    with BeamTestPipeline() as p:
        out = p | ReadFromAmplitudeFiles(pattern, hours)
        collected = out | beam.FlatMap(one_per_line) | beam.Map(summary)
    return collected


def test_reads_every_file_shape_by_hour_from_local_paths(tmp_path, exports):
    expected = populate(str(tmp_path), exports)
    with BeamTestPipeline() as p:
        out = p | ReadFromAmplitudeFiles(f"{tmp_path}/*/*")
        assert_that(out | beam.FlatMap(one_per_line) | beam.Map(summary), equal_to(expect(
            {h: expected[h] for h in (H10, H11, H12, H14)})))
    # Amplitude's S3 layout is one level deeper; "**" reaches it too.
    with BeamTestPipeline() as p:
        out = p | ReadFromAmplitudeFiles(f"{tmp_path}/s3/**")
        assert_that(out | beam.FlatMap(one_per_line) | beam.Map(summary), equal_to(expect({H13: expected[H13]})))


def test_hours_selects_and_reports_missing_hours_as_empty(tmp_path, exports):
    expected = populate(str(tmp_path), exports)
    with BeamTestPipeline() as p:
        out = p | ReadFromAmplitudeFiles(f"{tmp_path}/**", hours=[H11, "2024-03-05T13", H15])
        assert_that(out | beam.FlatMap(one_per_line) | beam.Map(summary), equal_to(expect(
            {H11: expected[H11], H13: expected[H13]}, empty=[H15])))


def test_an_hours_lines_follow_natural_part_order_then_its_marker(tmp_path, exports):
    from connectors.files import _GroupFilesByHour, _ReadHourFiles

    expected = populate(str(tmp_path), exports)
    grouped = dict(_GroupFilesByHour([H13, H11]).process(f"{tmp_path}/**"))
    reader = _ReadHourFiles()
    reader.setup()
    for hour in (H13, H11):
        out = [line for element in reader.process((hour, grouped[hour]))
               for line in one_per_line(element)]
        assert [e.line for e in out[:-1]] == expected[hour]
        assert out[-1] == HourMarker(hour, DONE, None, {"rows_read": len(expected[hour])})
    assert out[0].file.endswith("_2024-03-05_11#0.json.gz") and out[0].line_number == 1


def test_a_damaged_file_fails_its_hour_without_emitting_any_of_its_lines(tmp_path, exports):
    zips, lines = exports
    write(f"{tmp_path}/{H10}.zip", zips[H10])
    damaged = bytearray(zips[H11])
    damaged[len(damaged) // 2] ^= 0xFF
    write(f"{tmp_path}/{H11}.zip", bytes(damaged))
    with BeamTestPipeline() as p:
        out = p | ReadFromAmplitudeFiles(f"{tmp_path}/*.zip")
        assert_that(out | beam.FlatMap(one_per_line) | beam.Map(summary), equal_to(expect({H10: lines[H10]}, failed=[H11])))


def test_data_files_without_an_hour_stop_the_run_naming_the_flag(tmp_path):
    write(f"{tmp_path}/events.jsonl", b'{"a":1}\n')
    with pytest.raises(MigrationAbort, match="--source_path.*events.jsonl"):
        with BeamTestPipeline() as p:
            _ = p | ReadFromAmplitudeFiles(f"{tmp_path}/*")


def test_a_pattern_matching_nothing_stops_the_run(tmp_path):
    with pytest.raises(MigrationAbort, match="matched no files"):
        with BeamTestPipeline() as p:
            _ = p | ReadFromAmplitudeFiles(f"{tmp_path}/nothing-*.zip")


def test_constructor_validates():
    with pytest.raises(ValueError, match="--source_path"):
        ReadFromAmplitudeFiles("")
    with pytest.raises(ValueError, match="YYYYMMDDTHH"):
        ReadFromAmplitudeFiles("/x/*", hours=["yesterday"])


def test_reads_gs_paths_through_filesystems(gcs_bucket, exports):
    root = f"{gcs_bucket}/files-source"
    expected = populate(root, exports)
    with BeamTestPipeline() as p:
        out = p | ReadFromAmplitudeFiles(f"{root}/**")
        assert_that(out | beam.FlatMap(one_per_line) | beam.Map(summary), equal_to(expect(expected)))


@pytest.mark.parametrize("where", ["local", "gs"])
def test_write_atomically_publishes_whole_files_or_nothing(where, tmp_path, request):
    root = str(tmp_path / "new" / "dir") if where == "local" else (
        request.getfixturevalue("gcs_bucket") + "/atomic")
    target = f"{root}/20240305T10.zip"
    files.write_atomically(target, [b"first ", b"version"])
    assert files.exists(target) and files.read_bytes(target) == b"first version"

    def failing():
        yield b"second"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.write_atomically(target, failing())
    with pytest.raises(OSError):
        files.write_atomically(f"{root}/other.json.gz", failing())
    assert files.read_bytes(target) == b"first version"  # untouched, and never gzip-wrapped
    assert not files.exists(f"{root}/other.json.gz")
    leftovers = [m.path for m in FileSystems.match([f"{root}/*"])[0].metadata_list]
    assert [os.path.basename(p) for p in leftovers] == ["20240305T10.zip"]
    files.write_atomically(target, b"replaced")
    assert files.read_bytes(target) == b"replaced"
