"""``python -m pipeline verify``: what PostHog holds of the job, per day and event name.

A 200 from ``/batch/`` does not mean PostHog kept the events: over its billing quota capture
answers 200 and keeps nothing (https://github.com/PostHog/posthog/blob/master/rust/capture/src/v0_endpoint.rs,
``event()``), and ingestion drops events later still (a project's "drop events older than"
setting, size limits after processing). So ``verify`` asks PostHog's query API how many distinct
uuids carry the job's ``$import_job_id`` per day and compares them with what the job sent
(``pipeline.verify_counts``). Exit codes as the job's: 0 no day is short; 3 some day is short;
2 a flag is wrong; 1 PostHog refused the key or project, or its query API failed for good.
``<work_dir>/verify.json`` is written only once every query has been answered.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time

import orjson

from connectors.errors import MigrationAbort
from connectors.files import write_atomically
from connectors.posthog_query import PostHogQueryClient, QueryError, app_host_for
from pipeline.console import ERROR, INCOMPLETE, OK, USAGE, setup_logging
from pipeline.options import UsageError
from pipeline.verify_compare import (QUERY_LIMIT, SHORT, compare, count_query, day_ranges,
                                     halves)
from pipeline.verify_counts import Sent, sent_by_the_job
from pipeline.verify_options import VerifySettings, parse_verify, verify_help

__all__ = ["VERIFY_FILE", "verify"]

LOG = logging.getLogger("pipeline")
VERIFY_FILE = "verify.json"
_SHOWN = 20  # short or over days printed; verify.json has them all


def _collect(client: PostHogQueryClient, job_name: str, days: list[str], names: int,
             queries: list[str]) -> list[dict]:
    """PostHog's rows for ``days``, one query per range; a range that fills the LIMIT is split."""
    todo = day_ranges(days, names)
    records: list[dict] = []
    while todo:
        first, end = todo.pop(0)
        query = count_query(job_name, first, end, QUERY_LIMIT)
        queries.append(query)
        result = client.run(query)
        if len(result.rows) >= QUERY_LIMIT:
            parts = halves(first, end)
            if not parts:
                raise QueryError(f"PostHog holds more than {QUERY_LIMIT} event names on {first}; "
                                 "verify cannot count them within one query's LIMIT")
            todo[:0] = parts
            continue
        missing = {"day", "event", "uuids", "stored"} - set(result.columns)
        if missing:
            raise QueryError(f"PostHog's answer lacks the columns {sorted(missing)}",
                             "--posthog_app_host")
        records.extend(result.records())
    return records


def check(client: PostHogQueryClient, job_name: str, sent: Sent, wait_minutes: float,
          sleep=time.sleep) -> tuple[dict, list[str], int]:
    """The comparison, re-querying short days until they match or ``wait_minutes`` pass."""
    queries: list[str] = []
    records = _collect(client, job_name, list(sent.days), len(sent.names), queries)
    result = compare(sent.days, sent.names, records)
    deadline = time.monotonic() + wait_minutes * 60
    # About ten re-checks over the wait: PostHog allows about 120 HogQL queries an hour per key.
    poll = min(600.0, max(2.0, wait_minutes * 6))
    rounds = 1
    while result["status"] == SHORT and time.monotonic() < deadline:
        sleep(min(poll, max(0.0, deadline - time.monotonic())))
        short = set(result["short_days"])
        fresh = _collect(client, job_name, sorted(short), len(sent.names), queries)
        kept = [r for r in records if str(r["day"])[:10] not in short]
        records = kept + [r for r in fresh if str(r["day"])[:10] in short]
        result = compare(sent.days, sent.names, records)
        rounds += 1
    return result, queries, rounds


def _age(stamp: str | None) -> str:
    if not stamp:
        return "never"
    then = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    minutes = (dt.datetime.now(dt.timezone.utc) - then).total_seconds() / 60
    return f"{stamp} ({minutes:.0f} min ago)"


def format_result(result: dict) -> str:
    lines = [f"PostHog holds {result['uuids_found']:,} distinct uuids of the "
             f"{result['events_sent']:,} events the job sent; {result['equal_days']} day(s) "
             f"equal, {len(result['short_days'])} short, {len(result['over_days'])} over."]
    odd = [row for row in result["days"] if row["status"] != "equal"]
    if odd:
        lines.append(f"  {'day':<10}  {'status':<6}  {'sent':>9}  {'in PostHog':>10}")
        lines += [f"  {r['day']:<10}  {r['status']:<6}  {r['sent']:>9,}  {r['uuids']:>10,}"
                  for r in odd[:_SHOWN]]
        if len(odd) > _SHOWN:
            lines.append(f"  ... and {len(odd) - _SHOWN} more in verify.json")
    names = [row for row in result["events"] if row["status"] != "equal"]
    lines += [f"  event {r['event']!r}: {r['status']}, sent {r['sent']:,}, in PostHog "
              f"{r['uuids']:,}" for r in names[:_SHOWN]]
    if result["duplicates_pending"]:
        lines.append(f"  duplicates pending: {result['duplicates_pending']:,} rows beyond the "
                     "distinct uuids (PostHog merges them later)")
    return "\n".join(lines)


def _repair_command(job, settings: VerifySettings) -> str:
    host = ("" if settings.app_host == app_host_for(job.posthog_host)
            else f" --posthog_app_host {settings.app_host}")
    return (f"python -m pipeline verify --work_dir {job.work_dir} --posthog_project_id "
            f"{settings.project_id}{host} --repair")


def verify(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(verify_help())
        return OK
    setup_logging("--quiet" in argv or "-q" in argv)
    try:
        job, secrets, settings, beam_args = parse_verify(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    report: dict = {"job_name": job.job_name, "app_host": settings.app_host,
                    "project_id": settings.project_id}
    try:
        with PostHogQueryClient(settings.app_host, settings.project_id,
                                settings.personal_api_key, verify_tls=not job.insecure,
                                max_retry_seconds=job.max_retry_seconds) as client:
            sent = sent_by_the_job(job.work_dir)
            report["newest_acknowledged_at"] = sent.newest_acknowledged_at
            print(f"The job's newest events were acknowledged at "
                  f"{_age(sent.newest_acknowledged_at)}; PostHog can take a while to show "
                  "historical events.")
            result, queries, rounds = check(client, job.job_name, sent, settings.wait_minutes)
            if settings.repair and result["short_days"]:
                from pipeline.repair import repair  # Beam's pipeline loads only for a repair
                report["repair"] = repair(job, secrets, sent, result["short_days"], beam_args)
                print(f"Repaired: re-sent the {len(report['repair']['hours'])} hour(s) that "
                      f"fed {len(result['short_days'])} short day(s); verifying again.")
                sent = sent_by_the_job(job.work_dir)
                result, more, rounds = check(client, job.job_name, sent,
                                             max(settings.wait_minutes, 1.0))
                queries += more
            if settings.persons:
                from pipeline.verify_persons import check_persons
                report["persons"] = check_persons(client, job.work_dir, settings.persons,
                                                  queries)
            report["queries_sent"] = client.queries_sent
    except MigrationAbort as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ERROR
    report.update(result, verified_at=dt.datetime.now(dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"), checks=rounds, queries=queries)
    if not sent.generated_recorded_per_day:
        report["note"] = ("generated events were recorded before per-day counts: rerun the job "
                          "with ledger/generated.json removed to count them per day")
    write_atomically(job.path(VERIFY_FILE), orjson.dumps(report, option=orjson.OPT_INDENT_2))
    _refresh_report(job)
    print(format_result(result))
    persons = report.get("persons")
    if persons:
        print(f"Persons: {persons['checked']} checked against the job's snapshot, "
              f"{len(persons['mismatches'])} property mismatch(es) (listed in verify.json).")
    print(f"Written: {job.path(VERIFY_FILE)}")
    if result["short_days"]:
        more = len(result["short_days"]) - _SHOWN
        days = ", ".join(result["short_days"][:_SHOWN]) + (
            f" and {more} more (in verify.json)" if more > 0 else "")
        print(f"Short days: {days}. Repair them with: {_repair_command(job, settings)}",
              file=sys.stderr)
        return INCOMPLETE
    return OK


def _refresh_report(job) -> None:
    from connectors.amplitude import hour_range
    from pipeline.report import build_report, write_report
    write_report(job, build_report(job, hour_range(job.start, job.end)))
