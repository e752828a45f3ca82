"""One run per job: the lease in the work_dir, locally and on gs://, and through the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import orjson
import pytest

from connectors.files import read_bytes, write_atomically
from pipeline.job import join
from pipeline.lease import LEASE_FILE, JobLease, LeaseHeld, read_lease
from tests.e2e import run_cli
from tests.gcs_emulator import gcs_bucket  # noqa: F401  (fixture)


def _plant(work_dir: str, *, age: float, pid: int | None = None, host: str | None = None,
           run_id: str = "20240101T000000-abc123") -> None:
    """A lease as another run would have left it, last refreshed ``age`` seconds ago."""
    now = time.time()
    write_atomically(join(work_dir, LEASE_FILE), orjson.dumps({
        "run_id": run_id, "host": host or socket.gethostname(), "pid": pid or os.getpid(),
        "started_at": now - age - 60, "heartbeat_at": now - age, "expiry_seconds": 120}))


def test_a_second_run_is_refused_naming_the_first_and_the_lease_goes_when_it_ends(tmp_path):
    first = JobLease(str(tmp_path), "run-one")
    assert first.acquire() is None
    with pytest.raises(LeaseHeld, match="run run-one .*alive"):
        JobLease(str(tmp_path), "run-two").acquire()
    with pytest.raises(LeaseHeld, match="run-one"):  # --force does not take a live lease
        JobLease(str(tmp_path), "run-two").acquire(force=True)
    first.release()
    assert read_lease(str(tmp_path)) is None
    second = JobLease(str(tmp_path), "run-two")
    second.acquire()
    assert read_lease(str(tmp_path))["run_id"] == "run-two"
    second.release()


def test_an_expired_lease_needs_force_to_be_taken_over(tmp_path):
    _plant(str(tmp_path), age=600, host="another-machine", pid=1)
    with pytest.raises(LeaseHeld, match="--force"):
        JobLease(str(tmp_path), "run-two").acquire()
    lease = JobLease(str(tmp_path), "run-two")
    assert "took over the expired lease" in lease.acquire(force=True)
    assert read_lease(str(tmp_path))["run_id"] == "run-two"
    lease.release()


def test_a_lease_of_a_process_that_no_longer_exists_here_is_taken_over(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    _plant(str(tmp_path), age=1, pid=gone.pid)
    lease = JobLease(str(tmp_path), "run-two")
    assert "no longer exists" in lease.acquire()
    lease.release()


def test_the_heartbeat_refreshes_the_lease(tmp_path):
    lease = JobLease(str(tmp_path), "run-one", heartbeat_seconds=0.05)
    lease.acquire()
    first = read_lease(str(tmp_path))["heartbeat_at"]
    deadline = time.monotonic() + 10
    while read_lease(str(tmp_path))["heartbeat_at"] == first and time.monotonic() < deadline:
        time.sleep(0.05)
    lease.release()
    assert read_lease(str(tmp_path)) is None
    assert deadline > time.monotonic()


def test_the_lease_works_on_cloud_storage(gcs_bucket):  # noqa: F811
    work_dir = f"{gcs_bucket}/lease-job"
    first = JobLease(work_dir, "run-one")
    first.acquire()
    assert orjson.loads(read_bytes(join(work_dir, LEASE_FILE)))["run_id"] == "run-one"
    with pytest.raises(LeaseHeld, match="run-one"):
        JobLease(work_dir, "run-two").acquire()
    first.release()
    assert read_lease(work_dir) is None
    _plant(work_dir, age=600, host="another-machine", pid=1)
    taken = JobLease(work_dir, "run-three")
    assert "expired" in taken.acquire(force=True)
    taken.release()


def _job_args(tmp_path) -> list[str]:
    export = tmp_path / "exports" / "20240305T10.jsonl"
    export.parent.mkdir()
    export.write_text('{"event_type": "a", "user_id": "u1", "uuid": '
                      '"5b6a2f4e-1c1d-4c2e-9a7b-1f2e3d4c5b6a", "event_time": '
                      '"2024-03-05 10:00:00.000000", "server_upload_time": '
                      '"2024-03-05 10:00:01.000000"}\n')
    return ["--start", "20240305T10", "--end", "20240305T10", "--work_dir",
            str(tmp_path / "job"), "--source", "files", "--source_path", str(export),
            "--dry_run"]


def test_the_cli_refuses_a_second_run_and_status_shows_the_lease(tmp_path):
    args, work_dir = _job_args(tmp_path), str(tmp_path / "job")
    _plant(work_dir, age=5, run_id="20240101T000000-live01")
    code, _, err = run_cli(*args)
    assert code == 2 and "20240101T000000-live01" in err and "being run by" in err
    _plant(work_dir, age=600, host="another-machine", pid=1)
    code, _, err = run_cli(*args)
    assert code == 2 and "--force" in err
    code, _, err = run_cli(*args, "--force")
    assert code == 0, err
    assert read_lease(work_dir) is None
    _plant(work_dir, age=5, run_id="20240101T000000-live02")
    code, out, _ = run_cli("status", "--work_dir", work_dir)
    assert code == 0 and "Lease: held by run 20240101T000000-live02" in out and "alive" in out
