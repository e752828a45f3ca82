"""``verify`` through the real CLI against the sandbox PostHog's query API."""

import threading
import time
import uuid

import orjson
import pytest
import requests

from sandbox.hogql import DEFAULT_RETURNED_ROWS
from sandbox.persons import PersonModel
from tests.e2e import KEYS, cli_args, make_export, run_cli, servers

pytestmark = pytest.mark.timeout(600)
PERSONAL = "phx_e2e_personal_key_4714"
ENV = {"POSTHOG_PERSONAL_API_KEY": PERSONAL}
JOB = "verify-e2e"


@pytest.fixture(scope="module")
def export():
    return make_export(rows=1500, start="20240305T00", hours=48, seed=5)


def _verify(work_dir, *extra, env=ENV):
    return run_cli("verify", "--work_dir", str(work_dir), "--posthog_project_id", "1", *extra,
                   env=env)


def _days_short(posthog) -> list[str]:
    """Days on which PostHog lacks a uuid it answered 200 for (its count is per day)."""
    kept = {(e["uuid"], e["timestamp"][:10]) for e in posthog.events}
    return sorted({e["timestamp"][:10] for e in posthog.dropped_events
                   if (e["uuid"], e["timestamp"][:10]) not in kept})


def _show_after_next_query(posthog, timeout: float = 120) -> None:
    """Makes every event visible once the next query has been answered (without them)."""
    seen, deadline = len(posthog.query_log), time.monotonic() + timeout
    while time.monotonic() < deadline and not (
            len(posthog.query_log) > seen and posthog.query_log[seen]["status"] is not None):
        time.sleep(0.05)
    posthog.store.visible_after_seconds = 0


def test_clean_migration_verifies_after_posthog_shows_it(export, tmp_path):
    expected = export.expected()
    amplitude, posthog = servers(export, personal_api_key=PERSONAL, visible_after_seconds=3600)
    with amplitude, posthog:
        code, _, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path),
                               "--job_name", JOB)
        assert code == 0, err[-3000:]
        assert {e["uuid"] for e in posthog.events} == set(expected)
        assert all(e["properties"]["$import_job_id"] == JOB for e in posthog.events)
        assert {e["event"] for e in posthog.events} >= {"$identify", "$set"}

        wrong = "phx_wrong_personal_key_9999"
        code, out, err = _verify(tmp_path, env={"POSTHOG_PERSONAL_API_KEY": wrong})
        assert code == 1 and "--posthog_personal_api_key" in err
        assert wrong not in out + err and not (tmp_path / "verify.json").exists()

        # Nothing is visible yet: every day is short, and the message says how to repair.
        code, out, err = _verify(tmp_path, "--persons", "0")
        assert code == 3, err[-3000:]
        assert "acknowledged at" in out and "--repair" in err

        # PostHog catches up while verify waits: its first check is short, a later one matches.
        threading.Thread(target=_show_after_next_query, args=(posthog,), daemon=True).start()
        code, out, err = _verify(tmp_path, "--persons", "100000", "--wait_minutes", "1")
        assert code == 0, out + err[-3000:]
        result = orjson.loads((tmp_path / "verify.json").read_bytes())
        assert result["short_days"] == [] and result["checks"] >= 2
        assert result["events_sent"] == result["uuids_found"] == len(expected)
        assert "Verified in PostHog" in run_cli("status", "--work_dir", str(tmp_path))[1]
        assert "Verified in PostHog" in (tmp_path / "report.html").read_text()
        for secret in (*KEYS.values(), PERSONAL):
            assert secret not in out + err
            assert secret not in (tmp_path / "verify.json").read_text()

        # Persons: plant a property value the job's snapshot does not hold.
        before = result["persons"]
        # A clean migration leaves every checked person as the job's snapshot says; there are
        # more of them than PostHog returns from a query that names no LIMIT.
        assert before["checked"] > DEFAULT_RETURNED_ROWS and before["mismatches"] == []
        snapshot = next(e for e in reversed(posthog.events)
                        if e["event"] == "$set" and e["properties"].get("$set"))
        user = snapshot["distinct_id"]
        name, value = sorted(snapshot["properties"]["$set"].items())[0]
        planted = {"event": "$set", "distinct_id": user, "uuid": str(uuid.uuid4()),
                   "properties": {"$set": {name: "planted-value"}}}
        assert requests.post(f"{posthog.url}/batch/", json={
            "api_key": KEYS["POSTHOG_API_KEY"], "batch": [planted]}).status_code == 200
        code, _, err = _verify(tmp_path, "--persons", "100000")
        assert code == 0, err[-3000:]
        after = orjson.loads((tmp_path / "verify.json").read_bytes())["persons"]
        assert after["checked"] == before["checked"] > 0
        # The snapshot goes to every distinct_id of a person, in no fixed order of arrival, so the
        # planted id may be a device: verify names the person by the id it picked for it.
        model = PersonModel()
        for event in posthog.events:
            model.ingest(event)
        ids = model.person(user).distinct_ids
        found = [m for m in after["mismatches"] if m["distinct_id"] in ids and m["property"] == name]
        assert found == [{"distinct_id": found[0]["distinct_id"], "property": name,
                          "expected": value, "found": "planted-value"}]
        assert after["mismatches"] == found


def test_silent_loss_is_found_and_repaired(export, tmp_path):
    expected = export.expected()
    # Over its quota PostHog answers 200 and keeps nothing: the later days lose events.
    amplitude, posthog = servers(export, personal_api_key=PERSONAL,
                                 quota=int(len(expected) * 0.6))
    with amplitude, posthog:
        code, _, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path),
                               "--job_name", JOB, "--preserve_sources")
        assert code == 0, err[-3000:]  # every batch was answered 200
        assert posthog.stats()["silently_dropped"] > 0
        short = _days_short(posthog)
        assert short

        code, out, err = _verify(tmp_path, "--persons", "0")
        assert code == 3, err[-3000:]
        result = orjson.loads((tmp_path / "verify.json").read_bytes())
        assert result["short_days"] == short
        assert all(day in err for day in short)

        posthog.quota = None  # the user lifts the billing limit, then repairs
        code, out, err = _verify(tmp_path, "--persons", "0", "--repair")
        assert code == 0, out + err[-3000:]
        result = orjson.loads((tmp_path / "verify.json").read_bytes())
        assert result["repair"]["short_days"] == short and result["short_days"] == []
        assert set(posthog.store.uuids()) == set(expected)
        posthog.store.merge()  # ClickHouse merges the re-sent duplicates in time
        assert set(posthog.store.uuids().values()) == {1}
        history = orjson.loads((tmp_path / "ledger" / "repairs.json").read_bytes())["history"]
        assert history[-1]["hours"] and history[-1]["source"] == "preserved exports"
        assert "Repairs" in (tmp_path / "report.html").read_text()
