"""The same job on the runners and storage it meets off this machine, as far as it can run here.

Each end-to-end test runs the real CLI in a subprocess against both sandbox servers and checks
that PostHog received exactly the expected events and that the report reconciles:

- DirectRunner with worker processes: DoFns, their arguments and elements are pickled into other
  processes, so anything a DoFn takes from a module global set by the launcher is missing there;
- PortableRunner with an in-process job service and a loopback worker: the Runner API path that
  Flink and Dataflow Runner v2 take (Prism, Flink and Spark need a download and cannot run here);
- gs:// for --work_dir, --preserve_sources and --source_path, against a local GCS emulator.
"""

from __future__ import annotations

import os

import orjson
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from connectors.files import read_bytes
from pipeline import job as jobs
from pipeline.cli import OK, migrate, submits_only
from pipeline.options import parse_flags
from tests.e2e import (KEYS, assert_reconciled, cli_args, make_export, report, run_cli,
                       servers)
from tests.gcs_emulator import gcs_bucket  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def export():
    # Hours on two days: the Amplitude source reads a day per element, so two worker processes
    # each get one.
    return make_export(rows=300, start="20240305T22", hours=4, seed=7)


def _migrate_and_check(export, work_dir, *extra: str, env: dict | None = None) -> dict:
    """Runs one job against fresh servers; returns its report after checking what PostHog got."""
    expected = export.expected()
    amplitude, posthog = servers(export)
    with amplitude, posthog:
        code, out, err = run_cli(*cli_args(export, amplitude, posthog, work_dir), *extra,
                                 env=env)
        assert code == 0, err[-3000:]
        assert {e["uuid"] for e in posthog.events} == set(expected)
        assert len(posthog.events) == len(expected)  # each event sent once
    rep = report(work_dir)
    assert_reconciled(rep)
    assert rep["rows_read"] == len(export.rows)
    assert rep["hours"]["done"] + rep["hours"]["empty"] == len(export.hours)
    for secret in KEYS.values():
        assert secret not in out + err
    return rep


def test_direct_runner_with_worker_processes(export, tmp_path):
    _migrate_and_check(export, tmp_path, "--direct_running_mode=multi_processing",
                       "--direct_num_workers=2")


def test_portable_runner_with_a_loopback_worker(export, tmp_path):
    _migrate_and_check(export, tmp_path, "--runner", "PortableRunner", "--job_endpoint=embed",
                       "--environment_type=LOOPBACK")


def test_cloud_storage_paths_for_the_job_its_archives_and_replayed_files(export, gcs_bucket):
    # The CLI subprocess reaches the emulator that this process started.
    env = {"STORAGE_EMULATOR_HOST": os.environ["STORAGE_EMULATOR_HOST"]}
    expected = export.expected()
    downloaded = f"{gcs_bucket}/portability/downloaded"
    amplitude, posthog = servers(export)
    with amplitude, posthog:
        code, _, err = run_cli(*cli_args(export, amplitude, posthog, downloaded),
                               "--preserve_sources", env=env)
        assert code == 0, err[-3000:]
        assert {e["uuid"] for e in posthog.events} == set(expected)
    # Progress lines reach the terminal with a gs:// work_dir too.
    assert "hours to migrate" in err and "hour 20240305T22 done" in err
    assert_reconciled(orjson.loads(read_bytes(f"{downloaded}/report.json")))
    archives = FileSystems.match([f"{downloaded}/exports/*.zip"])[0].metadata_list
    assert sorted(m.path.rsplit("/", 1)[1] for m in archives) == \
        [f"{hour}.zip" for hour in export.hours]

    # The archives replay as a files source into a second job, also on gs://.
    replayed = f"{gcs_bucket}/portability/replayed"
    _, posthog = servers(export)
    with posthog:
        code, _, err = run_cli("--start", export.start, "--end", export.end,
                               "--work_dir", replayed, "--source", "files",
                               "--source_path", f"{downloaded}/exports/*.zip",
                               "--posthog_host", posthog.url, env=env)
        assert code == 0, err[-3000:]
        assert {e["uuid"] for e in posthog.events} == set(expected)
        assert len(posthog.events) == len(expected)
    rep = orjson.loads(read_bytes(f"{replayed}/report.json"))
    assert_reconciled(rep)
    assert rep["rows_read"] == len(export.rows)


# --- runners that only submit ----------------------------------------------------------------


@pytest.mark.parametrize("argv, submits", [
    ([], False),
    (["--runner=DirectRunner", "--direct_running_mode=multi_processing"], False),
    (["--runner", "PortableRunner", "--job_endpoint=localhost:8099"], False),
    (["--runner=FlinkRunner"], False),
    (["--runner=TestDataflowRunner"], False),  # waits for the job itself
    (["--runner=DataflowRunner"], True),
    (["--runner", "dataflow"], True),
    (["--runner=apache_beam.runners.dataflow.dataflow_runner.DataflowRunner"], True),
    # What the Flex Template launcher adds to the launch's parameters.
    (["--runner=DataflowRunner",
      "--template_location=gs://b/staging/template_launches/2024-01-01_00_00_00-1/job_object"],
     True),
])
def test_which_runs_only_submit(argv, submits):
    assert submits_only(PipelineOptions(argv)) is submits


def test_a_submitted_job_returns_at_once_without_a_report(tmp_path, capsys):
    # Beam's own dry run builds the Dataflow job and stops before anything leaves the machine,
    # so this goes through the same branch as a real submission or a template launch.
    given, beam_args = parse_flags([
        "--start", "20240101T00", "--end", "20240101T05", "--work_dir", str(tmp_path),
        "--posthog_host", "https://eu.i.posthog.com", "--runner=DataflowRunner",
        "--project=test-project", "--region=europe-west1",
        "--temp_location=gs://test-bucket/tmp", "--max_num_workers=4"])
    job, secrets = jobs.resolve(given, environ=KEYS)
    # --max_num_workers bounds the workers that share PostHog Cloud's default pace.
    assert migrate(job, secrets, [*beam_args, "--dry_run=True"]) == OK
    out = capsys.readouterr().out
    assert "6 of 6 hours" in out and f"status --work_dir {tmp_path}" in out
    assert (tmp_path / jobs.JOB_FILE).exists()  # the job is known, so status can follow it
    assert not (tmp_path / "report.json").exists() and not (tmp_path / "ledger").exists()
