"""The download phase of the Amplitude source: up to N export hours fetched at once per worker.

Amplitude takes seconds to prepare an export, so a worker that asks for one hour at a time spends
nearly all its time waiting. ``prefetch`` keeps ``concurrency`` hours downloading in threads while
the caller emits the hours already downloaded, and hands them back strictly in the order they were
asked for, so the source can still emit each hour's lines and then its marker, hour after hour.

Disk stays bounded by ``concurrency`` hours: an hour's download starts only once a slot is free,
and a slot is freed when the caller has finished with a downloaded hour (its temporary file is
deleted then). Memory stays flat because downloads stream to those files.

Amplitude's 429 answers apply to the project, not to one request: ``Throttle`` makes every
download of the worker wait out a 429's back-off, not only the request that received it.
"""

from __future__ import annotations

import collections
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, NamedTuple

__all__ = ["Downloaded", "RetryTally", "Throttle", "prefetch"]


class Throttle:
    """A worker-wide pause shared by its download threads: after a 429, nobody asks too early."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._not_before = 0.0

    def back_off(self, seconds: float) -> None:
        """No request of this worker starts within ``seconds`` from now."""
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)

    def wait(self) -> float:
        """Sleep until requests may start again; return the seconds slept."""
        slept = 0.0
        while True:
            with self._lock:
                delay = self._not_before - self._clock()
            if delay <= 0:
                return slept
            self._sleep(delay)
            slept += delay


class RetryTally:
    """Retry counts gathered in download threads, handed to Beam metrics in the bundle's thread.

    Beam's metric containers are per thread: a counter incremented in a pool thread is lost.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._retries = 0
        self._sleep_ms = 0

    def add(self, seconds: float) -> None:
        with self._lock:
            self._retries += 1
            self._sleep_ms += int(seconds * 1000)

    def take(self) -> tuple[int, int]:
        """(retries, milliseconds slept) since the last call."""
        with self._lock:
            counts = (self._retries, self._sleep_ms)
            self._retries = self._sleep_ms = 0
        return counts


class Downloaded(NamedTuple):
    hour: str
    result: object  # what ``download`` returned for the hour
    path: str  # local file the hour was downloaded to (may not exist when nothing was saved)


def prefetch(hours: Iterable[str], download: Callable[[str, str], object], pool: ThreadPoolExecutor,
             concurrency: int) -> Iterator[Downloaded]:
    """Yield each hour of ``hours`` downloaded, in the order of ``hours``.

    ``download(hour, path)`` runs in ``pool`` and saves the hour to the local file ``path``;
    ``hours`` is consumed lazily, one hour each time a slot frees up (so a caller may stop claiming
    hours at any point). The file is deleted when the caller asks for the next hour or closes the
    generator. An exception from ``download`` is raised here, at that hour's turn; the downloads
    still running are waited for (their files are removed) before it propagates.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    tmp = tempfile.mkdtemp(prefix="amplitude-export-")
    pending: collections.deque[tuple[str, str, Future]] = collections.deque()
    source = iter(hours)
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < concurrency:
                hour = next(source, None)
                if hour is None:
                    exhausted = True
                    break
                path = os.path.join(tmp, f"{hour}.zip")
                pending.append((hour, path, pool.submit(download, hour, path)))
            if not pending:
                return
            hour, path, future = pending.popleft()
            try:
                yield Downloaded(hour, future.result(), path)
            finally:
                _remove(path)
    finally:
        for _, _, future in pending:
            future.cancel()
        for _, _, future in pending:
            if not future.cancelled():
                future.exception()  # wait: a running download must not write into a removed dir
        shutil.rmtree(tmp, ignore_errors=True)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
