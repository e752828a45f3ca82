"""``resend``: an interruption never leaves its dead-letter file and ledger record apart; pacing."""

import uuid

import orjson
import pytest

from connectors import files
from pipeline import commands, ledger
from pipeline import job as jobs
from pipeline.report import build_report
from sandbox.posthog import PostHogCaptureServer
from tests.e2e import assert_reconciled
from transforms.records import DeadLetter

KEY = "phc_resend_edges_key"
HOUR = "20240310T05"


class Killed(BaseException):
    """The process dying at a chosen write (SIGKILL cannot be caught; this ends the command)."""


def _event(n):
    return {"event": "Page Viewed", "distinct_id": f"user-{n}", "uuid": str(uuid.uuid4()),
            "timestamp": "2024-03-10T05:00:00Z", "properties": {"n": n}}


def make_job(work_dir, server, letters=3, rejected=1, **settings):
    """A job whose hour HOUR sent 1 event and dead-lettered ``letters`` + ``rejected``."""
    job = jobs.Job(start=HOUR, end=HOUR, job_name="resend-edges", work_dir=str(work_dir),
                   posthog_host=server.url, **settings)
    jobs.save(job)
    dead = [DeadLetter("delivery_failed", "deliver", HOUR, None, None, _event(n), "HTTP 503")
            for n in range(letters)]
    dead += [DeadLetter("rejected_by_posthog", "deliver", HOUR, None, None,
                        {"event": "x", "uuid": str(uuid.uuid4())}, "HTTP 400")] * rejected
    ledger.write_dead_letters(ledger.hour_path(job.work_dir, ledger.DEAD_LETTER, HOUR), dead)
    ledger.write_record(job.work_dir, HOUR, "done", {
        "rows_read": 1 + letters + rejected, "events": 1 + letters + rejected, "events_sent": 1,
        "dead:delivery_failed": letters, "dead:rejected_by_posthog": rejected})
    return job


def resend(work_dir, *extra):
    return commands.resend(["--work_dir", str(work_dir), "--posthog_api_key", KEY, *extra])


@pytest.fixture
def server():
    with PostHogCaptureServer(KEY, retry_after="0") as srv:
        yield srv


@pytest.mark.parametrize("killed_at", [1, 2, 3])
def test_an_interrupted_resend_leaves_a_pair_the_next_resend_finishes(killed_at, tmp_path,
                                                                     server, monkeypatch):
    # Before: resend rewrote the dead-letter file, then the ledger record. Killed between the
    # two (killed_at=2), the record still counted letters the file no longer held: resend found
    # nothing to send and every run exited 3 forever.
    job = make_job(tmp_path, server)
    real = files.write_atomically
    writes = []

    def dying_write(path, data):
        writes.append(path)
        if len(writes) == killed_at:
            raise Killed(path)
        return real(path, data)

    for module in (commands, ledger):
        monkeypatch.setattr(module, "write_atomically", dying_write, raising=False)
    with pytest.raises(Killed):
        resend(tmp_path)
    monkeypatch.undo()

    assert resend(tmp_path) == 0
    record = ledger.read_records(job.work_dir)[HOUR]
    assert record["counts"]["events_sent"] == 4
    assert "dead:delivery_failed" not in record["counts"]
    letters = ledger.read_dead_letters(ledger.hour_path(job.work_dir, ledger.DEAD_LETTER, HOUR))
    assert [d.reason for d in letters] == ["rejected_by_posthog"]
    report = build_report(job, [HOUR])
    assert_reconciled(report)
    assert report["status"] == "complete" or report["rows_dead_lettered"] == {
        "rejected_by_posthog": 1}
    assert len(server.uuids) == 3  # each re-sent event reached PostHog (duplicates dedup)
    assert not list((tmp_path / "dead_letter").glob("*.next"))


def test_resend_paces_like_the_job(tmp_path, server, capsys):
    # Before: resend built its client without --max_events_per_second or --sleep_interval_ms,
    # so it sent as fast as PostHog would take.
    make_job(tmp_path, server, letters=20, rejected=0, batch_size=10,
             max_events_per_second=10.0, sleep_interval_ms=50)
    assert resend(tmp_path) == 0
    out = capsys.readouterr().out
    assert "Re-sent 20 events" in out
    # The job's rate: the first 10 events pass at once, the next 10 wait about a second (less
    # the 50 ms pause after the first request). Slept time is what the client reports, not
    # wall time; without pacing it would be 0.0.
    paced = float(out.split(" s paced")[0].rsplit(" ", 1)[1])
    assert paced >= 0.5
    assert server.requests == 2


def test_resend_takes_pacing_flags_over_the_jobs(tmp_path, server, capsys):
    make_job(tmp_path, server, letters=4, rejected=0, max_events_per_second=1.0)
    assert resend(tmp_path, "--max_events_per_second", "1000", "--sleep_interval_ms", "0") == 0
    out = capsys.readouterr().out
    assert "Re-sent 4 events" in out and "0.0 s paced" in out
    stored = orjson.loads((tmp_path / "job.json").read_bytes())
    assert stored["max_events_per_second"] == 1.0  # resend does not change the job
