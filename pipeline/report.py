"""The job's report: every Amplitude row accounted for, built from the ledger alone.

Because it reads only the work_dir, ``status`` can build it while a run is going on (also from
another machine when the work_dir is on Cloud Storage) and it always covers the whole job, not
just the last run.
"""

from __future__ import annotations

import orjson
from apache_beam.io.filesystems import FileSystems

from connectors.files import exists, read_bytes, write_atomically
from pipeline.job import Job, join
from pipeline.ledger import DEAD_LETTER, FACTS, GENERATED, hour_path, read_records, state_dir
from pipeline.report_html import render_report_html
from pipeline.report_people import WarningTally, identities_section
from pipeline.report_verify import status_line, summary
from transforms.records import DONE, EMPTY, FAILED, PENDING

EXAMPLES_PER_REASON = 3
TOP_EVENTS = 15


def _add(into: dict, key: str, value: int) -> None:
    into[key] = into.get(key, 0) + value


def build_report(job: Job, all_hours: list[str], started_at=None, finished_at=None,
                 update_index: bool = False) -> dict:
    """The job's report; ``update_index`` also rewrites the ledger's index (runs do).
    ``started_at``/``finished_at`` are the run's that writes it; without them (``status``,
    ``resend``, ``verify``) the last run's times are kept."""
    if started_at is None and finished_at is None:
        started_at, finished_at = _last_run_times(job)
    state = state_dir(job.work_dir, job.dry_run)
    records = read_records(state, update_index=update_index)
    hours = {DONE: 0, EMPTY: 0, FAILED: 0, PENDING: 0}
    totals = {"rows_read": 0, "events_sent": 0, "events_translated": 0}
    skipped: dict[str, int] = {}
    dead: dict[str, int] = {}
    per_hour, failed_hours = [], []
    for hour in all_hours:
        record = records.get(hour)
        status = record["status"] if record else PENDING
        hours[status] += 1
        if not record:
            continue
        counts = record["counts"]
        totals["rows_read"] += counts.get("rows_read", 0)
        totals["events_sent"] += counts.get("events_sent", 0)
        totals["events_translated"] += counts.get("events", 0)
        for name, value in counts.items():
            kind, _, reason = name.partition(":")
            if kind == "skipped":
                _add(skipped, reason, value)
            elif kind == "dead":
                _add(dead, reason, value)
        per_hour.append({"hour": hour, "rows_read": counts.get("rows_read", 0),
                         "events_sent": counts.get("events_sent", 0),
                         "events_translated": counts.get("events", 0)})
        if status == FAILED:
            failed_hours.append({"hour": hour, "detail": record.get("detail")})
    generated = records.get(GENERATED, {})
    per_day, names, warnings = _facts_summary(state, [records[h["hour"]] for h in per_hour])
    delivered = totals["events_translated"] if job.dry_run else totals["events_sent"]
    accounted = delivered + sum(skipped.values()) + sum(dead.values())
    complete = (hours[PENDING] == 0 and hours[FAILED] == 0 and not dead.get("delivery_failed")
                and generated.get("status", DONE) == DONE)
    return {
        "job_name": job.job_name,
        "work_dir": job.work_dir,
        "dry_run": job.dry_run,
        "status": "complete" if complete else "incomplete",
        "started_at": started_at,
        "finished_at": finished_at,
        "rows_read": totals["rows_read"],
        "events_sent": totals["events_sent"],
        "events_translated": totals["events_translated"],
        "rows_skipped": skipped,
        "rows_dead_lettered": dead,
        "reconciled": accounted == totals["rows_read"],
        "generated_events_sent": generated.get("counts", {}),
        "generated_events_failed": generated.get("dead", {}),
        "identities": identities_section(generated),
        "warnings": warnings,
        "hours": {"total": len(all_hours), **hours},
        "failed_hours": failed_hours,
        "settings": job.stored(),
        "per_hour": per_hour,
        "per_day": per_day,
        "top_events": [{"event": n, "count": c} for n, c in names[:TOP_EVENTS]],
        "dead_letter_examples": _dead_letter_examples(state, set(dead)),
        "resume_command": f"python -m pipeline --work_dir {job.work_dir}",
        "verification": None if job.dry_run else summary(job.work_dir),
    }


def _facts_summary(state: str, records: list[dict]) -> tuple[list[dict], list[tuple[str, int]],
                                                           dict[str, int]]:
    days: dict[str, dict[str, int]] = {}
    names: dict[str, int] = {}
    warnings = WarningTally()
    for record in records:
        facts = record.get("summary")
        if facts is None:  # a record written before records carried their summary
            path = hour_path(state, FACTS, record["hour"])
            if not exists(path):
                continue
            facts = orjson.loads(read_bytes(path))
        for day, c in facts.get("days", {}).items():
            slot = days.setdefault(day, {"rows": 0, "events": 0})
            slot["rows"] += c.get("rows", 0)
            slot["events"] += c.get("events", 0)
        for name, n in facts.get("event_names", {}).items():
            _add(names, name, n)
        warnings.add(facts)
    per_day = [{"day": d, **days[d]} for d in sorted(days)]
    return (per_day, sorted(names.items(), key=lambda kv: (-kv[1], kv[0])),
            warnings.result())


def _dead_letter_examples(state: str, reasons: set[str]) -> dict[str, list[dict]]:
    """A few provenances per reason (hour, file, line), never the rows themselves."""
    examples: dict[str, list[dict]] = {r: [] for r in sorted(reasons)}
    pattern = join(state, DEAD_LETTER, "*.jsonl")
    for match in sorted(FileSystems.match([pattern])[0].metadata_list, key=lambda m: m.path):
        if all(len(v) >= EXAMPLES_PER_REASON for v in examples.values()):
            break
        for line in read_bytes(match.path).splitlines():
            letter = orjson.loads(line)
            slot = examples.setdefault(letter["reason"], [])
            if len(slot) < EXAMPLES_PER_REASON:
                slot.append({"hour": letter["hour"], "file": letter["file"],
                             "line_number": letter["line_number"]})
    return examples


def _last_run_times(job: Job) -> tuple[str | None, str | None]:
    json_path, _ = report_paths(job)
    if not exists(json_path):
        return None, None
    try:
        previous = orjson.loads(read_bytes(json_path))
    except orjson.JSONDecodeError:  # a report cut short is rewritten whole below
        return None, None
    return previous.get("started_at"), previous.get("finished_at")


def report_paths(job: Job) -> tuple[str, str]:
    """Where the job's report.json and report.html are (a dry run's under its own state)."""
    state = state_dir(job.work_dir, job.dry_run)
    return join(state, "report.json"), join(state, "report.html")


def write_report(job: Job, report: dict) -> tuple[str, str]:
    json_path, html_path = report_paths(job)
    write_atomically(json_path, orjson.dumps(report, option=orjson.OPT_INDENT_2))
    write_atomically(html_path, render_report_html(report).encode())
    return json_path, html_path


def format_table(report: dict) -> str:
    """The summary printed at the end of a run and by ``status``."""
    rows = [("Rows read", report["rows_read"])]
    if report["dry_run"]:
        rows.append(("Events translated (dry run, none sent)", report["events_translated"]))
    else:
        rows.append(("Events sent", report["events_sent"]))
    rows += [(f"Skipped: {r}", n) for r, n in sorted(report["rows_skipped"].items())]
    rows += [(f"Dead-lettered: {r}", n) for r, n in sorted(report["rows_dead_lettered"].items())]
    rows.append(("Reconciled (read = sent + skipped + dead-lettered)",
                 "yes" if report["reconciled"] else "NO"))
    rows += [(f"Generated: {name}", n)
             for name, n in sorted(report["generated_events_sent"].items())]
    rows += [(f"Warning: {kind}", n) for kind, n in report["warnings"].items()]
    h = report["hours"]
    rows.append(("Hours done / empty / failed / pending / total",
                 f"{h['done']} / {h['empty']} / {h['failed']} / {h['pending']} / {h['total']}"))
    width = max(len(label) for label, _ in rows)
    lines = [f"Job {report['job_name']}: {report['status']}"]
    lines += [f"  {label.ljust(width)}  {value:>12}" for label, value in rows]
    verified = status_line(report.get("verification"))
    if verified:
        lines.append(f"  {verified}")
    for failed in report["failed_hours"][:10]:
        lines.append(f"  failed {failed['hour']}: {failed['detail']}")
    if report["status"] != "complete":
        lines.append(f"  Resume with: {report['resume_command']}")
        if report["rows_dead_lettered"].get("delivery_failed"):
            lines.append(f"  Re-send failed deliveries: python -m pipeline resend "
                         f"--work_dir {report['work_dir']}")
    return "\n".join(lines)
