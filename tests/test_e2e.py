"""The real CLI against both sandbox servers over loopback, with faults on both sides."""

import signal
import time

import fastavro
import pytest

from sandbox.amplitude import Fault
from tests.e2e import (KEYS, assert_reconciled, cli, cli_args, make_export, report, run_cli,
                       servers)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def export():
    return make_export(rows=3000, start="20240305T00", hours=48, seed=11)


def test_migration_with_faults_then_rerun_sends_nothing(export, tmp_path):
    expected = export.expected()
    amplitude, posthog = servers(export, fault_rate=0.15, retry_after="0", seed=3)
    amplitude.add_faults(Fault(status=503, retry_after="0"), Fault(truncate=True),
                         Fault(drop=True), Fault(status=429, retry_after="0"),
                         Fault(corrupt=True))
    with amplitude, posthog:
        code, out, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path))
        assert code == 0, err[-3000:]
        received = {e["uuid"] for e in posthog.events}
        assert received == set(expected), (len(received - set(expected)),
                                           len(set(expected) - received))
        rep = report(tmp_path)
        assert_reconciled(rep)
        assert rep["rows_read"] == len(export.rows)
        assert rep["hours"]["done"] + rep["hours"]["empty"] == len(export.hours)
        assert rep["generated_events_sent"]["$identify"] == sum(
            1 for e in expected.values() if e["event"] == "$identify")
        assert "Rows read" in out
        for secret in KEYS.values():
            assert secret not in out + err

        requests_before = posthog.requests
        code, out, err = run_cli("--work_dir", str(tmp_path))
        assert code == 0, err[-3000:]
        assert posthog.requests == requests_before  # nothing new sent
        assert_reconciled(report(tmp_path))


def test_killed_run_resumes_without_loss(export, tmp_path):
    expected = export.expected()
    amplitude, posthog = servers(export)
    # Slow hours keep the run going long enough to be killed part-way.
    for hour in export.hours[10:]:
        amplitude.add_faults(Fault(slow=0.4), hour=hour)
    with amplitude, posthog:
        proc = cli(*cli_args(export, amplitude, posthog, tmp_path))
        deadline = time.monotonic() + 120
        ledger = tmp_path / "ledger"
        while time.monotonic() < deadline:
            if ledger.exists() and len(list(ledger.glob("*.json"))) >= 5:
                break
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        done_before = len(list(ledger.glob("*.json")))
        assert 5 <= done_before < len(export.hours)

        amplitude.clear_faults()
        code, out, err = run_cli("--work_dir", str(tmp_path))
        assert code == 0, err[-3000:]
        assert {e["uuid"] for e in posthog.events} == set(expected)
        rep = report(tmp_path)
        assert_reconciled(rep)
        assert rep["rows_read"] == len(export.rows)


def test_delivery_failures_then_status_and_resend(tmp_path):
    export = make_export(rows=400, start="20240310T00", hours=3, seed=5)
    expected = export.expected()
    amplitude, posthog = servers(export, fault_rate=1.0, fault_kinds=(503,), retry_after="0")
    with amplitude, posthog:
        code, out, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path,
                                           "--max_retry_seconds", "0.5"))
        assert code == 3, err[-3000:]
        assert "resend" in err
        rep = report(tmp_path)
        assert_reconciled(rep)
        assert rep["rows_dead_lettered"]["delivery_failed"] > 0

        code, out, _ = run_cli("status", "--work_dir", str(tmp_path))
        assert code == 0 and "delivery_failed" in out

        posthog.fault_rate = 0.0
        code, out, err = run_cli("resend", "--work_dir", str(tmp_path))
        assert code == 0, err[-3000:]
        assert {e["uuid"] for e in posthog.events} == set(expected)
        rep = report(tmp_path)
        assert "delivery_failed" not in rep["rows_dead_lettered"]
        assert_reconciled(rep)
        for letters in (tmp_path / "dead_letter").glob("*.jsonl"):
            assert b"delivery_failed" not in letters.read_bytes()


def test_dry_run_sends_nothing_and_writes_avro(tmp_path):
    export = make_export(rows=300, start="20240311T00", hours=2, seed=6)
    expected = export.expected()
    amplitude, posthog = servers(export)
    with amplitude, posthog:
        code, out, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path, "--dry_run"))
        assert code == 0, err[-3000:]
        assert posthog.requests == 0
    uuids = set()
    for path in (tmp_path / "translated").rglob("*.avro"):
        with open(path, "rb") as handle:
            uuids.update(record["uuid"] for record in fastavro.reader(handle))
    assert uuids == set(expected)
    assert not (tmp_path / "ledger").exists()  # a dry run marks no hour as sent


def test_wrong_posthog_key_stops_the_run(tmp_path):
    export = make_export(rows=100, start="20240312T00", hours=1, seed=7)
    amplitude, posthog = servers(export)
    with amplitude, posthog:
        code, out, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path),
                                 env={"POSTHOG_API_KEY": "phc_wrong_key_999"})
    assert code == 1
    assert "--posthog_api_key" in err and "phc_wrong_key_999" not in out + err
    assert "Traceback" not in err.splitlines()[-1]
