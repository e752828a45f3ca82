"""The default pace of a migration to PostHog Cloud: 10,000 events a minute for the whole job.

PostHog's migration guide (https://posthog.com/docs/migrate) asks to be contacted before
migrating more than 10k events per minute (or more than 20M events), to avoid being rate-limited.
A job whose ``--posthog_host`` is PostHog Cloud and that gives no ``--max_events_per_second``
keeps to that rate job-wide: each worker process gets an equal share, and the sinks of one
process share one token bucket. ``--max_events_per_second`` (once PostHog agreed to a rate) lifts
it; self-hosted instances and the sandbox are not paced unless asked.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlparse

from apache_beam.options.pipeline_options import (DebugOptions, DirectOptions, PipelineOptions,
                                                  PortableOptions, StandardOptions,
                                                  WorkerOptions)

from connectors.errors import MigrationAbort

__all__ = ["CLOUD_EVENTS_PER_MINUTE", "CLOUD_HOSTS", "Pacing", "describe", "plan"]

CLOUD_EVENTS_PER_MINUTE = 10_000
CLOUD_HOSTS = frozenset({"us.i.posthog.com", "eu.i.posthog.com"})


class Pacing(NamedTuple):
    job_events_per_second: float
    processes: int  # worker processes that share it

    @property
    def per_process(self) -> float:
        return self.job_events_per_second / self.processes


def _processes(options: PipelineOptions) -> int:
    """How many worker processes send at once under these options' runner."""
    runner = (options.view_as(StandardOptions).runner or "DirectRunner").rsplit(".", 1)[-1]
    name = runner.lower().removesuffix("runner")
    if name in ("direct", "bundlebaseddirect", ""):
        direct = options.view_as(DirectOptions)
        multi = direct.direct_running_mode == "multi_processing"
        return max(1, direct.direct_num_workers or 1) if multi else 1
    if name == "dataflow":
        workers = options.view_as(WorkerOptions)
        count = workers.max_num_workers or workers.num_workers
        if not count:
            raise MigrationAbort(
                "--max_num_workers: required to pace a migration to PostHog Cloud job-wide "
                f"({CLOUD_EVENTS_PER_MINUTE:,} events a minute, shared by the workers), or give "
                "--max_events_per_second once PostHog agreed to a rate", flag="--max_num_workers")
        # Dataflow starts one SDK process per vCPU unless told to use one per worker; its
        # default batch machine has one vCPU.
        experiments = options.view_as(DebugOptions).experiments or []
        if "no_use_multiple_sdk_containers" in experiments:
            return count
        machine = workers.machine_type or "n1-standard-1"
        vcpus = machine.rsplit("-", 1)[-1]
        return count * (int(vcpus) if vcpus.isdigit() else 1)
    parallelism = getattr(options.view_as(PortableOptions), "sdk_worker_parallelism", None)
    flink = options.get_all_options().get("parallelism")
    return max(1, int(flink or parallelism or 1))


def plan(host: str, max_events_per_second: float | None,
         options: PipelineOptions) -> Pacing | None:
    """The job-wide pacing a run gets by default, or None when it is not paced by default."""
    if max_events_per_second is not None or urlparse(host).hostname not in CLOUD_HOSTS:
        return None
    return Pacing(CLOUD_EVENTS_PER_MINUTE / 60, _processes(options))


def _duration(seconds: float) -> str:
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def describe(pacing: Pacing, host: str, events: int | None = None) -> str:
    """What the run says at start: the rate, who shares it, and how long that takes."""
    rate = pacing.job_events_per_second
    per = (f", shared by {pacing.processes} worker processes ({pacing.per_process:.1f}/s each)"
           if pacing.processes > 1 else "")
    took = (f"this job's {events:,} rows take about {_duration(events / rate)}" if events
            else f"a million events take about {_duration(1e6 / rate)}, 20 million "
                 f"{_duration(2e7 / rate)}")
    return (f"{urlparse(host).hostname} is PostHog Cloud: sending at most "
            f"{CLOUD_EVENTS_PER_MINUTE:,} events a minute ({rate:.1f}/s) for the whole job{per}, "
            "as PostHog's migration guide (posthog.com/docs/migrate) asks without prior "
            f"agreement. At this rate {took}. Once PostHog agreed to a higher rate, give it "
            "with --max_events_per_second.")
