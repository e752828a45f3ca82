"""The baseline: how people move Amplitude history into PostHog today.

PostHog's guide "Migrate from Amplitude" (https://posthog.com/docs/migrate/migrate-from-amplitude)
gives a Python script that reads the export's ``.json.gz`` files line by line, converts each row
with plain Python and calls the official SDK's ``capture`` once per event on a client created
with ``historical_migration=True``. ``run_baseline`` does the same over rows already in memory
(reading files is left out of the timing for both contenders) and then waits for the SDK to
deliver everything, so its figures compare with the pipeline's end to end.

What the guide's conversion does, and so what this one does:

- ``event`` is ``event_type``; ``[Amplitude] Page Viewed`` becomes ``$pageview`` and
  ``[Amplitude] Element Clicked``/``Changed`` become ``$autocapture``; ``session_start`` rows are
  dropped;
- ``distinct_id`` is ``user_id``, or ``device_id`` when there is no user;
- ``timestamp`` is ``event_time`` parsed as ``%Y-%m-%d %H:%M:%S.%f`` (the SDK takes a naive
  time as UTC);
- properties: a fixed list of web and location fields (``$os`` from ``device_type``,
  ``$browser``/``$browser_version`` from ``os_name``/``os_version``, ``$current_url`` and friends
  from the ``[Amplitude] Page …`` properties, ``$ip``, ``$geoip_*``, ``$device_id``), ``$set``
  of most of them and ``$set_once`` of six ``initial_*`` user properties (``EMPTY`` as null);
- no ``uuid`` (PostHog cannot deduplicate a re-run), no groups, no other user properties, no
  ``$identify`` or alias for anonymous devices.

Three deliberate differences, each in the baseline's favour or needed to measure it:

- the event's own ``event_properties`` are copied into the properties first, as earlier versions
  of the guide did (``**event_properties``); without them the baseline would send less data per
  event than the pipeline and look faster for it;
- ``int(os_version)`` raises for mobile and server rows (``"18.5"``, ``null``) and would stop the
  script at its first iOS row; like anyone running it on such data, we keep the value as it is
  when it is not an integer;
- the guide's ``debug=True`` logs every event; we leave it off, and a row whose conversion raises
  (invalid JSON, no ``event_type``, an unparseable time) is counted under ``rows_failed`` instead
  of ending the run.

What the SDK does after ``capture`` is left as it is: a bounded queue (10,000 events; a full
queue drops the event, ``capture`` then returns ``None``), one background thread posting batches
of 100 to ``/batch/`` with up to three retries, and a whole batch lost when PostHog refuses it.
Those losses are counted, not hidden. The queue fills whenever the capture loop outruns that
thread, as it does on an otherwise idle machine (measured: three events in four dropped): both
share one GIL, and the thread's pure-Python preparation and JSON encoding of each batch cost more
than the loop spends per event. ``max_queue_size`` lifts the bound to measure the SDK's speed
without those drops.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from datetime import datetime
from typing import Any

from posthog import Posthog

__all__ = ["run_baseline"]

_EVENT_NAMES = {
    "[Amplitude] Page Viewed": "$pageview",
    "[Amplitude] Element Clicked": "$autocapture",
    "[Amplitude] Element Changed": "$autocapture",
}
_INITIAL_KEYS = ("referrer", "referring_domain", "utm_source", "utm_medium", "utm_campaign",
                 "utm_content")
_DEVICE_TYPES = {"Windows": "Desktop", "Linux": "Desktop", "iOS": "Mobile", "Android": "Mobile"}


def _browser_version(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _convert(entry: dict) -> dict | None:
    """One export row as the guide's script turns it into ``capture`` arguments (None: skipped)."""
    event = entry["event_type"]
    if event == "session_start":
        return None
    event = _EVENT_NAMES.get(event, event)
    page = entry.get("event_properties")
    user = entry.get("user_properties")
    device_type = _DEVICE_TYPES.get(entry.get("device_type"))
    location = {
        "$current_url": page.get("[Amplitude] Page URL"),
        "$pathname": page.get("[Amplitude] Page Path"),
        "$referrer": page.get("referrer"),
        "$referring_domain": page.get("referring_domain"),
        "$geoip_city_name": entry.get("city"),
        "$geoip_subdivision_1_name": entry.get("region"),
        "$geoip_country_name": entry.get("country"),
    }
    properties = dict(page)
    properties.update(location)
    properties.update({
        "$os": entry.get("device_type"),
        "$browser": entry.get("os_name"),
        "$browser_version": _browser_version(entry.get("os_version")),
        "$device_type": device_type,
        "$host": page.get("[Amplitude] Page Domain"),
        "$viewport_height": page.get("[Amplitude] Viewport Height"),
        "$viewport_width": page.get("[Amplitude] Viewport Width"),
        "$device_id": entry.get("device_id"),
        "$ip": entry.get("ip_address"),
        "$set_once": {
            f"$initial_{key}": None if user.get(f"initial_{key}") == "EMPTY"
            else user.get(f"initial_{key}")
            for key in _INITIAL_KEYS
        },
        "$set": {
            **location,
            "$os": entry.get("device_type"),
            "$browser": entry.get("os_name"),
            "$browser_version": entry.get("os_version"),
            "$device_type": device_type,
        },
    })
    return {
        "event": event,
        "distinct_id": entry.get("user_id") or entry.get("device_id"),
        "properties": properties,
        "timestamp": datetime.strptime(entry.get("event_time"), "%Y-%m-%d %H:%M:%S.%f"),
    }


class _LogCounter(logging.Handler):
    """Counts the SDK's log records by kind instead of printing them: one warning per dropped
    event would otherwise flood the benchmark's output."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.counts: Counter = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        # Digits (batch indexes, sizes) vary from record to record; count the kinds.
        self.counts[re.sub(r"\d+", "N", f"{record.levelname}: {record.getMessage()}")] += 1


def run_baseline(lines: list[bytes], host: str, api_key: str, *,
                 max_queue_size: int | None = None) -> dict:
    """Send ``lines`` (export rows, one JSON object each) to PostHog at ``host`` as the guide's
    script does, wait until the SDK has delivered or given up, and return what happened.

    ``max_queue_size`` overrides the SDK's queue bound (None: the SDK's default, as the guide
    leaves it). A bound above ``len(lines)`` measures the SDK's speed without its drops.

    The result: ``rows_read``, ``rows_skipped`` (by reason), ``rows_failed`` (conversion errors
    by kind), ``events_captured`` (``capture`` took the event), ``events_dropped`` (the SDK's
    queue was full), ``events_failed_upload`` (in batches the SDK gave up on),
    ``elapsed_seconds``, ``rows_per_second``, ``events_per_second`` (captured events over the
    elapsed time) and ``sdk_log`` (the SDK's log records counted by kind).
    """
    if not host or not host.startswith(("http://", "https://")):
        raise ValueError("host must be an http:// or https:// URL")
    if not api_key:
        raise ValueError("api_key must not be empty")
    if max_queue_size is not None and max_queue_size < 1:
        raise ValueError("max_queue_size must be at least 1")
    queue = {} if max_queue_size is None else {"max_queue_size": max_queue_size}
    failed_upload = 0
    failed_lock = threading.Lock()

    def on_error(error: Exception, batch: list) -> None:  # runs on the SDK's consumer thread
        nonlocal failed_upload
        with failed_lock:
            failed_upload += len(batch)

    sdk_log = logging.getLogger("posthog")
    counter = _LogCounter()
    saved_propagate = sdk_log.propagate
    sdk_log.addHandler(counter)
    sdk_log.propagate = False
    skipped: Counter = Counter()
    failed: Counter = Counter()
    captured = dropped = 0
    try:
        started = time.perf_counter()
        client = Posthog(api_key, host=host, historical_migration=True, on_error=on_error,
                         **queue)
        try:
            for line in lines:
                try:
                    payload = _convert(json.loads(line))
                except json.JSONDecodeError:
                    failed["invalid_json"] += 1
                    continue
                except Exception as error:  # the guide's script would stop here
                    failed[type(error).__name__] += 1
                    continue
                if payload is None:
                    skipped["session_start"] += 1
                elif client.capture(payload.pop("event"), **payload) is None:
                    dropped += 1
                else:
                    captured += 1
            client.flush(timeout_seconds=None)
        finally:
            client.shutdown()
        elapsed = time.perf_counter() - started
    finally:
        sdk_log.removeHandler(counter)
        sdk_log.propagate = saved_propagate
    return {
        "rows_read": len(lines),
        "rows_skipped": dict(skipped),
        "rows_failed": dict(failed),
        "events_captured": captured,
        "events_dropped": dropped,
        "events_failed_upload": failed_upload,
        "elapsed_seconds": elapsed,
        "rows_per_second": len(lines) / elapsed if elapsed else 0.0,
        "events_per_second": captured / elapsed if elapsed else 0.0,
        "sdk_log": dict(counter.counts),
    }
