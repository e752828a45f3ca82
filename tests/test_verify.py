"""``verify`` in process on a hand-made job folder, against the sandbox PostHog's query API."""

import argparse
from pathlib import Path

import orjson
import pytest

from pipeline import job as jobs
from pipeline import verify as verify_module
from pipeline.ledger import DEAD_LETTER, FACTS, GENERATED, hour_path, write_dead_letters, write_record
from pipeline.options import UsageError
from pipeline.verify_compare import count_query, day_ranges, halves
from pipeline.verify_options import VerifyOptions, parse_verify
from pipeline.verify_persons import persons_query
from sandbox.posthog import PostHogCaptureServer
from sandbox.posthog_query_api import MALFORMED
from transforms.records import DeadLetter

KEY, PERSONAL, JOB = "phc_unit", "phx_unit_personal", "unit-job"


def _event(n: int, day: str, name: str = "a", job: str = JOB) -> dict:
    return {"event": name, "distinct_id": f"u{n}", "uuid": f"00000000-0000-4000-8000-{n:012d}",
            "timestamp": f"{day}T12:00:00.000000Z", "properties": {"$import_job_id": job}}


# What the job sent: 2024-02-29 one "a"; 2024-03-01 four "a" and one "$identify".
SENT = [_event(1, "2024-02-29"), *(_event(n, "2024-03-01") for n in range(2, 6)),
        _event(6, "2024-03-01", "$identify")]


def _facts(work_dir, hour, days, names):
    path = hour_path(str(work_dir), FACTS, hour)
    (work_dir / FACTS).mkdir(exist_ok=True)
    with open(path, "wb") as out:
        out.write(orjson.dumps({"days": {d: {"rows": n, "events": n} for d, n in days.items()},
                                "event_names": names}))


@pytest.fixture
def server():
    with PostHogCaptureServer(KEY, personal_api_key=PERSONAL) as srv:
        yield srv


@pytest.fixture
def work_dir(tmp_path, server):
    jobs.save(jobs.Job(start="20240301T00", end="20240301T01", job_name=JOB,
                       work_dir=str(tmp_path), posthog_host=server.url, source="files",
                       source_path="unused"))
    state = str(tmp_path)
    _facts(tmp_path, "20240301T00", {"2024-03-01": 3}, {"a": 3})
    write_record(state, "20240301T00", "done", {"events": 3, "events_sent": 3})
    # The second hour made three events, one of which PostHog never acknowledged.
    _facts(tmp_path, "20240301T01", {"2024-02-29": 1, "2024-03-01": 2}, {"a": 3})
    (tmp_path / DEAD_LETTER).mkdir()
    write_dead_letters(hour_path(state, DEAD_LETTER, "20240301T01"), [DeadLetter(
        "delivery_failed", "deliver", "20240301T01", None, None, _event(99, "2024-03-01"))])
    write_record(state, "20240301T01", "done", {"events": 3, "events_sent": 2})
    write_record(state, GENERATED, "done", {"$identify": 1},
                 days={"2024-03-01": {"$identify": 1}})
    return tmp_path


def _run(work_dir, *extra):
    return verify_module.verify(["--work_dir", str(work_dir), "--posthog_project_id", "1",
                                 "--persons", "0", "--posthog_personal_api_key", PERSONAL,
                                 *extra])


def _result(work_dir) -> dict:
    return orjson.loads((work_dir / "verify.json").read_bytes())


def test_every_day_matches(server, work_dir, capsys):
    server._accept(SENT + [_event(7, "2024-03-01", job="another-job")])
    assert _run(work_dir) == 0
    result = _result(work_dir)
    assert [(d["day"], d["sent"], d["uuids"], d["status"]) for d in result["days"]] == [
        ("2024-02-29", 1, 1, "equal"), ("2024-03-01", 5, 5, "equal")]
    assert {e["event"]: e["sent"] for e in result["events"]} == {"a": 5, "$identify": 1}
    assert PERSONAL not in capsys.readouterr().out + (work_dir / "verify.json").read_text()


def test_a_short_day_exits_3_and_names_it(server, work_dir, capsys):
    server._accept(SENT[:-2])
    assert _run(work_dir) == 3
    err = capsys.readouterr().err
    assert "Short days: 2024-03-01." in err and "--repair" in err
    assert _result(work_dir)["short_days"] == ["2024-03-01"]


def test_duplicates_pending_and_over_days(server, work_dir):
    server._accept(SENT + [SENT[0], _event(8, "2024-02-29")])
    assert _run(work_dir) == 0
    day = _result(work_dir)["days"][0]
    assert day == {"day": "2024-02-29", "sent": 1, "uuids": 2, "stored": 3,
                   "duplicates_pending": 1, "status": "over"}


def test_a_range_that_fills_the_limit_is_split(server, work_dir, monkeypatch):
    server._accept(SENT)
    monkeypatch.setattr(verify_module, "QUERY_LIMIT", 3)
    assert _run(work_dir) == 0
    queries = _result(work_dir)["queries"]
    assert len(queries) == 3 and _result(work_dir)["uuids_found"] == 6


def test_more_day_and_event_rows_than_a_query_without_limit_returns(server, tmp_path):
    # 2 days x 60 event names: 120 rows in one query, over the 100 PostHog returns by default.
    jobs.save(jobs.Job(start="20240301T00", end="20240301T00", job_name=JOB,
                       work_dir=str(tmp_path), posthog_host=server.url, source="files",
                       source_path="unused"))
    names = [f"event_{i:02d}" for i in range(60)]
    sent = [_event(n, day, names[n % 60])
            for n, day in enumerate(["2024-02-29"] * 60 + ["2024-03-01"] * 60)]
    _facts(tmp_path, "20240301T00", {"2024-02-29": 60, "2024-03-01": 60}, dict.fromkeys(names, 2))
    write_record(str(tmp_path), "20240301T00", "done", {"events": 120, "events_sent": 120})
    server._accept(sent)
    assert _run(tmp_path) == 0
    result = _result(tmp_path)
    assert result["uuids_found"] == 120 and result["short_days"] == []
    assert len(result["queries"]) == 1


def test_a_malformed_answer_writes_nothing(server, work_dir, capsys):
    server._accept(SENT)
    (work_dir / "verify.json").write_text("earlier")
    server.query_faults.append(MALFORMED)
    assert _run(work_dir) == 1
    assert "not JSON" in capsys.readouterr().err
    assert (work_dir / "verify.json").read_text() == "earlier"


@pytest.mark.parametrize("flags, flag", [
    (["--posthog_project_id", ""], "--posthog_project_id"),
    (["--wait_minutes", "-1"], "--wait_minutes"),
    (["--persons", "many"], "--persons"),
    (["--posthog_app_host", "ftp://x"], "--posthog_app_host"),
])
def test_bad_flags_exit_2_naming_the_flag(work_dir, flags, flag, capsys):
    assert _run(work_dir, *flags) == 2
    assert capsys.readouterr().err.startswith(f"error: {flag}")


def test_options_default_the_app_host_and_the_key(work_dir):
    stored = orjson.loads((work_dir / "job.json").read_bytes())
    (work_dir / "job.json").write_bytes(orjson.dumps({**stored,
                                                      "posthog_host": "https://eu.i.posthog.com"}))
    _, _, settings, _ = parse_verify(["--work_dir", str(work_dir), "--posthog_project_id", "9"],
                                     environ={"POSTHOG_PERSONAL_API_KEY": "phx_env"})
    assert (settings.app_host, settings.personal_api_key, settings.persons) == (
        "https://eu.posthog.com", "phx_env", 50)
    assert "phx_env" not in repr(settings)
    with pytest.raises(UsageError, match="^--posthog_personal_api_key"):
        parse_verify(["--work_dir", str(work_dir), "--posthog_project_id", "9"], environ={})
    with pytest.raises(UsageError, match="^--posthog_api_key"):
        parse_verify(["--work_dir", str(work_dir), "--posthog_project_id", "9", "--repair"],
                     environ={"POSTHOG_PERSONAL_API_KEY": "phx_env"})


def test_day_ranges_stay_within_the_limit():
    days = ["2024-01-01", "2024-01-02", "2024-03-01"]
    assert day_ranges(days, names=10) == [("2024-01-01", "2024-03-02")]
    assert day_ranges(days, names=1000) == [("2024-01-01", "2024-01-03"),
                                            ("2024-03-01", "2024-03-02")]
    assert day_ranges(days, names=100_000) == [("2024-01-01", "2024-01-02"),
                                               ("2024-01-02", "2024-01-03"),
                                               ("2024-03-01", "2024-03-02")]
    assert halves("2024-01-01", "2024-01-05") == [("2024-01-01", "2024-01-03"),
                                                  ("2024-01-03", "2024-01-05")]
    assert halves("2024-01-01", "2024-01-02") == []


def test_help_lists_verify_options(capsys):
    assert verify_module.verify(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--posthog_project_id" in out and "--wait_minutes" in out and "Default: 50" in out


def test_docs_show_the_hogql_sent_and_every_option():
    docs = (Path(__file__).parent.parent / "docs" / "verify.md").read_text(encoding="utf-8")
    assert count_query("acme-q1", "2024-01-01", "2024-04-01") in docs
    assert persons_query(["user-1", "user-2"]) in docs
    parser = argparse.ArgumentParser(add_help=False)
    VerifyOptions._add_argparse_args(parser)
    for action in parser._actions:
        assert "Default" in action.help
        assert f"| `{action.option_strings[0]}" in docs, action.option_strings[0]


def test_a_repair_reads_preserved_exports_only_when_every_hour_has_one(tmp_path):
    from pipeline.repair import _source_for
    job = jobs.Job(start="20240301T00", end="20240301T01", job_name=JOB, work_dir=str(tmp_path))
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "20240301T00.zip").write_bytes(b"")
    assert _source_for(job, ["20240301T00", "20240301T01"]) is job
    replayed = _source_for(job, ["20240301T00"])
    assert (replayed.source, replayed.source_path) == ("files", f"{tmp_path}/exports/*.zip")
