"""One run per job: a lease file in the work_dir, kept alive by a heartbeat.

Two runs of one job would both fetch and both send every hour neither has committed yet. A run
therefore takes ``<work_dir>/lease.json`` before it writes anything, refreshes it every
``HEARTBEAT_SECONDS`` while it works and deletes it when it ends. A lease whose heartbeat is older
than ``EXPIRY_SECONDS`` belongs to a run that stopped without ending (killed, or its machine
lost); ``--force`` takes such a lease over. A lease left by a process of this machine that no
longer exists is taken over at once: that run cannot be sending any more.

The work_dir may be on Cloud Storage, where Beam's file systems offer no exclusive create: a run
writes its lease, waits ``SETTLE_SECONDS`` and reads it back, and gives way if another run's
lease is there by then. Two runs started within the same fraction of a second could still both
start; runs started by hand are not that close.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time

import orjson

from connectors.files import exists, read_bytes, remove, write_atomically
from pipeline.job import join

__all__ = ["EXPIRY_SECONDS", "HEARTBEAT_SECONDS", "LEASE_FILE", "JobLease", "LeaseHeld",
           "describe", "read_lease"]

LEASE_FILE = "lease.json"
HEARTBEAT_SECONDS = 30.0
EXPIRY_SECONDS = 120.0
# Long enough for a competing write to become visible: a local rename is immediate, a Cloud
# Storage one (copy, then delete) takes a few requests.
SETTLE_SECONDS = {"local": 0.05, "remote": 0.5}


class LeaseHeld(Exception):
    """Another run holds the job's lease; the message names it and says what to do."""


def read_lease(work_dir: str) -> dict | None:
    path = join(work_dir, LEASE_FILE)
    if not exists(path):
        return None
    try:
        return orjson.loads(read_bytes(path))
    except (orjson.JSONDecodeError, FileNotFoundError, OSError):
        return None  # deleted or replaced while being read: as good as absent


def _is_expired(lease: dict, now: float) -> bool:
    return now - float(lease.get("heartbeat_at", 0)) > float(lease.get("expiry_seconds",
                                                                       EXPIRY_SECONDS))


def _holder_is_gone(lease: dict) -> bool:
    """Whether the lease's process is known dead: it ran on this machine and no longer exists."""
    if lease.get("host") != socket.gethostname() or not isinstance(lease.get("pid"), int):
        return False
    try:
        os.kill(lease["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(lease: dict, now: float | None = None) -> str:
    """One line: which run holds the lease, since when, and whether it is alive or expired."""
    now = time.time() if now is None else now
    age = now - float(lease.get("heartbeat_at", 0))
    expires = float(lease.get("expiry_seconds", EXPIRY_SECONDS)) - age
    state = (f"expired {-expires:.0f} s ago" if expires < 0
             else f"alive, expires in {expires:.0f} s without a heartbeat")
    return (f"run {lease.get('run_id')} (pid {lease.get('pid')} on {lease.get('host')}, started "
            f"{_when(float(lease.get('started_at', 0)))}, last heartbeat {age:.0f} s ago: "
            f"{state})")


class JobLease:
    """The lease of one run: ``acquire()``, then ``release()`` (or use as a context manager)."""

    def __init__(self, work_dir: str, run_id: str, *, heartbeat_seconds: float = HEARTBEAT_SECONDS,
                 expiry_seconds: float = EXPIRY_SECONDS, settle_seconds: float | None = None):
        self._path = join(work_dir, LEASE_FILE)
        self._work_dir = work_dir
        self._heartbeat = heartbeat_seconds
        remote = "://" in work_dir and not work_dir.startswith("file://")
        # A run refused before it wrote anything must not leave a new job's folder behind.
        self._new_folder = None if remote or os.path.exists(work_dir) else work_dir
        self._settle = (SETTLE_SECONDS["remote" if remote else "local"]
                        if settle_seconds is None else settle_seconds)
        self._record = {"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(),
                        "started_at": time.time(), "expiry_seconds": expiry_seconds}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, force: bool = False) -> str | None:
        """Take the lease or raise LeaseHeld; return a note when an old lease was taken over."""
        note = None
        current = read_lease(self._work_dir)
        if current is not None:
            now = time.time()
            holder = describe(current, now)
            if _holder_is_gone(current):
                note = f"took over the lease of {holder}: that process no longer exists"
            elif not _is_expired(current, now):
                raise LeaseHeld(f"this job is being run by {holder}. Wait for it to end, or "
                                "stop it; once its lease has expired, --force takes it over.")
            elif not force:
                raise LeaseHeld(f"this job's lease is held by {holder}; that run seems to have "
                                "stopped. Rerun with --force to take the lease over.")
            else:
                note = f"--force: took over the expired lease of {holder}"
        self._write()
        time.sleep(self._settle)
        current = read_lease(self._work_dir)
        if current is None or current.get("run_id") != self._record["run_id"]:
            raise LeaseHeld("another run took this job's lease at the same moment"
                            + (f": {describe(current)}" if current else ""))
        self._thread = threading.Thread(target=self._beat, name="job-lease", daemon=True)
        self._thread.start()
        return note

    def _write(self) -> None:
        write_atomically(self._path, orjson.dumps({**self._record, "heartbeat_at": time.time()}))

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat):
            try:
                self._write()
            except Exception:  # pylint: disable=broad-except
                pass  # a missed beat is retried at the next one; expiry allows several

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still this run's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
            current = read_lease(self._work_dir)
            if current is not None and current.get("run_id") == self._record["run_id"]:
                remove(self._path)
        if self._new_folder is not None:
            try:
                os.rmdir(self._new_folder)  # only if the run left it empty
            except OSError:
                pass

    def __enter__(self) -> "JobLease":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
