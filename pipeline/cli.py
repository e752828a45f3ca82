"""``python -m pipeline [init|preview|status|resend|verify] [options]``: run and exit code.

The exit codes, the logging set-up and the search for an abort behind a runner's error live in
``pipeline.console``, shared with the other commands.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import sys
import time
import traceback
import uuid
from importlib.metadata import PackageNotFoundError, version

import apache_beam as beam
from apache_beam.options.pipeline_options import (GoogleCloudOptions, PipelineOptions,
                                                  StandardOptions)

from connectors.amplitude import elements_for, hour_range, hours_not_yet_exportable
from connectors.hours import (EMPTY_RECHECK, MIGRATION_AGE, exportable_at,
                              hours_too_recent_to_migrate, migratable_at)
from connectors.files import (configure_gcs_emulator, exists, use_beam_file_options,
                              write_atomically)
from pipeline import job as jobs
from pipeline.build import build
from pipeline.console import (ALL_EMPTY, ERROR, HOURS_PENDING, INCOMPLETE, INTERRUPTED, OK,
                              USAGE, find_abort, setup_logging)
from pipeline.lease import JobLease, LeaseHeld
from pipeline.ledger import GENERATED, read_records, settled, state_dir, status_of
from pipeline.local_mode import local_worker_args
from pipeline.options import UsageError, help_text, parse_flags
from pipeline.progress import Progress
from pipeline.report import build_report, format_table, write_report
from transforms.records import DONE, EMPTY

LOG = logging.getLogger("pipeline")


def tool_version() -> str:
    try:
        return version("aplistorical")
    except PackageNotFoundError:
        return "unknown"


def run(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        print(f"aplistorical {tool_version()} (apache-beam {beam.__version__})")
        return OK
    if argv[:1] == ["verify"]:
        from pipeline.verify import verify  # its own modules: see pipeline.verify
        return verify(argv[1:])
    if argv and argv[0] in ("init", "status", "resend", "preview"):
        from pipeline import commands  # the subcommands load only when asked for
        return getattr(commands, argv[0])(argv[1:])
    if "-h" in argv or "--help" in argv:
        print(help_text())
        return OK
    try:
        given, beam_args = parse_flags(argv)
        # Before the job is resolved: reading a gs:// work_dir makes Beam create PipelineOptions,
        # whose own logging.basicConfig() would leave this one without effect.
        setup_logging(bool(given.get("quiet")))
        use_beam_file_options(beam_args)
        job, secrets = jobs.resolve(given)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    return migrate(job, secrets, beam_args)


def _span(hours: list[str]) -> str:
    return hours[0] if len(hours) == 1 else f"{hours[0]} to {hours[-1]}"


def _when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def unfinished(job: jobs.Job, all_hours: list[str], records: dict) -> list[str]:
    """Hours a run still has to fetch: not done or empty, or empty too soon to be final."""
    if job.force:
        return list(all_hours)
    return [h for h in all_hours if not settled(records, h)]


def migrate(job: jobs.Job, secrets: jobs.Secrets, beam_args: list[str]) -> int:
    """Runs the job under its lease (see pipeline.lease): exit 2 if another run holds it."""
    configure_gcs_emulator()
    lease = JobLease(job.work_dir, f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-"
                     f"{uuid.uuid4().hex[:6]}")
    try:
        note = lease.acquire(force=job.force)
    except LeaseHeld as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    if note:
        LOG.warning("%s", note)
    try:
        return _migrate(job, secrets, beam_args)
    finally:
        lease.release()


def _migrate(job: jobs.Job, secrets: jobs.Secrets, beam_args: list[str]) -> int:
    all_hours = hour_range(job.start, job.end)
    state = state_dir(job.work_dir, job.dry_run)
    records = read_records(state, update_index=True)
    now = dt.datetime.now(dt.timezone.utc)
    pending = unfinished(job, all_hours, records)
    if not job.force and not job.dry_run:
        recent = hours_too_recent_to_migrate(pending, now)
        if recent:
            # Before anything runs or job.json is written: nothing of a refused job is kept.
            print(f"error: --end: {len(recent)} hour(s) to migrate ({_span(recent)}) are less "
                  f"than {MIGRATION_AGE.total_seconds() / 3600:.0f} hours old, and PostHog's "
                  "migration guide asks for events at least that old before a historical import. "
                  f"They become migratable from {_when(migratable_at(recent[-1]))} (the first "
                  f"from {_when(migratable_at(recent[0]))}). End the range earlier, rerun then, "
                  "or pass --force to migrate them now.", file=sys.stderr)
            return USAGE
    if job.force or not exists(job.path(jobs.JOB_FILE)):
        jobs.save(job)
    # Hours Amplitude cannot serve whole yet are not fetched at all: an early answer would be
    # recorded as empty or partial. They stay pending for a later run.
    deferred = hours_not_yet_exportable(pending, now) if job.source == "amplitude" else []
    todo = [h for h in pending if h not in set(deferred)]
    if job.limit_hours:
        todo = todo[:job.limit_hours]
    generated_ok = records.get(GENERATED, {}).get("status") == DONE
    started_at = jobs.utc_now()
    if deferred:
        LOG.warning("%d hour(s) (%s) are not exportable from Amplitude yet and stay pending; "
                    "rerun after %s", len(deferred), _span(deferred),
                    _when(exportable_at(deferred[-1])))
    if not todo and (generated_ok or deferred):
        LOG.info("no hour of %s can be migrated now; nothing to do (use --force to redo)",
                 job.job_name)
    else:
        LOG.info("job %s: %d of %d hours to migrate, work_dir %s", job.job_name, len(todo),
                 len(all_hours), job.work_dir)
        run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        units = elements_for(len(todo)) if job.source == "amplitude" else len(todo)
        chosen = local_worker_args(beam_args, units)
        if chosen:
            LOG.info("no Beam worker options given: running locally with %s", " ".join(chosen))
            beam_args = [*beam_args, *chosen]
        try:
            options = PipelineOptions(beam_args)
            pipeline = beam.Pipeline(options=options)
            build(pipeline, job, secrets, todo, all_hours, run_id, started_at)
            if submits_only(options):
                return _submitted(job, pipeline.run(), len(todo), len(all_hours))
            with Progress(state, todo, quiet=job.quiet):
                pipeline.run().wait_until_finish()
        except KeyboardInterrupt:
            return _interrupted(job)
        except Exception as exc:  # runners wrap worker errors; find ours behind them
            if _caused_by_ctrl_c(exc):
                return _interrupted(job)
            abort = find_abort(exc)
            if abort is None:
                return _crashed(job, run_id, exc)
            print(f"error: {abort}", file=sys.stderr)
            return ERROR
    report = build_report(job, all_hours, started_at, jobs.utc_now(), update_index=True)
    json_path, html_path = write_report(job, report)
    print(format_table(report))
    print(f"Report: {json_path} and {html_path}")
    # Events PostHog refused, or too large for it, are dead letters no rerun can deliver: they
    # are reported, like an hour's, but do not keep the job incomplete.
    undelivered = (report["hours"]["failed"] or report["rows_dead_lettered"].get("delivery_failed")
                   or report["generated_events_failed"].get("delivery_failed"))
    if undelivered:
        print("Some hours failed or some events were not delivered: rerun the same command to "
              "retry failed hours, or `python -m pipeline resend --work_dir "
              f"{job.work_dir}` to re-send dead-lettered deliveries.", file=sys.stderr)
        return INCOMPLETE
    return _hours_outcome(job, all_hours, todo, read_records(state))


def _caused_by_ctrl_c(exc: BaseException) -> bool:
    """Whether a runner's error is Ctrl-C reaching a DoFn: the in-process runner runs DoFns in
    this thread, and re-raises what interrupted one as its own error (sometimes only as text)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, KeyboardInterrupt) or str(exc).startswith("KeyboardInterrupt"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _interrupted(job: jobs.Job) -> int:
    # What was committed stays committed (see pipeline.ledger): a rerun resumes there.
    print(f"Interrupted. Hours committed so far stay done; rerun the same command (or "
          f"`python -m pipeline --work_dir {job.work_dir}`) to resume.", file=sys.stderr)
    return INTERRUPTED


def _hours_outcome(job: jobs.Job, all_hours: list[str], todo: list[str], records: dict) -> int:
    """Exit code and message for a run with nothing failed: all empty, hours left, or done."""
    empty_run = bool(todo) and all(status_of(records, h) == EMPTY for h in todo)
    empty_job = all(status_of(records, h) == EMPTY for h in all_hours)
    if (empty_run or empty_job) and not job.accept_empty:
        which = f"the {len(todo)} hour(s) this run fetched" if empty_run else \
            f"the job's {len(all_hours)} hour(s)"
        print(f"WARNING: every one of {which} came back empty: Amplitude answered \"no data\" "
              "(HTTP 404) for each, and nothing was migrated. A wrong --amplitude_url or "
              "--amplitude_region, another project's keys or a range outside the project's data "
              "(--start/--end are UTC upload hours) look the same. If the project really has no "
              "events there, confirm with --accept_empty.", file=sys.stderr)
        return ALL_EMPTY
    left = unfinished(dataclasses.replace(job, force=False), all_hours, records)
    if not left:
        return OK
    now = dt.datetime.now(dt.timezone.utc)
    early = hours_not_yet_exportable(left, now) if job.source == "amplitude" else []
    recheck = [h for h in left if status_of(records, h) == EMPTY]
    reasons = []
    if early:
        reasons.append(f"{len(early)} not exportable from Amplitude before "
                       f"{_when(exportable_at(early[-1]))}")
    if recheck:
        reasons.append(f"{len(recheck)} recorded empty less than "
                       f"{EMPTY_RECHECK.total_seconds() / 3600:.0f} hours after they ended, to be "
                       "fetched again")
    rest = len(left) - len(early) - len(recheck)
    if rest:
        reasons.append(f"{rest} not reached by this run"
                       + (f" (--limit_hours {job.limit_hours})" if job.limit_hours else ""))
    print(f"{len(left)} hour(s) left pending: {'; '.join(reasons)}. Run the same command again "
          f"(python -m pipeline --work_dir {job.work_dir}) to continue.", file=sys.stderr)
    return HOURS_PENDING


def submits_only(options: PipelineOptions) -> bool:
    """Whether ``pipeline.run()`` only hands the job over, so that nothing has run when it returns.

    Dataflow's Flex Template launcher runs this program with the launch's parameters plus
    ``--runner=DataflowRunner --template_location=<staging>/template_launches/<id>/job_object``:
    DataflowRunner then only writes the job description to that file, and the launcher submits
    it once this process has exited with 0 (a non-zero exit fails the launch). Run from a
    machine, DataflowRunner submits the job, which then runs on the service for hours. In both
    cases waiting here is pointless or impossible, and a report written now would show every
    hour as pending; ``status`` follows the job from its work_dir instead. Other runners (the
    direct runner, a portable job server) run the job to its end in ``wait_until_finish()``.
    """
    if options.view_as(GoogleCloudOptions).template_location:
        return True
    runner = options.view_as(StandardOptions).runner or ""
    # Beam accepts "DataflowRunner", "dataflow" or the class's dotted path. TestDataflowRunner
    # waits for the job itself, so it is not one of these.
    name = runner.rsplit(".", 1)[-1].lower().removesuffix("runner")
    return name == "dataflow"


def _submitted(job: jobs.Job, result, todo: int, total: int) -> int:
    """Submission only: say what was handed over and how to follow it; no report yet."""
    where = f" as Dataflow job {result.job_id()}" if getattr(result, "has_job", False) else ""
    print(f"Submitted {job.job_name}{where}: {todo} of {total} hours to migrate.")
    print(f"Follow it with `python -m pipeline status --work_dir {job.work_dir}`. Once the job "
          "has finished, run the same command again: it retries the hours that failed, or "
          "writes the report when every hour is done.")
    return OK


def _crashed(job: jobs.Job, run_id: str, exc: Exception) -> int:
    """An unexpected failure: one line on the terminal, the traceback in the work_dir.

    Runner tracebacks run to hundreds of lines and may quote an element; the file stays with
    the job's other data, under the user's control. What was committed before the failure stays
    committed: rerunning resumes from there.
    """
    path = job.path("errors", f"{run_id}.txt")
    try:
        write_atomically(path, "".join(traceback.format_exception(exc)).encode())
    except Exception:  # the work_dir itself may be what failed
        path = None
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    print(f"error: the run failed: {first[:300]}", file=sys.stderr)
    if path:
        print(f"The full error is in {path}. Rerun the same command to resume.", file=sys.stderr)
    return ERROR


def main() -> None:
    sys.exit(run())
