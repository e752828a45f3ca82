"""Several export hours downloaded at once per worker: order, disk bound, faults and 429s."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from connectors.amplitude import ReadFromAmplitudeExport
from connectors.amplitude_http import ExportClient
from connectors.amplitude_pool import Throttle, prefetch
from sandbox.amplitude import AmplitudeExportServer, Fault
from tests.amplitude_rows import read_export_hours, rows_for_hours
from transforms.records import DONE, EMPTY, FAILED, ExportLine, HourMarker

KEY, SECRET = "amp-key-9a8b7c", "amp-secret-1d2e3f"
FAST = dict(max_attempts=4, max_retry_seconds=20, request_timeout=5, backoff_base=0.001,
            backoff_cap=0.01)
HOURS = [f"20240305T{h:02d}" for h in range(24)]


def _slow_download(delays: dict[str, float], on_disk: list[int], lock: threading.Lock, tmp: str):
    def download(hour, path):
        time.sleep(delays.get(hour, 0.0))
        with open(path, "wb") as out:
            out.write(hour.encode())
        with lock:
            on_disk.append(len(os.listdir(os.path.dirname(path))))
        return hour.upper()
    return download


def test_prefetch_hands_hours_back_in_order_however_they_finish(tmp_path):
    # Later hours finish first: the first hour is the slowest.
    delays = {h: 0.05 * (6 - i) for i, h in enumerate(HOURS[:6])}
    on_disk: list[int] = []
    download = _slow_download(delays, on_disk, threading.Lock(), str(tmp_path))
    seen = []
    with ThreadPoolExecutor(3) as pool:
        for hour, result, path in prefetch(iter(HOURS[:6]), download, pool, 3):
            with open(path, "rb") as handle:
                assert handle.read() == hour.encode()
            seen.append((hour, result))
    assert seen == [(h, h.upper()) for h in HOURS[:6]]
    # Disk is bounded by the concurrency: never more than 3 hours' files at once.
    assert max(on_disk) <= 3


def test_prefetch_takes_hours_lazily_so_a_caller_can_stop_claiming():
    taken = []

    def hours():
        for hour in HOURS:
            taken.append(hour)
            yield hour

    with ThreadPoolExecutor(2) as pool:
        stream = prefetch(hours(), lambda hour, path: hour, pool, 2)
        assert next(stream).hour == HOURS[0]
        stream.close()
    assert len(taken) <= 3  # two in flight, and at most one more after the first was handed over


def test_prefetch_raises_a_download_error_at_that_hours_turn():
    def download(hour, path):
        if hour == HOURS[1]:
            raise RuntimeError("disk full")
        return hour

    with ThreadPoolExecutor(4) as pool:
        stream = prefetch(iter(HOURS[:4]), download, pool, 4)
        assert next(stream).hour == HOURS[0]
        with pytest.raises(RuntimeError, match="disk full"):
            next(stream)


def test_prefetch_rejects_a_concurrency_below_one():
    with ThreadPoolExecutor(1) as pool, pytest.raises(ValueError, match="concurrency"):
        next(prefetch(iter(HOURS), lambda h, p: h, pool, 0))


class _FakeClock:
    def __init__(self):
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_throttle_makes_every_caller_wait_out_the_longest_back_off():
    clock = _FakeClock()
    throttle = Throttle(clock=clock, sleep=clock.sleep)
    assert throttle.wait() == 0
    throttle.back_off(2.0)
    throttle.back_off(0.5)  # a shorter back-off does not shorten the pause
    assert throttle.wait() == pytest.approx(2.0)
    assert throttle.wait() == 0


def test_a_429_on_one_hour_pauses_the_other_downloads_of_the_worker(tmp_path):
    rows = rows_for_hours({HOURS[0]: 3, HOURS[1]: 3})
    clock = _FakeClock()
    throttle = Throttle(clock=clock, sleep=clock.sleep)
    with AmplitudeExportServer(rows, KEY, SECRET) as srv:
        srv.add_faults(Fault(status=429, retry_after="7"), hour=HOURS[0])
        first = ExportClient(srv.url, KEY, SECRET, throttle=throttle, **FAST).open()
        other = ExportClient(srv.url, KEY, SECRET, throttle=throttle, **FAST).open()
        try:
            # One attempt: the first hour gives up at once instead of sleeping its own 7 s.
            first._max_attempts = 1
            assert first.fetch(HOURS[0], str(tmp_path / "a.zip")).status == FAILED
            assert other.fetch(HOURS[1], str(tmp_path / "b.zip")).status == DONE
        finally:
            first.close()
            other.close()
    assert clock.slept and clock.slept[0] >= 7


def _project(element):
    if isinstance(element, ExportLine):
        return ("line", element.hour, element.line)
    return ("marker", element.hour, element.status, element.counts["rows_read"])


def _read(url, hours, concurrency, **options):
    return read_export_hours(url, (KEY, SECRET), hours, {**FAST, **options}, concurrency)


def test_concurrent_hours_keep_each_hours_lines_before_its_marker_under_faults():
    counts = {h: 2 + i % 5 for i, h in enumerate(HOURS) if i % 6 != 5}
    rows = rows_for_hours(counts)
    faults = {HOURS[0]: [Fault(status=429, retry_after="0")], HOURS[1]: [Fault(status=503)],
              HOURS[2]: [Fault(truncate=True)], HOURS[3]: [Fault(corrupt=True)],
              HOURS[4]: [Fault(slow=0.6)], HOURS[6]: [Fault(drop=True), Fault(status=502)],
              HOURS[7]: [Fault(status=504)] * 6}
    with AmplitudeExportServer(rows, KEY, SECRET, part_rows=2, latency_ms=20) as srv:
        for hour, queued in faults.items():
            srv.add_faults(*queued, hour=hour)
        sequential = _read(srv.url, HOURS, 1, request_timeout=0.3)
        srv.requests.clear()
        for hour, queued in faults.items():
            srv.add_faults(*queued, hour=hour)
        out = _read(srv.url, HOURS, 4, request_timeout=0.3)
        requests = {h: srv.request_count(h) for h in HOURS}
    # Same elements in the same order as one hour at a time, each hour read exactly once.
    assert [_project(e) for e in out] == [_project(e) for e in sequential]
    markers = [e for e in out if isinstance(e, HourMarker)]
    assert [m.hour for m in markers] == HOURS
    statuses = {m.hour: m.status for m in markers}
    assert statuses[HOURS[7]] == FAILED  # 6 faults beyond 4 attempts
    assert statuses[HOURS[5]] == EMPTY
    assert all(statuses[h] == DONE for h in HOURS[:5])
    for hour in HOURS:
        lines = [e for e in out if isinstance(e, ExportLine) and e.hour == hour]
        marker_at = out.index(next(m for m in markers if m.hour == hour))
        assert all(out.index(line) < marker_at for line in lines)
        expected = 0 if statuses[hour] != DONE else counts[hour]
        assert len(lines) == expected == next(m for m in markers if m.hour == hour).counts[
            "rows_read"]
        attempts = 4 if hour == HOURS[7] else 1 + len(faults.get(hour, []))
        assert requests[hour] == attempts, hour


def test_the_pipeline_reads_every_hour_once_with_two_workers_and_four_downloads_each():
    hours = [f"202403{d:02d}T{h:02d}" for d in (5, 6) for h in range(24)]
    counts = {h: 1 + i % 3 for i, h in enumerate(hours) if i % 4}
    rows = rows_for_hours(counts)
    options = PipelineOptions(direct_running_mode="multi_processing", direct_num_workers=2)
    with AmplitudeExportServer(rows, KEY, SECRET, latency_ms=10) as srv:
        srv.add_faults(Fault(status=429, retry_after="0"), Fault(status=500), hour=hours[9])
        with BeamTestPipeline(options=options) as p:
            out = p | ReadFromAmplitudeExport(hours, api_key=KEY, secret_key=SECRET,
                                              base_url=srv.url, concurrency=4, **FAST)
            markers = out | beam.Filter(lambda e: isinstance(e, HourMarker))
            assert_that(markers | beam.Map(lambda m: (m.hour, m.status, m.counts["rows_read"])),
                        equal_to([(h, DONE, counts[h]) if h in counts else (h, EMPTY, 0)
                                  for h in hours]))
        assert {h: srv.request_count(h) for h in hours} == {
            h: 3 if h == hours[9] else 1 for h in hours}


@pytest.mark.parametrize("value", [0, -1, 1.5])
def test_a_concurrency_below_one_is_refused_naming_the_flag(value):
    with pytest.raises(ValueError, match="--amplitude_concurrency"):
        ReadFromAmplitudeExport(HOURS, api_key=KEY, secret_key=SECRET,
                                base_url="http://127.0.0.1:1", concurrency=value)
