"""Wires the stages into one Beam pipeline."""

from __future__ import annotations

import logging

import apache_beam as beam
import orjson

from connectors.amplitude import ReadFromAmplitudeExport, base_url_for
from connectors.files import ReadFromAmplitudeFiles
from connectors.posthog import WriteToPostHog
from pipeline.generated import GenerateEvents, RecordGenerated, WaitOn
from pipeline.job import Job, Secrets
from pipeline.ledger import CommitHours, RefuseUnassignedLetters, state_dir
from pipeline.pacing import Pacing, describe, plan
from transforms.records import HourMarker
from transforms.transform import EVENTS, TranslateToPostHog

_LOG = logging.getLogger("pipeline")

# The schema of <work_dir>/translated/*.avro (documented in docs/job-folder.md). Properties stay
# a JSON string: PostHog properties are free-form and Avro maps need one value type.
AVRO_SCHEMA = {
    "type": "record", "name": "PostHogEvent", "namespace": "aplistorical",
    "fields": [
        {"name": "uuid", "type": "string"},
        {"name": "event", "type": "string"},
        {"name": "distinct_id", "type": "string"},
        {"name": "timestamp", "type": "string"},
        {"name": "properties", "type": "string"},
    ],
}


def _avro_record(event: dict) -> dict:
    return {"uuid": event["uuid"], "event": event["event"],
            "distinct_id": str(event["distinct_id"]), "timestamp": event["timestamp"],
            "properties": orjson.dumps(event.get("properties") or {}).decode()}


def _tagged(event: dict, job_name: str) -> dict:
    """A generated event with the job's ``$import_job_id``, as translated events carry it."""
    return {**event, "properties": {**event.get("properties", {}), "$import_job_id": job_name}}


def _on_days(event: dict, days: frozenset) -> bool:
    return str(event.get("timestamp") or "")[:10] in days


def _events_of(element) -> list:
    """The events an element of TranslateToPostHog's main output carries (see its docstring)."""
    if type(element) is list:
        return element
    return [] if isinstance(element, HourMarker) else [element]


def _write_avro(events, job: Job, run_id: str, name: str):
    prefix = job.path("translated", run_id, name)
    return (events
            | f"{name}ToAvro" >> beam.Map(_avro_record)
            | f"Write{name}Avro" >> beam.io.WriteToAvro(prefix, schema=AVRO_SCHEMA,
                                                        file_name_suffix=".avro"))


def _sink(job: Job, secrets: Secrets, pacing: Pacing | None) -> WriteToPostHog:
    return WriteToPostHog(
        job.posthog_host, secrets.posthog_api_key, batch_size=job.batch_size,
        max_events_per_second=job.max_events_per_second,
        sleep_interval_ms=job.sleep_interval_ms, max_retry_seconds=job.max_retry_seconds,
        verify_tls=not job.insecure,
        shared_events_per_second=pacing.per_process if pacing else None)


def build(pipeline: beam.Pipeline, job: Job, secrets: Secrets, hours: list[str],
          all_hours: list[str], run_id: str, started_at: str | None = None,
          generated_days: frozenset | None = None) -> None:
    """Adds the migration of ``hours`` to ``pipeline``; generated events cover ``all_hours``.

    ``started_at`` (ISO UTC) is recorded with each hour as the time it was fetched after.
    ``generated_days`` (a repair, see ``pipeline.repair``): send only the generated events whose
    timestamp falls on one of these UTC days, and leave the job's generated record as it is.
    """
    state = state_dir(job.work_dir, job.dry_run)
    pacing = None if job.dry_run else plan(job.posthog_host, job.max_events_per_second,
                                           pipeline.options)
    if pacing:
        _LOG.info("%s", describe(pacing, job.posthog_host))
    if job.source == "amplitude":
        lines = pipeline | "ReadAmplitude" >> ReadFromAmplitudeExport(
            hours, api_key=secrets.amplitude_api_key, secret_key=secrets.amplitude_secret_key,
            base_url=base_url_for(job.amplitude_region, job.amplitude_url),
            preserve_dir=job.path("exports") if job.preserve_sources else None,
            max_attempts=job.amplitude_max_attempts,
            max_retry_seconds=job.amplitude_max_retry_seconds,
            request_timeout=job.amplitude_read_timeout,
            concurrency=job.amplitude_concurrency)
    else:
        lines = pipeline | "ReadFiles" >> ReadFromAmplitudeFiles(job.source_path, hours)

    translated = lines | "Translate" >> TranslateToPostHog(
        job.translation_settings(), facts_per_file=job.identify_mode == "per_file")
    events = translated[EVENTS]
    if job.dry_run or job.preserve_translations:
        _write_avro(events | "OnlyEvents" >> beam.FlatMap(_events_of), job, run_id, "events")
    if job.dry_run:
        markers = events | "OnlyMarkers" >> beam.Filter(lambda e: isinstance(e, HourMarker))
    else:
        written = events | "WriteToPostHog" >> _sink(job, secrets, pacing)
        markers = written.checkpoints
        # Letters travel on their hour's marker; one without an hour has nowhere to go.
        _ = written.failed | "RefuseUnassignedLetters" >> RefuseUnassignedLetters()
    # Dead letters reach the ledger on their hour's marker: see transforms.records.HourMarker.
    committed = markers | "CommitHours" >> CommitHours(state, started_at)

    generated = pipeline | "Generate" >> GenerateEvents(
        state, all_hours, committed, job.identify_mode, group_identify=job.group_identify,
        person_snapshot=job.person_snapshot)
    generated_events = generated.events | "TagGenerated" >> beam.Map(_tagged, job.job_name)
    snapshots = generated.snapshots | "TagSnapshots" >> beam.Map(_tagged, job.job_name)
    if generated_days is not None:
        generated_events = generated_events | "OnlyRepairedDays" >> beam.Filter(
            _on_days, generated_days)
        snapshots = snapshots | "OnlyRepairedDaysSnapshots" >> beam.Filter(
            _on_days, generated_days)
    if job.dry_run:
        _write_avro(generated_events, job, run_id, "generated")
        _write_avro(snapshots, job, run_id, "snapshots")
        failed = [pipeline | "NoFailures" >> beam.Create([])]
    else:
        failed = [(generated_events | "WriteGenerated" >> _sink(job, secrets, pacing)).failed]
        # Person snapshots must be the last $set PostHog ingests: see pipeline.generated.
        snapshots = snapshots | "AfterGenerated" >> WaitOn(failed[0])
        failed.append((snapshots | "WriteSnapshots" >> _sink(job, secrets, pacing)).failed)
    if generated_days is None:
        (generated_events, snapshots) | "RecordGenerated" >> RecordGenerated(
            state, failed, generated.identities, generated.complete)
