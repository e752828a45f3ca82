"""Amplitude Export API as a Beam source: one request per hour, hours spread across workers.

``ReadFromAmplitudeExport`` is a Splittable DoFn over tuples of hours to fetch (a day of hours per
element); its restriction is an ``OffsetRange`` of indexes into the tuple. Runners spread the
elements over workers, and each worker keeps ``concurrency`` hours of its element downloading at
once while it emits the hours already downloaded, in order. Each hour is asked for as
``start=H&end=H``: Amplitude's range is inclusive at both ends, so asking ``end=H+1`` would fetch
every following hour twice.
"""

from __future__ import annotations

import logging
import queue
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence
from urllib.parse import urlparse

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.metrics import Metrics
from apache_beam.transforms.core import RestrictionProvider

from connectors import archive
from connectors.amplitude_http import ExportClient, FetchResult
from connectors.amplitude_pool import RetryTally, Throttle, prefetch
from connectors.emit import emit_hour
from connectors.files import configure_gcs_emulator, write_atomically
from connectors.hours import hour_range, hours_not_yet_exportable, parse_hour
from transforms.records import DONE, EMPTY, HourMarker, LineChunk

__all__ = [
    "ReadFromAmplitudeExport",
    "base_url_for",
    "elements_for",
    "hour_range",
    "hours_not_yet_exportable",
    "parse_hour",
]

_LOG = logging.getLogger(__name__)
_METRICS = "amplitude"
_REGIONS = {"us": "https://amplitude.com", "eu": "https://analytics.eu.amplitude.com"}
# Every restriction travels with its element, so one element holding a year of hours would be
# copied for every split a runner makes; a day per element keeps that copy small.
_HOURS_PER_ELEMENT = 24


def elements_for(hours: int) -> int:
    """How many elements ``ReadFromAmplitudeExport`` makes of ``hours`` hours: the units of work
    a runner that does not split restrictions (the DirectRunner) can hand to different workers."""
    return -(-hours // _HOURS_PER_ELEMENT)


def base_url_for(region: str = "us", url: str | None = None) -> str:
    """The Export API host: ``url`` when given (``--amplitude_url``), else the ``region``'s."""
    if url:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("--amplitude_url must be an http(s) URL such as https://amplitude.com")
        if parsed.username or parsed.password:
            raise ValueError("--amplitude_url must not contain credentials: use "
                             "--amplitude_api_key and --amplitude_secret_key")
        return url.rstrip("/")
    key = (region or "").strip().lower()
    if key not in _REGIONS:
        raise ValueError(f"--amplitude_region must be one of {', '.join(_REGIONS)}")
    return _REGIONS[key]


class _Keys:
    """Holds the key pair so that no repr, log or error message can show it."""

    def __init__(self, api_key: str, secret_key: str):
        self.api_key = api_key
        self.secret_key = secret_key

    def __repr__(self) -> str:
        return "_Keys(***)"


class _DayPerRestriction(RestrictionProvider):
    """One restriction per element (a day of hours), so that one DoFn call keeps several of its
    hours downloading at once; runners still spread the days over workers, and a runner that
    splits dynamically (Dataflow) can take the unclaimed hours of a day to another worker."""

    def initial_restriction(self, hours):
        return OffsetRange(0, len(hours))

    def create_tracker(self, restriction):
        return OffsetRestrictionTracker(restriction)

    def split(self, hours, restriction):
        yield restriction

    def restriction_size(self, hours, restriction):
        return restriction.size()


class _ReadExportHours(beam.DoFn):
    """tuple of hours -> for each claimed hour its LineChunks, then its HourMarker.

    Two phases: downloads of up to ``concurrency`` claimed hours run at once in a thread pool
    (``connectors.amplitude_pool.prefetch``), and ``_emit_hour`` emits the downloaded hours one
    after the other, in the order they were claimed. An hour is claimed before its download
    starts, so an hour split off by the runner is never fetched here.
    """

    def __init__(self, base_url: str, keys: _Keys, preserve_dir: str | None, client_options: dict,
                 concurrency: int = 1):
        self._base_url = base_url
        self._keys = keys
        self._preserve_dir = preserve_dir
        self._client_options = client_options
        self._concurrency = concurrency
        self._clients: queue.Queue | None = None
        self._opened: list[ExportClient] = []
        self._pool: ThreadPoolExecutor | None = None
        self._tally = RetryTally()
        self._fetched = Metrics.counter(_METRICS, "hours_fetched")
        self._empty = Metrics.counter(_METRICS, "hours_empty")
        self._failed = Metrics.counter(_METRICS, "hours_failed")
        self._bytes = Metrics.counter(_METRICS, "export_bytes")
        self._rows = Metrics.counter(_METRICS, "rows_read")
        self._retries = Metrics.counter(_METRICS, "http_retries")
        self._retry_sleep_ms = Metrics.counter(_METRICS, "retry_sleep_ms")

    def setup(self):
        configure_gcs_emulator()
        throttle = Throttle()
        self._tally = RetryTally()
        # One client (one HTTP session) per download thread: a requests.Session is not
        # thread-safe. Threads borrow a client for the length of one hour's download.
        self._clients = queue.Queue()
        for _ in range(self._concurrency):
            client = ExportClient(self._base_url, self._keys.api_key, self._keys.secret_key,
                                  on_retry=self._tally.add, throttle=throttle,
                                  keep_bytes=archive.KEEP_BYTES // self._concurrency,
                                  **self._client_options).open()
            self._opened.append(client)
            self._clients.put(client)
        self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="amplitude-export")

    def teardown(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        for client in self._opened:
            client.close()
        self._opened = []

    def process(self, hours, tracker=beam.DoFn.RestrictionParam(_DayPerRestriction())):
        restriction = tracker.current_restriction()

        def claimed() -> Iterator[str]:
            for index in range(restriction.start, restriction.stop):
                if not tracker.try_claim(index):
                    return
                yield hours[index]

        for hour, result, path in prefetch(claimed(), self._download, self._pool,
                                           self._concurrency):
            retries, slept_ms = self._tally.take()
            self._retries.inc(retries)
            self._retry_sleep_ms.inc(slept_ms)
            yield from self._emit_hour(hour, result, path)

    def _download(self, hour: str, dest: str) -> FetchResult:
        """Runs in a download thread: fetch (with retries) and validate the hour, then preserve it.

        The client validates every zip and gzip CRC of the download before returning DONE, and
        retries inside that call. So no line is emitted until the whole hour is known good, and a
        retry never has to guess which lines an earlier attempt already emitted (a re-export is
        not guaranteed to split rows into the same parts).
        """
        client = self._clients.get()
        try:
            result = client.fetch(hour, dest)
        finally:
            self._clients.put(client)
        if result.status == DONE and self._preserve_dir:
            write_atomically(FileSystems.join(self._preserve_dir, f"{hour}.zip"),
                             _file_chunks(dest))
        return result

    def _emit_hour(self, hour: str, result: FetchResult,
                   path: str) -> Iterator[LineChunk | HourMarker]:
        """The downloaded hour's lines from the archive at ``path`` in chunks, then its marker."""
        if result.status == EMPTY:
            self._empty.inc()
            yield HourMarker(hour, EMPTY, None, {"rows_read": 0})
            return
        if result.status != DONE:
            self._failed.inc()
            _LOG.warning("Amplitude export hour %s failed: %s", hour, result.detail)
            yield HourMarker(hour, result.status, result.detail, {"rows_read": 0})
            return
        self._bytes.inc(result.size)
        self._fetched.inc()
        lines = (archive.kept_lines(result.kept) if result.kept is not None
                 else archive.iter_lines(path, archive.ZIP))
        yield from emit_hour(hour, lines, self._rows.inc)


def _file_chunks(path: str, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            yield chunk


class ReadFromAmplitudeExport(beam.PTransform):
    """Fetch hours from Amplitude's Export API: ``PBegin -> PCollection[LineChunk | HourMarker]``.

    For every hour in ``hours`` (YYYYMMDDTHH or YYYY-MM-DDTHH, UTC by ``server_upload_time``): its
    rows in natural part order, in ``LineChunk``s (see ``connectors.emit``), then exactly one
    ``HourMarker`` with status DONE, EMPTY (Amplitude has no data: HTTP 404) or FAILED (HTTP 400
    for an hour over the 4 GB export limit, an unexpected status, or transient errors beyond the
    retry bounds; ``detail`` says which). A FAILED hour emits no line. HTTP 401/403 raises
    ``AuthenticationError`` and stops the run. With ``preserve_dir``, each downloaded hour is
    also kept as ``<preserve_dir>/<YYYYMMDDTHH>.zip`` for replay with ``ReadFromAmplitudeFiles``.

    Each worker downloads up to ``concurrency`` hours at once while it emits the hours already
    downloaded, in order. Each hour goes to a local temporary file, never held in memory, so a
    worker needs disk for its ``concurrency`` largest hours at once (up to Amplitude's 4 GB limit
    each). A 429 pauses every download of the worker for its back-off.
    """

    def __init__(self, hours: Sequence[str], *, api_key: str, secret_key: str, base_url: str,
                 preserve_dir: str | None = None, max_attempts: int = 8,
                 max_retry_seconds: float = 900.0, request_timeout: float = 300.0,
                 backoff_base: float = 2.0, backoff_cap: float = 120.0, concurrency: int = 4):
        super().__init__()
        if isinstance(hours, str):
            raise ValueError("hours must be a sequence of hours, not one string")
        self._hours = tuple(sorted({parse_hour(h) for h in hours}))
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("--amplitude_api_key (or AMPLITUDE_API_KEY) is required")
        if not isinstance(secret_key, str) or not secret_key.strip():
            raise ValueError("--amplitude_secret_key (or AMPLITUDE_SECRET_KEY) is required")
        self._base_url = base_url_for(url=base_url) if base_url else base_url_for()
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if max_retry_seconds < 0 or backoff_base < 0 or backoff_cap < 0:
            raise ValueError("max_retry_seconds, backoff_base and backoff_cap must not be negative")
        if request_timeout <= 0:
            raise ValueError("request_timeout must be positive")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"--amplitude_concurrency must be at least 1, got {concurrency!r}")
        self._concurrency = concurrency
        self._keys = _Keys(api_key, secret_key)
        self._preserve_dir = preserve_dir or None
        self._client_options = dict(max_attempts=max_attempts, max_retry_seconds=max_retry_seconds,
                                    request_timeout=request_timeout, backoff_base=backoff_base,
                                    backoff_cap=backoff_cap)

    def expand(self, pbegin):
        return (
            pbegin
            | "Hours" >> beam.Create([self._hours[i:i + _HOURS_PER_ELEMENT]
                                      for i in range(0, len(self._hours), _HOURS_PER_ELEMENT)])
            | "FetchHours" >> beam.ParDo(_ReadExportHours(
                self._base_url, self._keys, self._preserve_dir, self._client_options,
                self._concurrency)))
