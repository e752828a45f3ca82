"""Subcommands that work on a job: ``status`` and ``resend`` (``init`` creates one, ``preview``
shows what its first rows become)."""

from __future__ import annotations

import hashlib
import logging
import os
import sys

from apache_beam.io.filesystems import FileSystems

from connectors.amplitude import hour_range
from connectors.errors import MigrationAbort
from connectors.files import (configure_gcs_emulator, exists, read_bytes, use_beam_file_options,
                              write_atomically)
from connectors.posthog_client import PostHogClient
from pipeline import job as jobs
from pipeline.console import ERROR, INCOMPLETE, OK, USAGE, setup_logging
from pipeline.ledger import DEAD_LETTER, GENERATED, read_dead_letters, read_records, save_record
from pipeline.lease import describe, read_lease
from pipeline.options import SECRET_ENV, UsageError, parse_flags
from pipeline.report import build_report, format_table, report_paths, write_report
from pipeline.secrets import read_secret_versions
from transforms.records import DeadLetter

LOG = logging.getLogger("pipeline")
RESENDABLE = "delivery_failed"
# resend's next version of a dead-letter file, written before the ledger record it goes with.
NEXT = ".next"


def _existing_job(argv: list[str], command: str) -> tuple[jobs.Job, jobs.Secrets]:
    given, beam_args = parse_flags(argv)
    if not given.get("work_dir"):
        raise UsageError(f"--work_dir: required by `{command}`")
    configure_gcs_emulator()
    use_beam_file_options(beam_args)
    if not exists(jobs.join(given["work_dir"], jobs.JOB_FILE)):
        raise UsageError(f"--work_dir: no job.json in {given['work_dir']}")
    settings = jobs.load_stored(given["work_dir"])
    # Only what these commands use may be typed; the job's range stays as stored.
    for name in ("posthog_host", "insecure", "max_retry_seconds", "batch_size", "quiet",
                 "dry_run", "max_events_per_second", "sleep_interval_ms"):
        if given.get(name) is not None:
            settings[name] = given[name]
    job = jobs.from_settings(settings)
    key = given.get("posthog_api_key") or os.environ.get(SECRET_ENV["posthog_api_key"])
    keys = read_secret_versions({"posthog_api_key": key}) if command == "resend" else {}
    return job, jobs.Secrets(None, None, keys.get("posthog_api_key"))


def init(argv: list[str]) -> int:
    """Creates a job by asking for its settings (or from flags): see ``pipeline.init``."""
    from pipeline.init import init as create_job
    return create_job(argv)


def preview(argv: list[str]) -> int:
    """Shows what the job's first rows become, sending nothing: see ``pipeline.preview``."""
    from pipeline.preview import preview as show_preview
    return show_preview(argv)


def status(argv: list[str]) -> int:
    """Prints the job's reconciliation and where its report is, without running anything."""
    try:
        job, _ = _existing_job(argv, "status")
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    report = build_report(job, hour_range(job.start, job.end))
    print(format_table(report))
    lease = read_lease(job.work_dir)
    print(f"Lease: held by {describe(lease)}" if lease else
          "Lease: free (no run of this job is running)")
    json_path, html_path = report_paths(job)
    if not exists(html_path):
        # A job submitted to a remote runner has no report until someone asks for one.
        write_report(job, report)
    print(f"Report: {json_path} and {html_path}")
    return OK


def resend(argv: list[str]) -> int:
    """Re-sends every ``delivery_failed`` dead letter and rewrites what still failed."""
    try:
        # Logging first: Beam's file systems configure the root logger on first use otherwise.
        setup_logging(bool(parse_flags(argv)[0].get("quiet")))
        job, secrets = _existing_job(argv, "resend")
        if not secrets.posthog_api_key:
            raise UsageError("--posthog_api_key: required (flag or POSTHOG_API_KEY)")
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    records = read_records(job.work_dir)
    pattern = jobs.join(job.work_dir, DEAD_LETTER, "*.jsonl")
    sent = still_failed = 0
    paced_ms = 0
    try:
        # Paced like the job's sink: the same rate and pause per worker.
        with PostHogClient(job.posthog_host, secrets.posthog_api_key,
                           max_retry_seconds=job.max_retry_seconds, verify_tls=not job.insecure,
                           max_events_per_second=job.max_events_per_second,
                           sleep_interval_ms=job.sleep_interval_ms,
                           batch_size=job.batch_size) as client:
            for match in sorted(FileSystems.match([pattern])[0].metadata_list,
                                key=lambda m: m.path):
                n_sent, n_failed, n_ms = _resend_file(client, job, match.path, records)
                sent += n_sent
                still_failed += n_failed
                paced_ms += n_ms
    except MigrationAbort as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ERROR
    print(f"Re-sent {sent} events; {still_failed} still failed; {paced_ms / 1000:.1f} s paced "
          f"(--max_events_per_second {job.max_events_per_second or 'unlimited'}, "
          f"--sleep_interval_ms {job.sleep_interval_ms}).")
    print(format_table(write_and_build(job)))
    return INCOMPLETE if still_failed else OK


def write_and_build(job: jobs.Job) -> dict:
    report = build_report(job, hour_range(job.start, job.end))
    write_report(job, report)
    return report


def _resend_file(client, job: jobs.Job, path: str, records: dict) -> tuple[int, int, int]:
    """Re-send one hour's (or the generated events') resendable letters; (sent, failed, ms)."""
    # The file is named after its ledger record: <hour>.jsonl, or generated.jsonl.
    key = path.rsplit("/", 1)[-1].removesuffix(".jsonl")
    _finish_interrupted(job, path, key, records)
    letters = read_dead_letters(path)
    keep: list[DeadLetter] = [d for d in letters if d.reason != RESENDABLE]
    retry = [d for d in letters if d.reason == RESENDABLE]
    if not retry:
        return 0, 0, 0
    outcomes: list[tuple[DeadLetter, DeadLetter | None]] = []
    paced_ms = 0
    for start in range(0, len(retry), job.batch_size):
        chunk = retry[start:start + job.batch_size]
        result = client.send([d.payload for d in chunk])
        paced_ms += result.throttled_ms
        failures = {f.event.get("uuid"): f for f in result.failed}
        for letter in chunk:
            failure = failures.get(letter.payload.get("uuid"))
            again = (letter._replace(reason=failure.reason, detail=failure.detail)
                     if failure is not None else None)
            outcomes.append((letter, again))
            if again is not None:
                keep.append(again)
    _commit(job, path, key, records, keep, outcomes)
    failed = sum(1 for _, again in outcomes if again is not None)
    return len(outcomes) - failed, failed, paced_ms


def _commit(job: jobs.Job, path: str, key: str, records: dict, keep: list, outcomes) -> None:
    """Replace the dead-letter file and its ledger record so that a kill anywhere is recoverable.

    The file and the record cannot be written in one step. The new letters go first to
    ``<file>.next``, then the record (carrying the digest of those letters), then the file
    itself. Killed before the record, the ``.next`` is dropped by the next ``resend`` and the old
    pair stands: its letters are sent again, and PostHog keeps one copy per uuid. Killed after
    it, the next ``resend`` sees the digest match and finishes the file (``_finish_interrupted``).
    """
    content = b"".join(letter.to_json() + b"\n" for letter in keep)
    write_atomically(path + NEXT, content)
    _update_record(job, records, key, outcomes, hashlib.sha256(content).hexdigest())
    write_atomically(path, content)
    FileSystems.delete([path + NEXT])


def _finish_interrupted(job: jobs.Job, path: str, key: str, records: dict) -> None:
    if not exists(path + NEXT):
        return
    content = read_bytes(path + NEXT)
    if records.get(key, {}).get("letters_sha256") == hashlib.sha256(content).hexdigest():
        LOG.info("Finishing the interrupted resend of %s", key)
        write_atomically(path, content)
    FileSystems.delete([path + NEXT])


def _update_record(job: jobs.Job, records: dict, hour: str, outcomes: list, digest: str) -> None:
    """Moves re-sent events from the hour's delivery_failed count to what became of them.

    ``digest`` (sha256 of the dead-letter file these counts go with) is kept in the record as
    ``letters_sha256``: see ``_commit``.
    """
    record = records.get(hour)
    if record is None:
        return
    generated = hour == GENERATED
    # The generated record counts events by name and failures under "dead"; hours count both
    # in "counts" with prefixes.
    sent_counts = dict(record["counts"])
    dead_counts = dict(record.get("dead", {})) if generated else sent_counts
    prefix = "" if generated else "dead:"

    def bump(counts, key, by):
        counts[key] = counts.get(key, 0) + by
        if counts[key] == 0:
            counts.pop(key)

    for letter, again in outcomes:
        bump(dead_counts, prefix + RESENDABLE, -1)
        if again is not None:
            bump(dead_counts, prefix + again.reason, 1)
        else:
            bump(sent_counts, letter.payload["event"] if generated else "events_sent", 1)
    record = {**record, "counts": sent_counts, "letters_sha256": digest}
    if generated:
        record.update(dead=dead_counts,
                      status="failed" if dead_counts.get(RESENDABLE) else "done")
    records[hour] = save_record(job.work_dir, record)
