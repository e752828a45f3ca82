"""A local stand-in for PostHog's capture service (``POST /batch/``): tests, demos, benchmarks.

It answers like PostHog does: 401 when the ``api_key``/``token`` is not the project's, 413 when
the decompressed body is over 20 MB, 400 for the whole batch when any event lacks ``event`` or
``distinct_id`` or has a malformed ``uuid``, and ``200 {"status": 1}`` otherwise. Bodies are
gunzipped when ``Content-Encoding: gzip``, ``?compression=gzip`` or gzip's magic bytes say so.

Faults can be switched on at any time, as a rate (``fault_rate`` picks among ``fault_kinds`` with
a seeded generator) or as an explicit sequence (``inject()``), consumed one per request before the
rate applies. A fault is an HTTP status (429 and 503 carry ``Retry-After: retry_after``; a
``(status, retry_after)`` pair sets it for one answer), ``DROP`` (close the connection without an
answer), ``SLOW`` (wait ``slow_seconds``, then answer normally: a client that timed out meanwhile
will send the events again) or ``LOST`` (accept the events, then close the connection: the answer
is lost and a retrying client duplicates them).

Silent loss, as PostHog loses events after its 200: with ``quota`` the project is over its
billing limit once that many events were kept, and capture still answers 200 but keeps nothing
(https://github.com/PostHog/posthog/blob/master/rust/capture/src/v0_endpoint.rs, ``event()``:
"for v0 we want to just return ok"); with ``drop_older_than_days`` ingestion drops every event
older than that, as the project setting does
(https://github.com/PostHog/posthog/blob/master/nodejs/src/ingestion/event-processing/drop-old-events-step.ts).
``events`` and ``uuids`` hold what was kept; ``stats()["silently_dropped"]`` counts the rest.

PostHog's query API (``POST /api/projects/<project_id>/query/``) is served by
``sandbox.posthog_query_api`` over what was kept; see there.

``GET /_sandbox/stats`` returns the counters as JSON, for processes that did not start the server.
Run ``python -m sandbox.posthog --help`` to use it on its own.
"""

from __future__ import annotations

import collections
import random
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from sandbox.posthog_capture_rules import Refusal, event_epoch, judge_batch, validation_error
from sandbox.posthog_query_api import handle_query
from sandbox.posthog_store import EventStore

__all__ = ["DROP", "LOST", "SLOW", "PostHogCaptureServer"]

DROP = "drop"
SLOW = "slow"
LOST = "lost"
MAX_BODY_BYTES = 20 * 1024 * 1024


class PostHogCaptureServer:
    """A capture server on ``host``:``port`` (0 picks a free port); see the module docstring.

    ``events`` holds the accepted events in order of acceptance (unless ``keep_events`` is false,
    which saves the memory of long runs); ``uuids`` counts them by uuid;
    ``requests`` counts every request to ``/batch/``; ``request_log`` has one dict per request
    (status, events, decompressed body size, headers that matter, ``received_at``). With
    ``certfile`` (and ``keyfile``) it serves HTTPS. Thread-safe.
    """

    def __init__(self, api_key: str, *, host: str = "127.0.0.1", port: int = 0,
                 record_path: str | None = None, max_body_bytes: int = MAX_BODY_BYTES,
                 fault_rate: float = 0.0, fault_kinds=(500, 503, 429),
                 retry_after: str | None = "1",
                 slow_seconds: float = 1.0, seed: int | None = 0, certfile: str | None = None,
                 keyfile: str | None = None, keep_events: bool = True,
                 personal_api_key: str = "phx_sandbox_personal_key", project_id: str = "1",
                 quota: int | None = None, drop_older_than_days: float | None = None,
                 visible_after_seconds: float = 0.0):
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self._address = (host, port)
        self._record_path = record_path
        self._tls = (certfile, keyfile) if certfile else None
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._faults: collections.deque = collections.deque()
        self._keep_events = keep_events
        self.personal_api_key, self.project_id = personal_api_key, str(project_id)
        self.quota, self.drop_older_than_days = quota, drop_older_than_days
        # The query API needs the kept events; long benchmark runs keep none.
        self.store = EventStore(visible_after_seconds) if keep_events else None
        self.query_faults: collections.deque = collections.deque()
        self.query_log: list[dict] = []
        self._kept = self._silently_dropped = 0
        self._dropped: list[dict] = []  # answered 200 but not kept (kept only with keep_events)
        self._events: list[dict] = []
        self._accepted = 0
        self._uuids: collections.Counter = collections.Counter()
        self._log: list[dict] = []
        self._record = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> "PostHogCaptureServer":
        if self._record_path:
            self._record = open(self._record_path, "ab")
        self._httpd = ThreadingHTTPServer(self._address, _Handler)
        self._httpd.daemon_threads = True
        self._httpd.capture = self
        if self._tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self._tls)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        # A short poll keeps stop() quick; serve_forever only checks for shutdown between polls.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        name="posthog-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join()
            self._httpd = None
        with self._lock:
            if self._record is not None:
                self._record.close()
                self._record = None

    def __enter__(self) -> "PostHogCaptureServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{'https' if self._tls else 'http'}://{host}:{port}"

    # -- faults and observations -------------------------------------------------------------------

    def inject(self, *faults: Any) -> None:
        """Queue faults for the next requests, one each; ``None`` answers one request normally."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def events(self) -> list[dict]:
        with self._lock:
            return list(self._events)

    @property
    def dropped_events(self) -> list[dict]:
        """Events answered 200 but silently not kept (``quota``, ``drop_older_than_days``)."""
        with self._lock:
            return list(self._dropped)

    @property
    def uuids(self) -> collections.Counter:
        with self._lock:
            return collections.Counter(self._uuids)

    @property
    def duplicates(self) -> int:
        """Accepted events beyond the first with the same uuid."""
        with self._lock:
            return sum(count - 1 for count in self._uuids.values())

    @property
    def requests(self) -> int:
        with self._lock:
            return len(self._log)

    @property
    def request_log(self) -> list[dict]:
        with self._lock:
            return list(self._log)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {"requests": len(self._log), "events": self._accepted,
                    "kept": self._kept, "silently_dropped": self._silently_dropped,
                    "queries": len(self.query_log), "unique_uuids": len(self._uuids),
                    "duplicates": sum(count - 1 for count in self._uuids.values())}

    # -- request handling (called from handler threads) --------------------------------------------

    def _next_fault(self) -> Any:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if self.fault_rate and self.fault_kinds and self._random.random() < self.fault_rate:
                return self._random.choice(self.fault_kinds)
            return None

    def _kept_events(self, events: list[dict]) -> list[dict]:
        """What PostHog would keep of events it answered 200 for (caller holds the lock)."""
        if self.drop_older_than_days is not None:
            oldest = time.time() - self.drop_older_than_days * 86400
            events = [e for e in events if event_epoch(e.get("timestamp")) >= oldest]
        if self.quota is not None:
            events = events[:max(0, self.quota - self._kept)]
        return events

    def _accept(self, events: list[dict]) -> None:
        with self._lock:
            self._accepted += len(events)
            kept = self._kept_events(events)
            self._silently_dropped += len(events) - len(kept)
            if self._keep_events and len(kept) < len(events):
                kept_ids = {id(e) for e in kept}
                self._dropped.extend(e for e in events if id(e) not in kept_ids)
            self._kept += len(kept)
            events = kept
            if self.store is not None:
                self.store.add(events)
            if self._keep_events:
                self._events.extend(events)
            self._uuids.update(str(event["uuid"]) for event in events if event.get("uuid"))
            if self._record is not None:
                self._record.write(b"".join(orjson.dumps(event) + b"\n" for event in events))
                self._record.flush()

    def _handle_post(self, handler: "_Handler") -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        fault = self._next_fault()
        entry = {"status": None, "events": 0, "fault": fault, "body_bytes": None,
                 "user_agent": handler.headers.get("User-Agent"),
                 "content_encoding": handler.headers.get("Content-Encoding"),
                 "historical_migration": None, "sent_at": False, "received_at": time.time()}
        with self._lock:
            self._log.append(entry)
        if fault == DROP:
            return handler.drop()
        if isinstance(fault, (int, tuple)):
            status, retry_after = fault if isinstance(fault, tuple) else (
                fault, self.retry_after if fault in (429, 503) else None)
            entry["status"] = status
            return handler.answer(status, validation_error("fault", "Injected fault"),
                                  {"Retry-After": retry_after} if retry_after is not None else None)
        if fault == SLOW:
            time.sleep(self.slow_seconds)
        try:
            payload, entry["body_bytes"] = judge_batch(handler.path, handler.headers, raw, self.api_key,
                                                      self.max_body_bytes)
        except Refusal as refusal:
            entry["status"], answer = refusal.status, (refusal.status, refusal.answer)
        else:
            entry.update(status=200, events=len(payload["batch"]),
                         historical_migration=payload.get("historical_migration"),
                         sent_at="sent_at" in payload)
            self._accept(payload["batch"])
            answer = (200, {"status": 1})
        if fault == LOST:
            return handler.drop()
        handler.answer(*answer)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a pooled client expects
    # Headers and body go out in two writes; with Nagle on, the body would wait for a delayed ACK.
    disable_nagle_algorithm = True
    server_version = "posthog-sandbox"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's signature
        pass  # one stderr line per request would drown test and benchmark output

    def do_POST(self) -> None:
        if self.path.startswith("/api/projects/"):
            handle_query(self.server.capture, self)
        else:
            self.server.capture._handle_post(self)

    def do_GET(self) -> None:
        if urllib.parse.urlsplit(self.path).path == "/_sandbox/stats":
            self.answer(200, self.server.capture.stats())
        else:
            self.answer(404, {"detail": "Not found"})

    def answer(self, status: int, body: dict, headers: dict | None = None) -> None:
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


if __name__ == "__main__":
    from sandbox.posthog_main import main  # the command line lives apart: this file is the server
    sys.exit(main())
