"""Start-up of a long job: 26,280 hours (three years), local and on a Cloud Storage emulator.

Two figures per place, each timed from starting ``python -m pipeline`` as a user does:

- ``rerun``: every hour of the job is done; the run reads the ledger, finds nothing to do, writes
  the report and exits. Measured without the ledger's index (every hour's record read, as before
  the index existed: the baseline) and with the index the previous run wrote.
- ``first_request``: a new job of the same range; the time until the sandbox Export API sees the
  first export request (the run is then stopped).

The done job is written directly (records as ``CommitHours`` writes them), not migrated, so that
seeding takes seconds locally. The emulator rewrites its whole metadata file on every upload, so
seeding it grows with the square of the hours: ``make bench`` seeds it with 1,000 hours.
Run alone: ``python -m benchmarks.bench_long_job [--hours 26280] [--gcs]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import orjson

from benchmarks._sandboxes import KEYS
from pipeline.job import Job, join
from sandbox.amplitude import AmplitudeExportServer

__all__ = ["measure_long_job"]

_END = dt.datetime(2025, 12, 30, 23)


def _range(hours: int) -> tuple[str, str]:
    start = _END - dt.timedelta(hours=hours - 1)
    return start.strftime("%Y%m%dT%H"), _END.strftime("%Y%m%dT%H")


def _files(work_dir: str, hours: int, sink: str) -> dict[str, bytes]:
    start, end = _range(hours)
    job = Job(start=start, end=end, job_name="long-job", work_dir=work_dir,
              posthog_host=sink)
    files = {"job.json": orjson.dumps(job.stored())}
    first = dt.datetime.strptime(start, "%Y%m%dT%H")
    for i in range(hours):
        hour = (first + dt.timedelta(hours=i)).strftime("%Y%m%dT%H")
        rows = 6 if i % 4 == 0 else 0
        counts = {"rows_read": rows, "events": rows, "events_sent": rows}
        record = {"hour": hour, "status": "done" if rows else "empty", "detail": None,
                  "counts": counts, "updated_at": "2026-01-01T00:00:00Z",
                  "fetched_after": "2026-01-01T00:00:00Z",
                  "summary": {"days": {f"{hour[:4]}-{hour[4:6]}-{hour[6:8]}":
                                       {"rows": rows, "events": rows}} if rows else {},
                              "event_names": {"Page Viewed": rows} if rows else {}}}
        files[f"ledger/{hour}.json"] = orjson.dumps(record)
    files["ledger/generated.json"] = orjson.dumps({
        "hour": "generated", "status": "done", "detail": None, "counts": {"$identify": 1},
        "dead": {}, "updated_at": "2026-01-01T00:00:00Z"})
    return files


def _seed_local(work_dir: str, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = os.path.join(work_dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            out.write(data)


def _seed_gcs(work_dir: str, files: dict[str, bytes]) -> None:
    from google.cloud import storage  # pylint: disable=import-outside-toplevel

    bucket_name, _, prefix = work_dir[len("gs://"):].partition("/")
    client = storage.Client(project="bench", credentials=_anonymous())
    bucket = client.bucket(bucket_name)

    def upload(item):
        bucket.blob(f"{prefix}/{item[0]}").upload_from_string(item[1])

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(upload, files.items()))


def _anonymous():
    from google.auth.credentials import AnonymousCredentials  # pylint: disable=import-outside-toplevel
    return AnonymousCredentials()


def _env() -> dict[str, str]:
    return {**os.environ, **KEYS}


def _rerun(work_dir: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipeline", "--work_dir", work_dir, "-q"],
                          env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"the rerun failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.perf_counter() - started


def _first_request(work_dir: str, hours: int, sink: str) -> float:
    start, end = _range(hours)
    with AmplitudeExportServer([], KEYS["AMPLITUDE_API_KEY"], KEYS["AMPLITUDE_SECRET_KEY"]) as srv:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--start", start, "--end", end, "--work_dir",
             work_dir, "--amplitude_url", srv.url, "--posthog_host", sink, "-q"],
            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not sum(srv.requests.values()):
                if process.poll() is not None:
                    raise RuntimeError(f"the run exited ({process.returncode}) before any request")
                time.sleep(0.01)
            return time.perf_counter() - started
        finally:
            process.kill()
            process.wait()


def _remove_index(work_dir: str) -> None:
    from connectors.files import remove  # pylint: disable=import-outside-toplevel
    remove(join(work_dir, "ledger_index.json"))


def _measure(work_dir: str, hours: int, seed: Callable[[str, dict], None]) -> dict[str, float]:
    sink = "http://127.0.0.1:9"  # never reached: nothing is sent in these runs
    started = time.perf_counter()
    seed(work_dir, _files(work_dir, hours, sink))
    figures = {"seed_seconds": time.perf_counter() - started}
    figures["rerun_without_index_s"] = _rerun(work_dir)  # also writes the index
    figures["rerun_with_index_s"] = _rerun(work_dir)
    _remove_index(work_dir)
    figures["rerun_without_index_again_s"] = _rerun(work_dir)
    figures["first_request_s"] = _first_request(join(work_dir, "new"), hours, sink)
    return figures


def measure_long_job(hours: int = 26_280, gcs: bool = False) -> dict[str, Any]:
    """Figures of a done ``hours``-hour job's rerun and of a new one's first request, with a
    local work_dir, or (``gcs``) on the GCS emulator."""
    if gcs:
        from tests.gcs_emulator import running_gcs_emulator  # pylint: disable=C0415
        with running_gcs_emulator("bench-long-job") as bucket:
            return {"hours": hours, **_measure(f"{bucket}/job", hours, _seed_gcs)}
    tmp = tempfile.mkdtemp(prefix="bench-long-job-")
    try:
        return {"hours": hours, **_measure(os.path.join(tmp, "job"), hours, _seed_local)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_long_job",
                                     description=__doc__)
    parser.add_argument("--hours", type=int, default=26_280, help="hours in the job (26280)")
    parser.add_argument("--gcs", action="store_true", help="on the GCS emulator (default: local)")
    args = parser.parse_args(argv)
    print(orjson.dumps(measure_long_job(args.hours, args.gcs),
                       option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
