"""Commands that rewrite the report without running the job keep the last run's times."""

from pipeline import job as jobs
from pipeline.report import build_report, write_report


def test_a_report_rebuilt_without_a_run_keeps_the_last_runs_times(tmp_path):
    job = jobs.from_settings({"start": "20240101T00", "end": "20240101T01", "job_name": "j",
                              "work_dir": str(tmp_path / "job")})
    hours = ["20240101T00", "20240101T01"]
    assert build_report(job, hours)["started_at"] is None  # no run yet
    write_report(job, build_report(job, hours, "2024-06-02T09:14:03Z", "2024-06-02T10:00:00Z"))
    rebuilt = build_report(job, hours)  # as status, resend and verify build it
    assert (rebuilt["started_at"], rebuilt["finished_at"]) == ("2024-06-02T09:14:03Z",
                                                               "2024-06-02T10:00:00Z")
    later = build_report(job, hours, "2024-06-03T08:00:00Z", "2024-06-03T08:30:00Z")
    assert later["started_at"] == "2024-06-03T08:00:00Z"  # a new run's own times win
