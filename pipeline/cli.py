"""``python -m pipeline [init|preview|status|resend|verify] [options]``: run and exit code.

The exit codes, the logging set-up and the search for an abort behind a runner's error live in
``pipeline.console``, shared with the other commands.
"""

from __future__ import annotations

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

from connectors.amplitude import hour_range, hours_not_yet_exportable
from connectors.files import configure_gcs_emulator, exists, write_atomically
from pipeline import job as jobs
from pipeline.build import build
from pipeline.console import (ERROR, INCOMPLETE, INTERRUPTED, OK, USAGE, find_abort,
                              setup_logging)
from pipeline.ledger import GENERATED, read_records, state_dir, status_of
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
        job, secrets = jobs.resolve(given)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    return migrate(job, secrets, beam_args)


def migrate(job: jobs.Job, secrets: jobs.Secrets, beam_args: list[str]) -> int:
    configure_gcs_emulator()
    all_hours = hour_range(job.start, job.end)
    if job.force or not exists(job.path(jobs.JOB_FILE)):
        jobs.save(job)
    state = state_dir(job.work_dir, job.dry_run)
    records = read_records(state)
    todo = [h for h in all_hours
            if job.force or status_of(records, h) not in (DONE, EMPTY)]
    if job.limit_hours:
        todo = todo[:job.limit_hours]
    generated_ok = records.get(GENERATED, {}).get("status") == DONE
    started_at = jobs.utc_now()
    if not todo and generated_ok:
        LOG.info("every hour of %s is already migrated; nothing to do (use --force to redo)",
                 job.job_name)
    else:
        if job.source == "amplitude":
            early = hours_not_yet_exportable(todo, dt.datetime.now(dt.timezone.utc))
            if early:
                LOG.warning("%d hour(s) from %s are less than 2 hours old or in the future: "
                            "Amplitude may not have them yet", len(early), early[0])
        LOG.info("job %s: %d of %d hours to migrate, work_dir %s", job.job_name, len(todo),
                 len(all_hours), job.work_dir)
        run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        chosen = local_worker_args(beam_args, len(todo))
        if chosen:
            LOG.info("no Beam worker options given: running locally with %s", " ".join(chosen))
            beam_args = [*beam_args, *chosen]
        try:
            options = PipelineOptions(beam_args)
            pipeline = beam.Pipeline(options=options)
            build(pipeline, job, secrets, todo, all_hours, run_id)
            if submits_only(options):
                return _submitted(job, pipeline.run(), len(todo), len(all_hours))
            with Progress(state, todo, quiet=job.quiet):
                pipeline.run().wait_until_finish()
        except KeyboardInterrupt:
            # What was committed stays committed (see pipeline.ledger): a rerun resumes there.
            print(f"Interrupted. Hours committed so far stay done; rerun the same command (or "
                  f"`python -m pipeline --work_dir {job.work_dir}`) to resume.", file=sys.stderr)
            return INTERRUPTED
        except Exception as exc:  # runners wrap worker errors; find ours behind them
            abort = find_abort(exc)
            if abort is None:
                return _crashed(job, run_id, exc)
            print(f"error: {abort}", file=sys.stderr)
            return ERROR
    report = build_report(job, all_hours, started_at, jobs.utc_now())
    json_path, html_path = write_report(job, report)
    print(format_table(report))
    print(f"Report: {json_path} and {html_path}")
    undelivered = (report["hours"]["failed"] or report["rows_dead_lettered"].get("delivery_failed")
                   or report["generated_events_failed"])
    if undelivered:
        print("Some hours failed or some events were not delivered: rerun the same command to "
              "retry failed hours, or `python -m pipeline resend --work_dir "
              f"{job.work_dir}` to re-send dead-lettered deliveries.", file=sys.stderr)
        return INCOMPLETE
    return OK


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
