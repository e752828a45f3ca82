"""The default pace to PostHog Cloud: 10,000 events a minute for the whole job."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from connectors.errors import MigrationAbort
from connectors.posthog_pacing import shared_bucket
from pipeline.pacing import CLOUD_EVENTS_PER_MINUTE, Pacing, describe, plan
from sandbox.generate import generate_rows_by_hour
from sandbox.posthog import PostHogCaptureServer
from tests.e2e import KEYS, run_cli

RATE = CLOUD_EVENTS_PER_MINUTE / 60


@pytest.mark.parametrize("host", ["https://us.i.posthog.com", "https://eu.i.posthog.com/"])
def test_posthog_cloud_is_paced_job_wide_by_default(host):
    assert plan(host, None, PipelineOptions([])) == Pacing(RATE, 1)
    two = PipelineOptions(["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    assert plan(host, None, two).per_process == pytest.approx(RATE / 2)


@pytest.mark.parametrize("host, rate", [("https://us.i.posthog.com", 500.0),
                                        ("https://posthog.example.com", None),
                                        ("http://127.0.0.1:8000", None)])
def test_an_explicit_rate_or_another_host_is_not_paced_by_default(host, rate):
    assert plan(host, rate, PipelineOptions([])) is None


def test_dataflow_shares_the_rate_among_its_sdk_processes():
    options = PipelineOptions(["--runner=DataflowRunner", "--max_num_workers=3",
                               "--worker_machine_type=e2-standard-4"])
    assert plan("https://us.i.posthog.com", None, options).processes == 12
    one = PipelineOptions(["--runner=DataflowRunner", "--max_num_workers=3",
                           "--experiments=no_use_multiple_sdk_containers"])
    assert plan("https://us.i.posthog.com", None, one).processes == 3
    with pytest.raises(MigrationAbort, match="--max_num_workers"):
        plan("https://us.i.posthog.com", None, PipelineOptions(["--runner=DataflowRunner"]))


def test_the_start_message_gives_the_rate_and_the_time_it_takes():
    text = describe(Pacing(RATE, 2), "https://eu.i.posthog.com")
    assert "eu.i.posthog.com is PostHog Cloud" in text and "10,000 events a minute" in text
    assert "shared by 2 worker processes" in text and "1 h 40 min" in text
    assert "--max_events_per_second" in text and "posthog.com/docs/migrate" in text


def test_the_sinks_of_a_process_share_one_bucket():
    assert shared_bucket(12.5) is shared_bucket(12.5)
    assert shared_bucket(12.5) is not shared_bucket(25.0)


def test_a_job_to_posthog_cloud_with_two_workers_keeps_to_the_rate(tmp_path):
    """The real CLI, its PostHog host us.i.posthog.com reached through an HTTP proxy that is the
    sandbox: at most 10,000 events a minute arrive, from both worker processes together."""
    folder = tmp_path / "exports"
    folder.mkdir()
    lines: dict[str, list[bytes]] = {}
    for hour, line in generate_rows_by_hour(900, "20240305T00", 4, seed=3, bad_share=0):
        lines.setdefault(hour, []).append(line)
    for hour, rows in lines.items():
        (folder / f"{hour}.jsonl").write_bytes(b"\n".join(rows) + b"\n")
    with PostHogCaptureServer(KEYS["POSTHOG_API_KEY"]) as sink:
        code, _, err = run_cli(
            "--start", "20240305T00", "--end", "20240305T03", "--work_dir",
            str(tmp_path / "job"), "--source", "files", "--source_path", str(folder / "*.jsonl"),
            "--posthog_host", "http://us.i.posthog.com", "--batch_size", "50",
            "--direct_running_mode=multi_processing", "--direct_num_workers=2",
            # Beam's workers talk gRPC to the runner on loopback: that stays direct.
            env={"HTTP_PROXY": sink.url, "http_proxy": sink.url,
                 "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"},
            timeout=180)
        log = [entry for entry in sink.request_log if entry["status"] == 200]
    assert code == 0, err
    assert "us.i.posthog.com is PostHog Cloud" in err and "shared by 2 worker processes" in err
    events = sum(entry["events"] for entry in log)
    assert events > 900
    span = log[-1]["received_at"] - log[0]["received_at"]
    # A bucket holds one second's worth at start; one more second covers request jitter.
    assert events <= RATE * (span + 2), (events, span)
