"""--preserve_sources: downloaded hours kept as <YYYYMMDDTHH>.zip replay as the same elements."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from connectors import files
from connectors.amplitude import ReadFromAmplitudeExport, _Keys, _ReadExportHours
from connectors.files import ReadFromAmplitudeFiles
from sandbox.amplitude import AmplitudeExportServer, Fault
from tests.amplitude_rows import one_per_line, rows_for_hours
from tests.gcs_emulator import gcs_bucket  # noqa: F401  (fixture)
from transforms.records import DONE, EMPTY, FAILED, HourMarker

KEY, SECRET = "preserve-key", "preserve-secret"
H10, H11, H12, H13 = "20240305T10", "20240305T11", "20240305T12", "20240305T13"
FAST = dict(max_attempts=2, max_retry_seconds=10, request_timeout=5, backoff_base=0.001)


def comparable(element):
    return element if not isinstance(element, HourMarker) else (
        element.hour, element.status, element.counts["rows_read"])


@pytest.mark.parametrize("where", ["local", "gs"])
def test_preserved_hours_replay_as_the_same_lines(where, tmp_path, request):
    root = str(tmp_path / "work" / "exports") if where == "local" else (
        request.getfixturevalue("gcs_bucket") + "/work/exports")
    rows = rows_for_hours({H10: 9, H11: 4, H13: 3})
    with AmplitudeExportServer(rows, KEY, SECRET, part_rows=2) as server:
        server.add_faults(Fault(truncate=True), hour=H11)  # a retried download is kept once
        server.add_faults(Fault(status=503), Fault(status=503), hour=H13)  # fails: not kept
        fn = _ReadExportHours(server.url, _Keys(KEY, SECRET), root, FAST)
        fn.setup()
        downloaded = [line for element in fn.process(
            (H10, H11, H12, H13), tracker=OffsetRestrictionTracker(OffsetRange(0, 4)))
            for line in one_per_line(element)]
        fn.teardown()
    statuses = [(e.hour, e.status) for e in downloaded if isinstance(e, HourMarker)]
    assert statuses == [(H10, DONE), (H11, DONE), (H12, EMPTY), (H13, FAILED)]
    kept = sorted(m.path.rsplit("/", 1)[1]
                  for m in FileSystems.match([f"{root}/*"])[0].metadata_list)
    assert kept == [f"{H10}.zip", f"{H11}.zip"]  # complete zips only, no temporary names

    replay = [comparable(e) for e in downloaded if e.hour in (H10, H11)]
    with BeamTestPipeline() as p:
        out = p | ReadFromAmplitudeFiles(f"{root}/*.zip", hours=[H10, H11])
        assert_that(out | beam.FlatMap(one_per_line) | beam.Map(comparable), equal_to(replay))


def test_preserve_dir_through_the_composite(tmp_path):
    rows = rows_for_hours({H10: 3})
    with AmplitudeExportServer(rows, KEY, SECRET) as server:
        with BeamTestPipeline() as p:
            _ = p | ReadFromAmplitudeExport([H10], api_key=KEY, secret_key=SECRET,
                                            base_url=server.url, preserve_dir=str(tmp_path),
                                            **FAST)
        assert files.read_bytes(str(tmp_path / f"{H10}.zip")) == server.export_zip(H10, H10)
