"""The CLI's rules for recent, not-yet-exportable, empty and left-over hours (real CLI, sandboxes)."""

import datetime as dt

import orjson

from connectors.hours import hour_range
from pipeline import job as jobs
from pipeline import ledger
from sandbox.amplitude import AmplitudeExportServer
from sandbox.posthog import PostHogCaptureServer
from tests.amplitude_rows import rows_for_hours
from tests.e2e import KEYS, run_cli

EMPTY, HOURS_PENDING, ALL_EMPTY = "empty", 4, 5


def _hour(delta_hours: int) -> str:
    now = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    return (now + dt.timedelta(hours=delta_hours)).strftime("%Y%m%dT%H")


def _servers(counts):
    amplitude = AmplitudeExportServer(rows_for_hours(counts), KEYS["AMPLITUDE_API_KEY"],
                                      KEYS["AMPLITUDE_SECRET_KEY"])
    return amplitude, PostHogCaptureServer(KEYS["POSTHOG_API_KEY"])


def _args(start, end, work_dir, amplitude, posthog, *extra):
    return ["--start", start, "--end", end, "--work_dir", str(work_dir), "--amplitude_url",
            amplitude.url, "--posthog_host", posthog.url, *extra]


def test_hours_under_48_hours_old_are_refused_before_anything_runs(tmp_path):
    # Before: the run only warned about recent hours and fetched them.
    start, end = _hour(-30), _hour(-20)
    amplitude, posthog = _servers({start: 3})
    with amplitude, posthog:
        code, _, err = run_cli(*_args(start, end, tmp_path, amplitude, posthog))
        assert code == 2, err[-2000:]
        assert f"{start}" in err and "48 hours" in err and "--force" in err
        assert sum(amplitude.requests.values()) == 0
    assert not (tmp_path / "ledger").exists()


def test_hours_not_exportable_yet_are_never_fetched_and_stay_pending(tmp_path):
    # Before: with --force (or a range ending near now) they were fetched, recorded empty and
    # never fetched again.
    ready, early = _hour(-4), hour_range(_hour(-2), _hour(1))
    amplitude, posthog = _servers({ready: 5})
    with amplitude, posthog:
        code, out, err = run_cli(*_args(ready, early[-1], tmp_path, amplitude, posthog,
                                        "--force"))
        assert code == HOURS_PENDING, err[-2000:]
        assert all(amplitude.request_count(h) == 0 for h in early)
        assert amplitude.request_count(ready) == 1
        assert "not exportable" in err and "pending" in err
    records = ledger.read_records(str(tmp_path))
    assert records[ready]["status"] == "done"
    assert not set(early) & set(records)


def test_an_hour_recorded_empty_too_soon_after_it_ended_is_fetched_again(tmp_path):
    # Before: a later run skipped every empty hour, even one fetched as soon as it was
    # exportable, when Amplitude may not have had its rows yet.
    done_hour, early_empty, late_empty = "20240305T09", "20240305T10", "20240305T11"
    amplitude, posthog = _servers({done_hour: 2, early_empty: 4})
    with amplitude, posthog:
        job = jobs.Job(start=done_hour, end=late_empty, job_name="recheck",
                       work_dir=str(tmp_path), amplitude_url=amplitude.url,
                       posthog_host=posthog.url)
        jobs.save(job)
        ledger.write_record(job.work_dir, done_hour, "done",
                            {"rows_read": 2, "events": 2, "events_sent": 2},
                            fetched_after="2024-03-05T12:00:00Z")
        ledger.write_record(job.work_dir, early_empty, EMPTY, {"rows_read": 0},
                            fetched_after="2024-03-05T13:05:00Z")  # 2 h after it ended
        ledger.write_record(job.work_dir, late_empty, EMPTY, {"rows_read": 0},
                            fetched_after="2024-03-08T00:00:00Z")
        code, _, err = run_cli("--work_dir", str(tmp_path))
        assert code == 0, err[-2000:]
        assert amplitude.request_count(early_empty) == 1
        assert amplitude.request_count(done_hour) == amplitude.request_count(late_empty) == 0
    records = ledger.read_records(str(tmp_path))
    assert records[early_empty]["status"] == "done"
    assert records[early_empty]["counts"]["events_sent"] == 4


def test_a_run_where_every_hour_came_back_empty_fails_loudly_unless_confirmed(tmp_path):
    # Before: a wrong --amplitude_url answering 404 made every hour empty with exit 0.
    start, end = "20240306T00", "20240306T02"
    amplitude, posthog = _servers({"20240101T00": 3})
    with amplitude, posthog:
        code, _, err = run_cli(*_args(start, end, tmp_path, amplitude, posthog))
        assert code == ALL_EMPTY, err[-2000:]
        assert "every" in err and "empty" in err and "--accept_empty" in err
        # Rerun: the job is still all empty, still not confirmed.
        code, _, err = run_cli("--work_dir", str(tmp_path))
        assert code == ALL_EMPTY, err[-2000:]
        code, _, err = run_cli("--work_dir", str(tmp_path), "--accept_empty")
        assert code == 0, err[-2000:]
    stored = orjson.loads((tmp_path / "job.json").read_bytes())
    assert "accept_empty" not in stored  # a per-run confirmation


def test_limit_hours_leaving_hours_pending_has_its_own_exit_code(tmp_path):
    # Before: it exited 0, which the README says means every hour is done or empty.
    hours = hour_range("20240307T00", "20240307T02")
    amplitude, posthog = _servers({h: 2 for h in hours})
    with amplitude, posthog:
        code, _, err = run_cli(*_args(hours[0], hours[-1], tmp_path, amplitude, posthog,
                                      "--limit_hours", "2"))
        assert code == HOURS_PENDING, err[-2000:]
        assert "1 hour" in err and "--limit_hours" in err
        code, _, err = run_cli("--work_dir", str(tmp_path))
        assert code == 0, err[-2000:]
    records = ledger.read_records(str(tmp_path))
    assert [records[h]["status"] for h in hours] == ["done"] * 3
    assert sum(records[h]["counts"]["rows_read"] for h in hours) == 6
