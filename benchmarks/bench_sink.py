"""Events per second through ``WriteToPostHog`` into the capture sandbox, with no pacing.

The sandbox runs in its own process so that the CPU figure is the pipeline's alone: generating
the events (about 700 bytes of JSON each, shaped like translated Amplitude rows), serialising,
gzipping and posting them, and the runner's own overhead. Beam runs in-process (``FnApiRunner``,
what the DirectRunner uses for batch) and its start-up is part of the figure, as in a real job.
Run ``python -m benchmarks.bench_sink``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from typing import Any, Iterator

import apache_beam as beam
import requests
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from connectors.posthog import WriteToPostHog

__all__ = ["main", "measure_sink"]

_KEY = "phc_benchmark"
_SHARDS = 10


_PROPERTIES = {
    "$os": "iOS", "$os_version": "17.3.1", "$device_type": "Mobile", "$app_version": "5.2.0",
    "$lib": "aplistorical", "$geoip_disable": True, "city": "Lyon", "country": "France",
    "region": "Auvergne-Rhone-Alpes", "platform": "iOS", "track_title": "A fairly typical title",
    "artist": "Some Artist", "plan": "premium", "genres": ["pop", "rock"],
}


def _events(shard: int, count: int) -> Iterator[dict[str, Any]]:
    # Cheap to build (shared constant properties) so that the figure is the sink's, not this loop's.
    for n in range(shard * count, (shard + 1) * count):
        yield {
            "event": "Song Played",
            "distinct_id": f"user-{n % 5000}",
            "uuid": f"00000000-0000-4000-8000-{n:012x}",
            "timestamp": "2024-03-01T12:34:56.789000+00:00",
            "properties": {
                **_PROPERTIES, "$device_id": f"device-{n % 7000}",
                "$session_id": 1709296496789 + n // 30, "$insert_id": str(n),
                "$current_url": f"https://music.example.com/tracks/{n}",
                "amplitude_event_id": n, "amplitude_id": 10**11 + n,
                "duration_seconds": 200 + n % 100, "shuffle": n % 2 == 0,
                "playlist_id": f"pl-{n % 300}",
            },
        }


def measure_sink(n_events: int = 100_000, batch_size: int = 1000) -> dict[str, float]:
    """Send ``n_events`` through ``WriteToPostHog`` into a sandbox; return the figures."""
    per_shard = -(-n_events // _SHARDS)
    server = subprocess.Popen([sys.executable, "-m", "sandbox.posthog", "--api_key", _KEY],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = server.stdout.readline().split()[-1]
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        with beam.Pipeline(runner=FnApiRunner()) as pipeline:
            _ = (pipeline
                 | "Shards" >> beam.Create(range(_SHARDS))
                 | "Generate" >> beam.FlatMap(_events, per_shard)
                 | "Send" >> WriteToPostHog(url, _KEY, batch_size=batch_size))
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        stats = requests.get(f"{url}/_sandbox/stats", timeout=10).json()
    finally:
        server.terminate()
        # wait4 rather than Popen.wait: it also gives the sandbox's CPU time.
        _, _, sandbox_usage = os.wait4(server.pid, 0)
        server.returncode = 0
    sent = per_shard * _SHARDS
    if stats["events"] != sent:
        raise RuntimeError(f"the sandbox accepted {stats['events']} of {sent} events")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "events": sent,
        "requests": stats["requests"],
        "seconds": round(seconds, 3),
        "events_per_second": round(sent / seconds),
        "cpu_seconds": round(cpu, 3),
        "cpu_seconds_per_100k_events": round(cpu * 100_000 / sent, 3),
        "sandbox_cpu_seconds": round(sandbox_usage.ru_utime + sandbox_usage.ru_stime, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sink", description=__doc__)
    parser.add_argument("--events", type=int, default=100_000,
                        help="events to send (default 100000)")
    parser.add_argument("--batch_size", type=int, default=1000,
                        help="events per request (default 1000)")
    args = parser.parse_args(argv)
    figures = measure_sink(args.events, args.batch_size)
    print(f"WriteToPostHog → sandbox, no pacing: {figures['events']} events in "
          f"{figures['requests']} requests, {figures['seconds']} s, "
          f"{figures['events_per_second']} events/s, "
          f"{figures['cpu_seconds_per_100k_events']} CPU s per 100k events "
          f"(the sandbox used {figures['sandbox_cpu_seconds']} CPU s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
