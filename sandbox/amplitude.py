"""A local stand-in for Amplitude's Export API, for tests, the demo and benchmarks.

It serves ``GET /api/2/export?start=YYYYMMDDTHH&end=YYYYMMDDTHH`` from the rows it is given, the way
Amplitude does: rows selected by the hour of their ``server_upload_time`` with both ends of the
range included, HTTP Basic auth with the API key and secret key, a zip of
``<app>/<app>_<YYYY-MM-DD>_<H>#<n>.json.gz`` parts (hour not zero-padded), 404 when the range has
no rows and 400 when it is over a size limit. Faults can be queued at run time to exercise a
client's retries. ``latency_ms`` makes every export request wait that long before it is answered,
as Amplitude takes seconds to prepare an export. It logs nothing per request.

Run standalone: ``python -m sandbox.amplitude --rows rows.jsonl`` (see ``--help``).
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime as dt
import gzip
import io
import os
import re
import signal
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterable, NamedTuple
from urllib.parse import parse_qs, urlparse

import orjson

__all__ = ["AmplitudeExportServer", "Fault"]

_HOUR = re.compile(r"\d{8}T\d{2}")


class Fault(NamedTuple):
    """What the server does instead of (or while) answering one request normally."""

    status: int | None = None  # answer with this status and a short body
    retry_after: str | None = None  # Retry-After header sent with ``status``
    truncate: bool = False  # announce the full Content-Length, send half the zip, close
    drop: bool = False  # close the connection without any response
    slow: float = 0.0  # pause this many seconds before each body chunk
    corrupt: bool = False  # damage bytes in the middle of the zip (length unchanged)


def _hour_of(row: dict) -> str:
    text = row.get("server_upload_time")
    if not isinstance(text, str) or len(text) < 13:
        raise ValueError(f"row has no usable server_upload_time: {text!r}")
    return f"{text[0:4]}{text[5:7]}{text[8:10]}T{text[11:13]}"


class AmplitudeExportServer:
    """Serve ``rows`` (dicts, or NDJSON lines as bytes/str) on 127.0.0.1 at an ephemeral port.

    ``part_rows`` rows go into each ``.json.gz`` part; a range whose rows total more than
    ``max_export_bytes`` (uncompressed) gets a 400. Use as a context manager or call
    ``start()``/``stop()``; ``url`` is the base URL to give a client.

    ``content_encoding="gzip"`` plays a compressing proxy in front of the API: zips go out with
    ``Content-Encoding: gzip`` (and the compressed ``Content-Length``) when the request's
    ``Accept-Encoding`` allows gzip; ``"gzip-always"`` plays one that ignores ``Accept-Encoding``.
    """

    def __init__(self, rows: Iterable, api_key: str, secret_key: str, *, host: str = "127.0.0.1",
                 port: int = 0, part_rows: int = 500, max_export_bytes: int | None = None,
                 compresslevel: int = 1, chunk_size: int = 64 * 1024, app_id: int = 100000,
                 content_encoding: str | None = None, latency_ms: float = 0):
        if part_rows < 1:
            raise ValueError("part_rows must be at least 1")
        if latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        self.latency = latency_ms / 1000
        self._expected_auth = "Basic " + base64.b64encode(
            f"{api_key}:{secret_key}".encode()).decode()
        self.part_rows = part_rows
        self.max_export_bytes = max_export_bytes
        self.compresslevel = compresslevel
        self.chunk_size = chunk_size
        if content_encoding not in (None, "gzip", "gzip-always"):
            raise ValueError(f"content_encoding: None, gzip or gzip-always, not {content_encoding!r}")
        self.content_encoding = content_encoding
        self._default_app = app_id
        self._lock = threading.Lock()
        self._rows: dict[str, list[tuple[int, bytes]]] = collections.defaultdict(list)
        self._zips: dict[tuple[str, str], bytes] = {}
        self._faults: dict[str | None, collections.deque] = collections.defaultdict(
            collections.deque)
        self.requests: collections.Counter = collections.Counter()
        self.add_rows(rows)
        self._httpd = _QuietServer((host, port), _Handler)
        self._httpd.sandbox = self
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "AmplitudeExportServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={
            "poll_interval": 0.05}, name="amplitude-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> "AmplitudeExportServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def add_rows(self, rows: Iterable) -> None:
        """Add rows: dicts, NDJSON lines (bytes or str), or ``(hour, line)`` pairs.

        Pairs carry the hour themselves, so lines that are not JSON can be served too (as the
        generator's bad rows are); their app is the default one.
        """
        with self._lock:
            for row in rows:
                hour = None
                if isinstance(row, tuple):
                    hour, row = row
                if isinstance(row, (bytes, str)):
                    line = (row.encode() if isinstance(row, str) else row).rstrip(b"\r\n")
                    try:
                        parsed = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        if hour is None:
                            raise ValueError("a line that is not JSON needs its hour: pass "
                                             "(hour, line)") from None
                        parsed = {}
                    row = parsed if isinstance(parsed, dict) else {}
                else:
                    line = orjson.dumps(row)
                app = row.get("app") if isinstance(row.get("app"), int) else self._default_app
                # A compact copy: generated lines can pin far more heap than their length
                # (measured: 200k generated rows held 1.6 GB as given, 0.5 GB copied).
                line = bytes(memoryview(line))
                self._rows[hour or _hour_of(row)].append((app, line))
            self._zips.clear()

    def add_faults(self, *faults: Fault, hour: str | None = None) -> None:
        """Queue faults, one per request, for requests starting at ``hour`` (None: any request).

        A request takes the next fault queued for its start hour, else the next general one.
        """
        with self._lock:
            self._faults[hour].extend(faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def request_count(self, hour: str) -> int:
        """How many export requests have asked for ``hour`` (as part of their range)."""
        with self._lock:
            return self.requests[hour]

    def hours(self) -> list[str]:
        """The hours that have rows."""
        with self._lock:
            return sorted(h for h, rows in self._rows.items() if rows)

    def _next_fault(self, hour: str) -> Fault | None:
        with self._lock:
            for key in (hour, None):
                if self._faults.get(key):
                    return self._faults[key].popleft()
        return None

    def _count(self, hours: list[str]) -> None:
        with self._lock:
            self.requests.update(hours)

    def _size(self, hours: list[str]) -> int:
        with self._lock:
            return sum(len(line) + 1 for h in hours for _, line in self._rows.get(h, ()))

    def export_zip(self, start: str, end: str) -> bytes | None:
        """The zip for ``start``..``end`` (inclusive), or None when those hours have no rows."""
        hours = _hours_between(start, end)
        with self._lock:
            cached = self._zips.get((start, end))
            if cached is not None or (start, end) in self._zips:
                return cached
            body = self._build_zip(hours)
            self._zips[(start, end)] = body
            return body

    def _build_zip(self, hours: list[str]) -> bytes | None:
        if not any(self._rows.get(h) for h in hours):
            return None
        buffer = io.BytesIO()
        # The parts are gzip already, so (like Amplitude) they are stored, not deflated again.
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as zf:
            for hour in hours:
                by_app: dict[int, list[bytes]] = collections.defaultdict(list)
                for app, line in self._rows.get(hour, ()):
                    by_app[app].append(line)
                day = f"{hour[0:4]}-{hour[4:6]}-{hour[6:8]}"
                for app, lines in sorted(by_app.items()):
                    for part, first in enumerate(range(0, len(lines), self.part_rows)):
                        data = b"\n".join(lines[first:first + self.part_rows]) + b"\n"
                        name = f"{app}/{app}_{day}_{int(hour[9:11])}#{part}.json.gz"
                        zf.writestr(name, gzip.compress(data, compresslevel=self.compresslevel,
                                                        mtime=0))
        return buffer.getvalue()


def _hours_between(start: str, end: str) -> list[str]:
    first = dt.datetime.strptime(start, "%Y%m%dT%H")
    last = dt.datetime.strptime(end, "%Y%m%dT%H")
    hours = []
    while first <= last:
        hours.append(first.strftime("%Y%m%dT%H"))
        first += dt.timedelta(hours=1)
    return hours


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sandbox: AmplitudeExportServer

    def handle_error(self, request, client_address):
        pass  # clients that hang up mid-body (timeouts under test) are expected, not news


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, a kept-alive client's request
    # would wait ~40 ms for its delayed ACK before the body left, which Amplitude never does.
    disable_nagle_algorithm = True
    server: _QuietServer

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # pylint: disable=invalid-name
        sandbox = self.server.sandbox
        url = urlparse(self.path)
        if url.path.rstrip("/") != "/api/2/export":
            return self._reply(404, b"not found")
        query = parse_qs(url.query)
        start, end = query.get("start", [""])[0], query.get("end", [""])[0]
        if not (_HOUR.fullmatch(start) and _HOUR.fullmatch(end)) or end < start:
            return self._reply(400, b"start and end must be YYYYMMDDTHH, start <= end")
        hours = _hours_between(start, end)
        sandbox._count(hours)
        if self.headers.get("Authorization") != sandbox._expected_auth:
            return self._reply(401, b"Invalid API key or secret key",
                               {"WWW-Authenticate": 'Basic realm="amplitude"'})
        if sandbox.latency:
            # Amplitude prepares every export, including one that turns out empty or refused.
            time.sleep(sandbox.latency)
        fault = sandbox._next_fault(start) or Fault()
        if fault.drop:
            self.close_connection = True
            return None
        if fault.status is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return self._reply(fault.status, f"sandbox fault {fault.status}".encode(), headers)
        if sandbox.max_export_bytes is not None and sandbox._size(hours) > sandbox.max_export_bytes:
            return self._reply(400, b"Export is too large; use a cloud storage export instead")
        body = sandbox.export_zip(start, end)
        if body is None:
            return self._reply(404, b"No data for the requested range")
        if fault.corrupt:
            middle = len(body) // 2
            body = body[:middle] + bytes(b ^ 0xFF for b in body[middle:middle + 16]) + \
                body[middle + 16:]
        return self._send_zip(body, fault, sandbox.chunk_size)

    def _send_zip(self, body: bytes, fault: Fault, chunk_size: int) -> None:
        encoding = self.server.sandbox.content_encoding
        accepted = "gzip" in (self.headers.get("Accept-Encoding") or "").lower()
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        if encoding == "gzip-always" or (encoding == "gzip" and accepted):
            body = gzip.compress(body, compresslevel=1, mtime=0)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault.truncate:
            body = body[:len(body) // 2]
            self.close_connection = True
        try:
            for offset in range(0, len(body), chunk_size):
                if fault.slow:
                    time.sleep(fault.slow)
                self.wfile.write(body[offset:offset + chunk_size])
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _read_rows(path: str) -> tuple[list[bytes], int]:
    """The file's JSON rows that have an upload time, and how many other lines were left out."""
    rows, skipped = [], 0
    with open(path, "rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                _hour_of(orjson.loads(line))
                rows.append(line)
            except (orjson.JSONDecodeError, ValueError, AttributeError):
                skipped += 1
    return rows, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.amplitude",
        description="Serve Amplitude's Export API locally from an NDJSON file of export rows.")
    parser.add_argument("--rows", required=True, help="NDJSON file of Amplitude export rows")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    parser.add_argument("--api-key", default=os.environ.get("AMPLITUDE_API_KEY", "sandbox-key"),
                        help="API key to accept (default: $AMPLITUDE_API_KEY or sandbox-key)")
    parser.add_argument("--secret-key",
                        default=os.environ.get("AMPLITUDE_SECRET_KEY", "sandbox-secret"),
                        help="secret key to accept (default: $AMPLITUDE_SECRET_KEY or "
                             "sandbox-secret)")
    parser.add_argument("--part-rows", type=int, default=500, help="rows per .json.gz part (500)")
    parser.add_argument("--max-export-bytes", type=int, default=None,
                        help="answer 400 above this many uncompressed bytes (default: no limit)")
    parser.add_argument("--fail-first", default="",
                        help="comma-separated statuses for the first requests, e.g. 503,429")
    parser.add_argument("--retry-after", default=None,
                        help="Retry-After value sent with --fail-first statuses")
    parser.add_argument("--latency_ms", "--latency-ms", type=float, default=0,
                        help="wait this long before answering each export request, as Amplitude "
                             "prepares an export (default: 0)")
    args = parser.parse_args(argv)
    rows, skipped = _read_rows(args.rows)
    server = AmplitudeExportServer(rows, args.api_key, args.secret_key,
                                   host=args.host, port=args.port, part_rows=args.part_rows,
                                   max_export_bytes=args.max_export_bytes,
                                   latency_ms=args.latency_ms)
    statuses = [int(s) for s in args.fail_first.split(",") if s.strip()]
    server.add_faults(*(Fault(status=s, retry_after=args.retry_after) for s in statuses))
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with server:
        left_out = f"; {skipped} lines without a server_upload_time left out" if skipped else ""
        print(f"Amplitude Export API sandbox at {server.url} ({len(server.hours())} hours"
              f"{left_out})", flush=True)
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
