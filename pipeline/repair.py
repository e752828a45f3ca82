"""``verify --repair``: re-send what fed the days PostHog holds too few events of.

The facts know which hours' rows fell on which day, so a repair re-reads only those hours, from
the job's preserved exports when it kept them (``--preserve_sources``) or else from its source,
and sends their events again with the same uuids. Their events of other days go again too;
PostHog deduplicates them by uuid. The generated events of the short days are sent again as well
(the person snapshots last, as in the job). The repaired hours' ledger records, facts and dead
letters are rewritten as a rerun of those hours would, and ``ledger/repairs.json`` keeps the
history of repairs, which the report shows.
"""

from __future__ import annotations

import dataclasses
import time
import uuid

import apache_beam as beam
import orjson
from apache_beam.options.pipeline_options import PipelineOptions

from connectors.amplitude import hour_range
from connectors.errors import MigrationAbort
from connectors.files import exists, read_bytes
from pipeline import job as jobs
from pipeline.build import build
from pipeline.console import find_abort
from pipeline.ledger import LEDGER, hour_path, save_record

__all__ = ["REPAIRS", "read_repairs", "repair"]

REPAIRS = "repairs"  # ledger/repairs.json: {"hour": "repairs", "history": [...]}


def read_repairs(work_dir: str) -> list[dict]:
    path = hour_path(work_dir, LEDGER, REPAIRS)
    return orjson.loads(read_bytes(path)).get("history", []) if exists(path) else []


def _source_for(job: jobs.Job, hours: list[str]) -> jobs.Job:
    """The job reading its preserved exports when every hour to repair has one."""
    if job.source == "amplitude" and all(exists(job.path("exports", f"{h}.zip")) for h in hours):
        return dataclasses.replace(job, source="files", source_path=job.path("exports", "*.zip"))
    return job


def repair(job: jobs.Job, secrets: jobs.Secrets, sent, short_days: list[str],
           beam_args: list[str]) -> dict:
    """Re-sends the hours behind ``short_days`` and their generated events; returns the entry
    added to the repair history."""
    hours = sorted({h for day in short_days for h in sent.hours_of_day.get(day, ())})
    generated_days = frozenset(d for d in short_days if d in sent.generated_days)
    source_job = _source_for(job, hours)
    if source_job.source == "amplitude" and not (secrets.amplitude_api_key
                                                 and secrets.amplitude_secret_key):
        raise MigrationAbort("--amplitude_api_key: the repair re-reads hours from Amplitude "
                             "(no preserved exports); give the Amplitude keys (flags or "
                             "AMPLITUDE_API_KEY / AMPLITUDE_SECRET_KEY)", "--amplitude_api_key")
    run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    entry = {"at": jobs.utc_now(), "run_id": run_id, "short_days": list(short_days),
             "hours": hours, "generated_days": sorted(generated_days),
             "source": "preserved exports" if source_job is not job else job.source}
    try:
        pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
        build(pipeline, source_job, secrets, hours, hour_range(job.start, job.end), run_id,
              started_at=entry["at"], generated_days=generated_days)
        pipeline.run().wait_until_finish()
    except Exception as exc:  # runners wrap worker errors; find ours behind them
        abort = find_abort(exc)
        if abort is None:
            raise
        raise abort if isinstance(abort, MigrationAbort) else MigrationAbort(abort) from None
    history = read_repairs(job.work_dir) + [entry]
    save_record(job.work_dir, {"hour": REPAIRS, "status": "done", "counts": {},
                               "detail": None, "history": history})
    return entry
