"""When the job's generated events are sent, and what a generated event no rerun can deliver does."""

import orjson
import pytest

from pipeline.console import HOURS_PENDING
from tests.e2e import Export, cli_args, report, run_cli, servers
from tests.people_rows import person, row
from tests.test_groups_persons import shuffled_export

pytestmark = pytest.mark.timeout(300)

HOUR = "20240305T10"


def _generated(events):
    return [e for e in events if e["properties"].get("$lib") == "aplistorical"]


def test_generated_events_wait_until_every_hour_of_the_job_is_done(tmp_path):
    # A run that leaves hours to do sends none: their timestamps (the earliest pair, the latest
    # event) would move once the other hours came, and PostHog keys duplicates by date.
    export = shuffled_export(seed=11)
    expected = export.expected()
    amplitude, posthog = servers(export)
    with amplitude, posthog:
        code, _, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path,
                                         "--limit_hours", "1"))
        assert code == HOURS_PENDING, err[-3000:]
        assert _generated(posthog.events) == []
        assert not (tmp_path / "ledger" / "generated.json").exists()
        assert report(tmp_path)["generated_events_sent"] == {}
        code, _, err = run_cli("--work_dir", str(tmp_path))
        assert code == 0, err[-3000:]
        events = list(posthog.events)
        assert posthog.duplicates == 0
    assert sorted(e["uuid"] for e in events) == sorted(expected)
    assert orjson.loads((tmp_path / "ledger" / "generated.json").read_bytes())["status"] == "done"

    # A straight run of the same job sends the same generated events, uuids and all.
    straight = tmp_path / "straight"
    amplitude, posthog = servers(export)
    with amplitude, posthog:
        code, _, err = run_cli(*cli_args(export, amplitude, posthog, straight))
        assert code == 0, err[-3000:]
        straight_events = list(posthog.events)
    by_uuid = {e["uuid"]: e for e in _generated(straight_events)}
    assert {e["uuid"]: e for e in _generated(events)} == by_uuid
    assert len(by_uuid) == 13


def test_a_generated_event_posthog_cannot_take_is_a_dead_letter_not_a_failed_job(tmp_path):
    # A person whose properties are over PostHog's 1 MB event limit: its own event and its
    # snapshot are dead letters (event_too_large); no rerun can change that.
    big = row("2024-03-05 10:00:00", user="big", device="big-device",
              user_properties=person("free", blob="x" * 1_100_000))
    export = Export(HOUR, HOUR, [(HOUR, big), (HOUR, row("2024-03-05 10:01:00"))])
    amplitude, posthog = servers(export)
    with amplitude, posthog:
        code, out, err = run_cli(*cli_args(export, amplitude, posthog, tmp_path))
        assert code == 0, (out + err)[-3000:]
        rep = report(tmp_path)
        assert rep["status"] == "complete"
        assert rep["generated_events_failed"] == {"event_too_large": 1}
        assert rep["rows_dead_lettered"] == {"event_too_large": 1}
        letters = (tmp_path / "dead_letter" / "generated.jsonl").read_bytes().splitlines()
        assert [orjson.loads(l)["reason"] for l in letters] == ["event_too_large"]
        requests = posthog.requests
        code, _, err = run_cli("--work_dir", str(tmp_path))
        assert code == 0, err[-3000:]
        assert posthog.requests == requests  # nothing left to do
