"""The local run's default DirectRunner mode, and Ctrl-C, through the real CLI."""

from __future__ import annotations

import logging
import os
import signal
import time

import pytest

from connectors.amplitude import elements_for
from pipeline.local_mode import local_worker_args
from sandbox.amplitude import Fault
from tests.e2e import assert_reconciled, cli, cli_args, make_export, report, run_cli, servers

pytestmark = pytest.mark.timeout(300)
MULTI = ["--direct_running_mode=multi_processing"]


@pytest.mark.parametrize("beam_args, units, cores, expected", [
    ([], 24, 2, MULTI + ["--direct_num_workers=2"]),  # no --runner: Beam's default, the direct one
    (["--runner", "DirectRunner"], 24, 8, MULTI + ["--direct_num_workers=8"]),
    (["--runner=direct"], 3, 8, MULTI + ["--direct_num_workers=3"]),  # a worker per unit at most
    (["--runner", "DirectRunner"], 1, 8, []),  # one unit: in process starts sooner
    (["--runner", "DirectRunner"], 24, 1, []),  # one core
    (["--runner", "DirectRunner", "--direct_num_workers", "1"], 24, 8, []),  # the user's choice
    (["--runner", "DirectRunner", "--direct_running_mode=in_memory"], 24, 8, []),
    (["--runner", "PortableRunner", "--job_endpoint=embed"], 24, 8, []),
    (["--runner=DataflowRunner"], 24, 8, []),
])
def test_local_worker_args(beam_args, units, cores, expected):
    assert local_worker_args(beam_args, units, cores) == expected


def test_the_export_api_source_makes_a_unit_of_work_per_24_hours():
    assert [elements_for(hours) for hours in (0, 1, 24, 25, 48, 49)] == [0, 1, 1, 2, 2, 3]


def test_worker_lines_from_beam_itself_are_dropped_and_the_migrations_kept():
    from pipeline.console import _not_from_beam_itself  # pylint: disable=import-outside-toplevel

    def forwarded(location):
        return logging.LogRecord("apache_beam.runners.portability.local_job_service",
                                 logging.WARNING, __file__, 1, "Worker: %s", (
                                     f'severity: WARN message: "x" log_location: "{location}"',),
                                 None)

    assert not _not_from_beam_itself(forwarded("/venv/site-packages/apache_beam/x.py:570"))
    assert _not_from_beam_itself(forwarded("/app/connectors/amplitude.py:141"))


@pytest.fixture(scope="module")
def export():
    # 26 hours: two elements of the Export API source, so two worker processes get work.
    return make_export(rows=300, start="20240305T22", hours=26, seed=11)


def test_default_local_mode_runs_worker_processes_and_reports(export, tmp_path):
    expected = export.expected()
    amplitude, posthog = servers(export)
    with amplitude, posthog:
        code, out, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path),
                                 "--runner", "DirectRunner")
        assert code == 0, err[-3000:]
        assert {e["uuid"] for e in posthog.events} == set(expected)
        assert len(posthog.events) == len(expected)
    workers = min(len(os.sched_getaffinity(0)), elements_for(len(export.hours)))
    if workers >= 2:
        assert (f"running locally with --direct_running_mode=multi_processing "
                f"--direct_num_workers={workers}") in err
    # The progress log, fed from the ledger, saw every hour.
    total = len(export.hours)
    assert f"({total}/{total} hours)" in err
    rep = report(tmp_path)
    assert_reconciled(rep)
    assert rep["hours"]["done"] + rep["hours"]["empty"] == len(export.hours)
    assert "Report:" in out


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("mode", [[], ["--direct_running_mode=in_memory"]],
                         ids=["default", "in_process"])
def test_ctrl_c_stops_a_run_and_a_rerun_resumes(export, tmp_path, mode):
    expected = export.expected()
    amplitude, posthog = servers(export)
    # Slow hours keep the run going long enough to be interrupted part-way.
    for hour in export.hours[1:]:
        amplitude.add_faults(Fault(slow=1.5), hour=hour)
    with amplitude, posthog:
        proc = cli(*cli_args(export, amplitude, posthog, tmp_path), "--runner", "DirectRunner",
                   *mode, start_new_session=True)
        deadline = time.monotonic() + 120
        ledger = tmp_path / "ledger"
        while time.monotonic() < deadline and proc.poll() is None:
            if ledger.exists() and any(p.suffix == ".json" for p in ledger.iterdir()):
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        # A terminal's Ctrl-C reaches every process of the foreground group.
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err[-3000:]
        # Beam's worker processes print their own KeyboardInterrupt; the launcher says one thing.
        assert "Interrupted. Hours committed so far stay done" in err, err[-3000:]
        assert "error: the run failed" not in err
        # No worker process is left behind: the group empties once they have exited.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _group_alive(proc.pid):
            time.sleep(0.1)
        assert not _group_alive(proc.pid), "a worker process outlived the interrupted run"

        amplitude.clear_faults()
        code, out, err = run_cli("--work_dir", str(tmp_path))
        assert code == 0, err[-3000:]
        assert {e["uuid"] for e in posthog.events} == set(expected)
    assert_reconciled(report(tmp_path))
