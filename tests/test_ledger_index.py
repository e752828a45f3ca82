"""The ledger's compacted index: read instead of one file per hour, never trusted over a record."""

from __future__ import annotations

import os

import orjson

from connectors.files import exists, read_bytes
from pipeline.job import join
from pipeline.ledger import INDEX, hour_path, read_records, write_record, LEDGER
from tests.e2e import KEYS, run_cli
from tests.gcs_emulator import gcs_bucket  # noqa: F401  (fixture)
from sandbox.amplitude import AmplitudeExportServer


def _index(state: str) -> dict:
    return orjson.loads(read_bytes(join(state, INDEX)))["records"]


def test_the_index_is_written_and_then_read_instead_of_the_records(tmp_path):
    state = str(tmp_path)
    for hour in ("20240101T00", "20240101T01"):
        write_record(state, hour, "done", {"rows_read": 3})
    assert read_records(state, update_index=True)["20240101T01"]["counts"] == {"rows_read": 3}
    index = _index(state)
    assert sorted(index) == ["20240101T00.json", "20240101T01.json"]
    # An entry whose file is unchanged is used as it is: the file is not read again.
    index["20240101T00.json"][2]["counts"] = {"rows_read": 99}
    (tmp_path / INDEX).write_bytes(orjson.dumps({"version": 1, "records": index}))
    assert read_records(state)["20240101T00"]["counts"] == {"rows_read": 99}


def test_a_record_rewritten_after_the_index_wins_over_its_entry(tmp_path):
    state = str(tmp_path)
    write_record(state, "20240101T00", "failed", {"rows_read": 0}, "HTTP 503")
    read_records(state, update_index=True)
    write_record(state, "20240101T00", "done", {"rows_read": 12})
    write_record(state, "20240101T01", "empty", {"rows_read": 0})
    records = read_records(state, update_index=True)
    assert records["20240101T00"]["status"] == "done" and "20240101T01" in records
    assert _index(state)["20240101T00.json"][2]["status"] == "done"
    os.remove(hour_path(state, LEDGER, "20240101T01"))  # the record is the truth
    assert "20240101T01" not in read_records(state)


def test_a_damaged_index_only_costs_reading_the_records(tmp_path):
    write_record(str(tmp_path), "20240101T00", "done", {"rows_read": 1})
    (tmp_path / INDEX).write_bytes(b"{not json")
    assert read_records(str(tmp_path))["20240101T00"]["status"] == "done"


def test_a_three_year_job_starts_on_cloud_storage(gcs_bucket):  # noqa: F811
    """26,280 hours, a few done: the run reads the index, fetches the first pending hours and
    rewrites the index; nothing per hour is read or written for the hours it leaves alone."""
    work_dir = f"{gcs_bucket}/three-years"
    state = join(work_dir, "dry_run")  # a dry run keeps its own ledger
    done = [f"202301{d:02d}T{h:02d}" for d in (1, 2) for h in range(24)]
    for hour in done:
        write_record(state, hour, "empty", {"rows_read": 0}, fetched_after="2024-01-01T00:00:00Z")
    with AmplitudeExportServer([], KEYS["AMPLITUDE_API_KEY"], KEYS["AMPLITUDE_SECRET_KEY"]) as srv:
        code, _, err = run_cli(
            "--start", "20230101T00", "--end", "20251230T23", "--work_dir", work_dir,
            "--amplitude_url", srv.url, "--dry_run", "--limit_hours", "3", "--accept_empty",
            env={"STORAGE_EMULATOR_HOST": os.environ["STORAGE_EMULATOR_HOST"]})
        assert code == 4, err  # hours left pending after --limit_hours
        assert srv.hours() == [] and sorted(srv.requests) == [
            "20230103T00", "20230103T01", "20230103T02"]
    # No generated events' record: they wait until every hour of the job is done.
    assert len(_index(state)) == len(done) + 3
    report = orjson.loads(read_bytes(join(state, "report.json")))
    assert report["hours"]["total"] == 26_280 and report["hours"]["pending"] == 26_280 - 51
    assert not exists(hour_path(state, "facts", "20230103T00"))  # an empty hour has no facts
