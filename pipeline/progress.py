"""Live progress, fed from the ledger so it works the same for a local or a remote runner."""

from __future__ import annotations

import logging
import sys
import threading
import time

import orjson
from apache_beam.io.filesystems import FileSystems

from connectors.files import read_bytes
from pipeline.job import join
from pipeline.ledger import LEDGER

LOG = logging.getLogger("pipeline.progress")
REFRESH_SECONDS = 1.0


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Polls ``<state>/ledger`` in a thread while the pipeline runs.

    On a terminal it redraws one status line; otherwise it logs one line per completed hour.
    Only ledger files it has not read yet are read, so a long job on Cloud Storage costs one
    listing per refresh.
    """

    def __init__(self, state: str, hours: list[str], quiet: bool = False, stream=None):
        self._pattern = join(state, LEDGER, "*.json")
        self._hours = set(hours)
        self._stream = stream or sys.stderr
        self._live = not quiet and self._stream.isatty()
        self._log_hours = not quiet and not self._live
        self._seen: dict[str, tuple] = {}  # path -> (size, mtime) when read
        self._rows = self._sent = self._done = 0
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def __enter__(self):
        self._poll(initial=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._poll()
        if self._live:
            self._draw()
            self._stream.write("\n")
            self._stream.flush()

    def _loop(self):
        while not self._stop.wait(REFRESH_SECONDS):
            try:
                self._poll()
            except Exception as exc:  # a flaky listing must not end the run
                LOG.debug("progress poll failed: %s", exc)
            if self._live:
                self._draw()

    def _poll(self, initial: bool = False):
        matches = FileSystems.match([self._pattern])[0].metadata_list
        for match in matches:
            version = (match.size_in_bytes, match.last_updated_in_seconds)
            if self._seen.get(match.path) == version:
                continue
            self._seen[match.path] = version
            if initial:
                continue  # records from before this run: not read, they count for nothing here
            record = orjson.loads(read_bytes(match.path))
            if record["hour"] not in self._hours:
                continue
            counts = record["counts"]
            self._done += 1
            self._rows += counts.get("rows_read", 0)
            self._sent += counts.get("events_sent", 0)
            if self._log_hours:
                LOG.info("hour %s %s: %d rows read, %d events sent (%d/%d hours)",
                         record["hour"], record["status"], counts.get("rows_read", 0),
                         counts.get("events_sent", 0), self._done, len(self._hours))

    def _draw(self):
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = self._sent / elapsed
        remaining = len(self._hours) - self._done
        eta = _duration(elapsed / self._done * remaining) if self._done else "--:--:--"
        line = (f"hours {self._done}/{len(self._hours)} | rows read {self._rows:,} | "
                f"events sent {self._sent:,} | {rate:,.0f} events/s | "
                f"elapsed {_duration(elapsed)} | ETA {eta}")
        self._stream.write("\r\033[K" + line)
        self._stream.flush()
