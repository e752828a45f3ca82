"""The benchmark's sandbox servers, each in a child process, and a watch on the sink's counts.

A sandbox started with ``python -m`` shares no GIL with the contender it serves, so a contender's
figures are its own.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

import requests

__all__ = ["KEYS", "Sandbox", "Sink", "Watch"]

# Keys the sandboxes accept; nothing here talks to anything but loopback.
KEYS = {"AMPLITUDE_API_KEY": "bench-amplitude-key",
        "AMPLITUDE_SECRET_KEY": "bench-amplitude-secret",
        "POSTHOG_API_KEY": "phc_bench_project_key"}
_URL = re.compile(r"https?://[^\s)]+")
_POLL_SECONDS = 0.1


class Sandbox:
    """A sandbox server in a child process; its URL is the first one it prints."""

    def __init__(self, *args: str):
        self._process = subprocess.Popen([sys.executable, "-m", *args], stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, text=True)
        line = self._process.stdout.readline()
        match = _URL.search(line)
        if not match:
            self._process.kill()
            self._process.wait()
            raise RuntimeError(f"python -m {args[0]} did not start: {line!r}")
        self.url = match.group(0)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc_info) -> None:
        self._process.terminate()
        self._process.wait()
        self._process.stdout.close()


class Sink(Sandbox):
    """``python -m sandbox.posthog`` appending what it accepts to ``record_path``; with
    ``latency_ms``, each request waits that long before it is handled (its "slow" fault on every
    request), as a distant PostHog would."""

    def __init__(self, record_path: str, latency_ms: float = 0):
        latency = ["--fault_rate", "1", "--faults", "slow",
                   "--slow_seconds", str(latency_ms / 1000)] if latency_ms else []
        super().__init__("sandbox.posthog", "--api_key", KEYS["POSTHOG_API_KEY"],
                         "--record_path", record_path, *latency)
        self.record_path = record_path
        self._session = requests.Session()

    def stats(self) -> dict[str, int]:
        return self._session.get(f"{self.url}/_sandbox/stats", timeout=10).json()

    def __exit__(self, *exc_info) -> None:
        self._session.close()
        super().__exit__(*exc_info)


class Watch:
    """Polls the sink while a contender runs: when its first batch and its last one arrived."""

    def __init__(self, sink: Sink):
        self._sink = sink
        self._stop = threading.Event()
        self.first: tuple[float, int] | None = None  # (time, events) when a batch was first seen
        self.last: tuple[float, int] = (time.perf_counter(), 0)  # at the last change seen
        self._thread = threading.Thread(target=self._run, name="sink-watch", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(_POLL_SECONDS):
            self._sample()

    def _sample(self) -> None:
        now, events = time.perf_counter(), self._sink.stats()["events"]
        if events and self.first is None:
            self.first = (now, events)
        if events != self.last[1]:
            self.last = (now, events)

    def __enter__(self) -> "Watch":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def figures(self, started: float) -> dict[str, float | None]:
        if self.first is None or self.last[0] <= self.first[0]:
            return {"startup_seconds": None, "events_per_second_steady": None}
        return {"startup_seconds": self.first[0] - started,
                "events_per_second_steady":
                    (self.last[1] - self.first[1]) / (self.last[0] - self.first[0])}
