"""Amplitude Export API as a Beam source: one request per hour, hours spread across workers.

``ReadFromAmplitudeExport`` is a Splittable DoFn over tuples of hours to fetch (a day of hours per
element); its restriction is an ``OffsetRange`` of indexes into the tuple, split one hour per
restriction so a runner can hand each hour to a different worker. Each hour is asked for as
``start=H&end=H``: Amplitude's range is inclusive at both ends, so asking ``end=H+1`` would fetch
every following hour twice.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Iterator, Sequence
from urllib.parse import urlparse

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.metrics import Metrics
from apache_beam.transforms.core import RestrictionProvider

from connectors import archive
from connectors.amplitude_http import ExportClient
from connectors.emit import emit_hour
from connectors.files import configure_gcs_emulator, write_atomically
from connectors.hours import hour_range, hours_not_yet_exportable, parse_hour
from transforms.records import DONE, EMPTY, HourMarker, LineChunk

__all__ = [
    "ReadFromAmplitudeExport",
    "base_url_for",
    "hour_range",
    "hours_not_yet_exportable",
    "parse_hour",
]

_LOG = logging.getLogger(__name__)
_METRICS = "amplitude"
_REGIONS = {"us": "https://amplitude.com", "eu": "https://analytics.eu.amplitude.com"}
# Every restriction travels with its element, so one element holding a year of hours would be
# copied 8760 times after the initial split; a day per element keeps that copy small.
_HOURS_PER_ELEMENT = 24


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


class _OneHourPerRestriction(RestrictionProvider):
    def initial_restriction(self, hours):
        return OffsetRange(0, len(hours))

    def create_tracker(self, restriction):
        return OffsetRestrictionTracker(restriction)

    def split(self, hours, restriction):
        for index in range(restriction.start, restriction.stop):
            yield OffsetRange(index, index + 1)

    def restriction_size(self, hours, restriction):
        return restriction.size()


class _ReadExportHours(beam.DoFn):
    """tuple of hours -> for each claimed hour its LineChunks, then its HourMarker."""

    def __init__(self, base_url: str, keys: _Keys, preserve_dir: str | None, client_options: dict):
        self._base_url = base_url
        self._keys = keys
        self._preserve_dir = preserve_dir
        self._client_options = client_options
        self._client: ExportClient | None = None
        self._fetched = Metrics.counter(_METRICS, "hours_fetched")
        self._empty = Metrics.counter(_METRICS, "hours_empty")
        self._failed = Metrics.counter(_METRICS, "hours_failed")
        self._bytes = Metrics.counter(_METRICS, "export_bytes")
        self._rows = Metrics.counter(_METRICS, "rows_read")
        self._retries = Metrics.counter(_METRICS, "http_retries")
        self._retry_sleep_ms = Metrics.counter(_METRICS, "retry_sleep_ms")

    def setup(self):
        configure_gcs_emulator()
        self._client = ExportClient(self._base_url, self._keys.api_key, self._keys.secret_key,
                                    on_retry=self._count_retry, **self._client_options).open()

    def teardown(self):
        if self._client is not None:
            self._client.close()

    def _count_retry(self, seconds: float) -> None:
        self._retries.inc()
        self._retry_sleep_ms.inc(int(seconds * 1000))

    def process(self, hours, tracker=beam.DoFn.RestrictionParam(_OneHourPerRestriction())):
        restriction = tracker.current_restriction()
        for index in range(restriction.start, restriction.stop):
            if not tracker.try_claim(index):
                return
            yield from self._read_hour(hours[index])

    def _read_hour(self, hour: str) -> Iterator[LineChunk | HourMarker]:
        with tempfile.TemporaryDirectory(prefix="amplitude-export-") as tmp:
            dest = os.path.join(tmp, f"{hour}.zip")
            # The client validates every zip and gzip CRC of the download before returning DONE,
            # and retries inside that call. So no line is emitted until the whole hour is known
            # good, and a retry never has to guess which lines an earlier attempt already emitted
            # (a re-export is not guaranteed to split rows into the same parts). Reading the
            # archive twice costs a second decompression, which is cheap next to delivery.
            result = self._client.fetch(hour, dest)
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
            if self._preserve_dir:
                write_atomically(FileSystems.join(self._preserve_dir, f"{hour}.zip"),
                                 _file_chunks(dest))
            self._fetched.inc()
            yield from emit_hour(hour, archive.iter_lines(dest, archive.ZIP), self._rows.inc)


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
    retry bounds; ``detail`` says which). A FAILED hour emits no line. HTTP 401/403 raises ``AuthenticationError`` and stops the
    run. With ``preserve_dir``, each downloaded hour is also kept as
    ``<preserve_dir>/<YYYYMMDDTHH>.zip`` for replay with ``ReadFromAmplitudeFiles``.

    Each hour is downloaded to a local temporary file (workers need disk for the largest hour
    they read at once, up to Amplitude's 4 GB limit), never held in memory.
    """

    def __init__(self, hours: Sequence[str], *, api_key: str, secret_key: str, base_url: str,
                 preserve_dir: str | None = None, max_attempts: int = 8,
                 max_retry_seconds: float = 900.0, request_timeout: float = 300.0,
                 backoff_base: float = 2.0, backoff_cap: float = 120.0):
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
                self._base_url, self._keys, self._preserve_dir, self._client_options)))
