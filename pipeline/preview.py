"""``python -m pipeline preview``: what a job's first rows become, before anything is sent.

Reads the first ``--rows`` rows of the job's range, hour after hour, through the sources' own
readers (the Export API client and archive reader, or ``connectors.files``), stops after the hour
that completes them, translates each with the job's settings through ``translate_line``, works
out the generated events those rows alone would add from the same facts and builders the job
uses, and writes ``<work_dir>/preview.html``. Nothing is sent and no job state is written, so a
preview may run before, during or after the job. The PostHog key is neither needed nor read.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from typing import Iterator, NamedTuple

from connectors import archive
from connectors.amplitude import base_url_for, hour_range
from connectors.amplitude_http import ExportClient
from connectors.errors import MigrationAbort
from connectors.files import (configure_gcs_emulator, files_by_hour, read_hour_files,
                              use_beam_file_options, write_atomically)
from pipeline import job as jobs
from pipeline.console import ALL_EMPTY, ERROR, INCOMPLETE, OK, USAGE
from pipeline.options import SECRET_ENV, UsageError, parse_flags
from pipeline.preview_html import render_preview_html
from pipeline.people import identify_events, owners_of, snapshots_of
from pipeline.snapshots import file_identify_event, group_identify_event
from transforms.facts import FILES, GROUPS, HourFacts
from transforms.posthog_rules import MAX_GROUP_KEY_CHARS
from transforms.records import DONE, EMPTY, ExportLine, HourMarker, LineChunk
from transforms.translate import Translation, translate_line

__all__ = ["DEFAULT_ROWS", "PREVIEW_FILE", "HourUnreadable", "Preview", "preview", "read_preview"]

PREVIEW_FILE = "preview.html"
DEFAULT_ROWS = 200
_ROWS = "--rows"


class HourUnreadable(Exception):
    """An hour of the range the source could not read (over the export limit, a damaged file)."""

    def __init__(self, hour: str, detail: str | None):
        super().__init__(f"hour {hour} could not be read: {detail or 'no detail'}")
        self.hour = hour


class Preview(NamedTuple):
    """What the first rows of a job become."""

    rows: list[tuple[ExportLine, Translation]]
    hours: list[tuple[str, str, int]]  # (hour, DONE or EMPTY, rows taken from it), as read
    generated: list[dict]  # the $identify, $groupidentify and $set events these rows add


def _take_rows(argv: list[str]) -> tuple[int, list[str]]:
    """``--rows N`` (or ``--rows=N``) out of ``argv``: preview's own flag, not the run's."""
    rows, rest, args = DEFAULT_ROWS, [], iter(argv)
    for arg in args:
        if arg == _ROWS or arg.startswith(_ROWS + "="):
            value = arg.split("=", 1)[1] if "=" in arg else next(args, "")
            if not value.isdigit() or int(value) < 1:
                raise UsageError(f"{_ROWS}: expected a number of rows of at least 1, "
                                 f"got {value!r}")
            rows = int(value)
        else:
            rest.append(arg)
    return rows, rest


def _resolve(argv: list[str]) -> tuple[jobs.Job, jobs.Secrets]:
    given, beam_args = parse_flags(argv)
    use_beam_file_options(beam_args)  # --s3_endpoint_url and the like, for s3:// sources
    given["dry_run"] = True  # nothing is sent, so no PostHog key is asked for
    given.pop("posthog_api_key", None)
    environ = {k: v for k, v in os.environ.items() if k != SECRET_ENV["posthog_api_key"]}
    configure_gcs_emulator()
    work_dir = given.get("work_dir")
    stored = jobs.load_stored(work_dir) if work_dir else None
    if (given.get("source") == "files" and given.get("source_path") and not stored
            and not (given.get("start") or given.get("end"))):
        # Files name their hours: without a range, preview from the first hour they hold.
        found, _ = files_by_hour(given["source_path"])
        if found:
            given["start"], given["end"] = found[0][0], found[-1][0]
    return jobs.resolve(given, environ)


def _export_lines(job: jobs.Job, secrets: jobs.Secrets,
                  hours: list[str]) -> Iterator[ExportLine | HourMarker]:
    client = ExportClient(base_url_for(job.amplitude_region, job.amplitude_url),
                          secrets.amplitude_api_key, secrets.amplitude_secret_key,
                          max_attempts=job.amplitude_max_attempts,
                          max_retry_seconds=job.amplitude_max_retry_seconds,
                          request_timeout=job.amplitude_read_timeout, backoff_base=2.0)
    with client, tempfile.TemporaryDirectory(prefix="amplitude-preview-") as tmp:
        for hour in hours:
            dest = os.path.join(tmp, f"{hour}.zip")
            result = client.fetch(hour, dest)  # validated whole before any line is read
            if result.status != DONE:
                yield HourMarker(hour, result.status, result.detail, {"rows_read": 0})
                continue
            rows = 0
            for member, number, line in archive.iter_lines(dest, archive.ZIP):
                rows += 1
                yield ExportLine(hour, member, number, line)
            os.remove(dest)
            yield HourMarker(hour, DONE, None, {"rows_read": rows})


def _file_lines(job: jobs.Job, hours: list[str]) -> Iterator[ExportLine | HourMarker]:
    grouped, _ = files_by_hour(job.source_path, hours)
    for hour, parts in grouped:
        for element in read_hour_files(hour, parts):
            if isinstance(element, LineChunk):
                yield from element.export_lines()
            else:
                yield element


def read_preview(job: jobs.Job, secrets: jobs.Secrets, limit: int) -> Preview:
    """The first ``limit`` rows of ``job``'s range, translated, and the events they generate.

    Raises ``HourUnreadable`` for an hour the source could not read, and whatever the source raises
    for a refused key or a path that matches nothing (``MigrationAbort``).
    """
    hours = hour_range(job.start, job.end)
    lines = (_export_lines(job, secrets, hours) if job.source == "amplitude"
             else _file_lines(job, hours))
    settings = job.translation_settings()
    per_file = job.identify_mode == "per_file"
    facts = HourFacts()
    rows: list[tuple[ExportLine, Translation]] = []
    read: list[tuple[str, str, int]] = []
    taken = 0
    try:
        for element in lines:
            if isinstance(element, HourMarker):
                if element.status not in (DONE, EMPTY):
                    raise HourUnreadable(element.hour, element.detail)
                read.append((element.hour, element.status, taken))
                taken = 0
                if len(rows) >= limit:
                    break
                continue
            if len(rows) >= limit:
                continue  # the rest of an hour that completed the preview
            translation = translate_line(element.line, settings)
            facts.add(translation, element if per_file else None)
            rows.append((element, translation))
            taken += 1
    finally:
        lines.close()  # ends the download loop and removes its temporary files
    return Preview(rows, read, _generated(facts.to_dict(), job))


def _generated(facts: dict, job: jobs.Job) -> list[dict]:
    """The job's generated events for these facts, built as ``pipeline.generated`` builds them
    (one HourFacts over every preview row already holds the pick of each key)."""
    events = []
    owners = owners_of(facts["pairs"]) if job.identify_mode != "off" else {}
    if job.identify_mode == "pairs":
        events += identify_events(owners)
    elif job.identify_mode == "per_file":
        events += [event for event in map(file_identify_event, facts.get(FILES, ()))
                   if event is not None]
    if job.group_identify:
        events += [group_identify_event(row) for row in facts.get(GROUPS, ())
                   if len(row[1]) <= MAX_GROUP_KEY_CHARS]
    if job.person_snapshot:
        events += snapshots_of(facts, owners)
    return events


def _summary(result: Preview) -> list[str]:
    events = sum(1 for _, t in result.rows if t.event is not None)
    reasons: dict[str, int] = {}
    for _, translation in result.rows:
        if translation.event is None:
            kind = "dead letter" if translation.dead else "skipped"
            key = f"{kind}: {translation.reason}"
            reasons[key] = reasons.get(key, 0) + 1
    generated: dict[str, int] = {}
    for event in result.generated:
        generated[event["event"]] = generated.get(event["event"], 0) + 1
    lines = [f"{len(result.rows):>8,}  rows read from {len(result.hours)} hour(s)",
             f"{events:>8,}  would become events"]
    lines += [f"{count:>8,}  {name}" for name, count in sorted(reasons.items())]
    lines += [f"{count:>8,}  generated {name}" for name, count in sorted(generated.items())]
    return lines


def preview(argv: list[str]) -> int:
    """Writes ``<work_dir>/preview.html`` for the job's first rows; prints where and a summary."""
    argv = list(argv)
    if "-h" in argv or "--help" in argv:
        print(f"usage: python -m pipeline preview [{_ROWS} N] [--work_dir W | --start S --end E "
              "| --source files --source_path GLOB] [flags of the run command]\n\n"
              f"Translates the first N rows of the job's range (default {DEFAULT_ROWS}), sends "
              f"nothing, and writes <work_dir>/{PREVIEW_FILE}: each row beside the PostHog event "
              "it becomes or why it does not, and the events the job would generate from them.")
        return OK
    # A failed hour is reported in the one error line below; the readers' own warning about it
    # would only repeat it.
    readers = logging.getLogger("connectors")
    level = readers.level
    readers.setLevel(logging.ERROR)
    try:
        return _preview(argv)
    finally:
        readers.setLevel(level)


def _preview(argv: list[str]) -> int:
    try:
        limit, argv = _take_rows(argv)
        job, secrets = _resolve(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    except MigrationAbort as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ERROR
    try:
        result = read_preview(job, secrets, limit)
    except MigrationAbort as exc:  # a refused key, a path that matches nothing
        print(f"error: {exc}", file=sys.stderr)
        return ERROR
    except HourUnreadable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return INCOMPLETE
    if not result.rows:  # as a run whose every hour came back empty
        print(f"error: --start: no rows in {job.start} to {job.end} ({len(result.hours)} "
              "hour(s), all empty); hours count by Amplitude's server_upload_time, in UTC",
              file=sys.stderr)
        return ALL_EMPTY
    path = job.path(PREVIEW_FILE)
    write_atomically(path, render_preview_html(job, result).encode("utf-8"))
    print("\n".join(_summary(result)))
    print(f"Preview: {path}")
    return OK
