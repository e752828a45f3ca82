"""Dead letters with no hour on the main path stop the run instead of vanishing."""

import uuid

import apache_beam as beam
import pytest
from apache_beam.testing import test_pipeline

from connectors.posthog import WriteToPostHog
from pipeline import job as jobs
from pipeline.build import build
from pipeline.cli import find_abort
from pipeline.ledger import RefuseUnassignedLetters
from sandbox.posthog import PostHogCaptureServer
from transforms.records import HourMarker

KEY = "phc_unassigned_test_key"


def event(n, **extra):
    return {"event": "Page Viewed", "distinct_id": f"user-{n}", "uuid": str(uuid.uuid4()),
            "properties": {"n": n, **extra}}


def test_dead_letters_with_no_hour_fail_loudly_instead_of_being_dropped():
    # Before: such letters left on the main sink's `failed` output, which the pipeline did not
    # consume: nothing recorded them and the run ended as if they had been delivered.
    marker = HourMarker("20240101T00", "done", counts={"events": 1})
    too_large = event(2, blob="x" * 5000)  # after the last marker of the bundle: hour=None
    with PostHogCaptureServer(KEY) as server:
        with pytest.raises(Exception) as raised:
            with test_pipeline.TestPipeline() as pipeline:
                written = (pipeline
                           | beam.Create([event(1), marker, too_large], reshuffle=False)
                           | WriteToPostHog(server.url, KEY, max_event_bytes=1000))
                _ = written.failed | RefuseUnassignedLetters()
    abort = find_abort(raised.value)
    assert abort is not None
    assert "1 dead letter" in str(abort) and "event_too_large" in str(abort)


def test_the_job_pipeline_routes_the_main_sinks_letters_through_the_check(tmp_path):
    job = jobs.Job(start="20240101T00", end="20240101T00", job_name="j",
                   work_dir=str(tmp_path), source="files", source_path=str(tmp_path / "*.json"))
    pipeline = beam.Pipeline()
    build(pipeline, job, jobs.Secrets(None, None, "phc_x"), ["20240101T00"], ["20240101T00"],
          "run")
    labels = [part.full_label for part in pipeline.transforms_stack[0].parts]
    assert "RefuseUnassignedLetters" in labels
