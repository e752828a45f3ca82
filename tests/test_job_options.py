"""Flags, job.json and resume rules: every bad value names its flag and exits 2 before running."""

import os

import orjson
import pytest

from pipeline import job as jobs
from pipeline.cli import USAGE, run
from pipeline.options import UsageError, parse_flags

KEYS = {"AMPLITUDE_API_KEY": "amp-key", "AMPLITUDE_SECRET_KEY": "amp-secret",
        "POSTHOG_API_KEY": "phc-key"}


def resolve(argv, environ=KEYS):
    given, _ = parse_flags(argv)
    return jobs.resolve(given, environ)


def test_defaults_and_hour_formats(tmp_path):
    job, secrets = resolve(["--start", "2024-01-01T00", "--end", "20240102T05",
                            "--work_dir", str(tmp_path)])
    assert (job.start, job.end) == ("20240101T00", "20240102T05")
    assert job.batch_size == 1000 and job.posthog_host == "https://us.i.posthog.com"
    assert job.user_properties_mode == "set" and job.group_identify and job.person_snapshot
    assert job.job_name == "amplitude-20240101T00-20240102T05"
    assert secrets.posthog_api_key == "phc-key"
    assert "phc-key" not in repr(secrets)


def test_default_work_dir_uses_job_name():
    job, _ = resolve(["--start", "20240101T00", "--end", "20240101T01", "--job_name", "acme"])
    assert job.work_dir == os.path.join("migrations", "acme")


@pytest.mark.parametrize("argv, flag", [
    (["--start", "2024-13-01T00", "--end", "20240101T00"], "--start"),
    (["--start", "20240101T05", "--end", "20240101T01"], "--end"),
    (["--start", "20240101T00", "--end", "20240101T01", "--batch_size", "0"], "--batch_size"),
    (["--start", "20240101T00", "--end", "20240101T01", "--posthog_host", "ftp://x"],
     "--posthog_host"),
    (["--start", "20240101T00", "--end", "20240101T01", "--rename_event", "nope"],
     "--rename_event"),
    (["--start", "20240101T00", "--end", "20240101T01", "--source", "files"], "--source_path"),
    (["--start", "20240101T00", "--end", "20240101T01", "--sleep_interval_ms", "-1"],
     "--sleep_interval_ms"),
    (["--start", "20240101T00", "--end", "20240101T01", "--batchsize", "5"], "--batchsize"),
])
def test_bad_values_name_their_flag(argv, flag, tmp_path):
    with pytest.raises(UsageError) as err:
        resolve(argv + ["--work_dir", str(tmp_path)])
    assert str(err.value).startswith(flag)


def test_missing_keys_name_the_flag(tmp_path):
    with pytest.raises(UsageError, match="^--posthog_api_key"):
        resolve(["--start", "20240101T00", "--end", "20240101T00", "--work_dir", str(tmp_path)],
                environ={"AMPLITUDE_API_KEY": "a", "AMPLITUDE_SECRET_KEY": "b"})
    with pytest.raises(UsageError, match="^--amplitude_api_key"):
        resolve(["--start", "20240101T00", "--end", "20240101T00", "--work_dir", str(tmp_path)],
                environ={"POSTHOG_API_KEY": "p"})


def test_cli_exits_2_with_one_line(tmp_path, capsys):
    code = run(["--start", "yesterday", "--end", "20240101T00", "--work_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == USAGE and len(err) == 1 and err[0].startswith("error: --start:")
    assert not os.listdir(tmp_path)  # nothing ran, nothing written


def test_rerun_with_only_work_dir_resumes_stored_settings(tmp_path):
    job, _ = resolve(["--start", "20240101T00", "--end", "20240101T03", "--work_dir",
                      str(tmp_path), "--batch_size", "250", "--ignore_event", "Noise",
                      "--posthog_api_key", "phc-typed"])
    jobs.save(job)
    stored = orjson.loads((tmp_path / "job.json").read_bytes())
    assert "phc-typed" not in (tmp_path / "job.json").read_text()
    assert stored["secrets_from_environment"]["posthog_api_key"] == "POSTHOG_API_KEY"
    resumed, _ = resolve(["--work_dir", str(tmp_path)])
    assert resumed == job and resumed.ignore_event == ("Noise",)


def test_conflicting_range_is_refused_unless_forced(tmp_path):
    job, _ = resolve(["--start", "20240101T00", "--end", "20240101T03",
                      "--work_dir", str(tmp_path)])
    jobs.save(job)
    with pytest.raises(UsageError, match="^--end: differs from this job's job.json"):
        resolve(["--work_dir", str(tmp_path), "--end", "20240101T09"])
    forced, _ = resolve(["--work_dir", str(tmp_path), "--end", "20240101T09", "--force"])
    assert forced.end == "20240101T09"
    # Settings that do not change which rows the job covers may change on a rerun.
    faster, _ = resolve(["--work_dir", str(tmp_path), "--batch_size", "50"])
    assert faster.batch_size == 50


def test_our_flags_never_reach_beam():
    given, beam_args = parse_flags(["--start", "20240101T00", "--dry_run", "--job_name", "x",
                                    "--posthog_api_key", "secret", "--runner", "DirectRunner",
                                    "--direct_num_workers", "2"])
    assert beam_args == ["--runner", "DirectRunner", "--direct_num_workers", "2"]
    assert given["dry_run"] is True and given["job_name"] == "x"


def test_switches_take_true_false_values_as_template_launchers_pass_them():
    given, _ = parse_flags(["--dry_run=false", "--preserve_sources=true", "--force",
                            "--no_group_identify"])
    assert (given["dry_run"], given["preserve_sources"], given["force"]) == (False, True, True)
    assert given["group_identify"] is False
    with pytest.raises(UsageError, match="^--force: expected true or false"):
        parse_flags(["--force=maybe"])
    with pytest.raises(UsageError, match="^--batch_size: invalid int value"):
        parse_flags(["--batch_size", "many"])
