"""ReadFromAmplitudeExport against the sandbox Export API over real HTTP on 127.0.0.1."""

from __future__ import annotations

import datetime as dt

import apache_beam as beam
import pytest
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.metrics import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from connectors.amplitude import ReadFromAmplitudeExport, _Keys, _ReadExportHours
from connectors.amplitude_http import TOO_LARGE_ADVICE
from connectors.errors import AuthenticationError
from sandbox.amplitude import AmplitudeExportServer, Fault
from tests.amplitude_rows import (lines_of, make_row, one_per_line, read_export_hours,
                                  rows_for_hours)
from transforms.records import DONE, EMPTY, FAILED, ExportLine, HourMarker

KEY, SECRET = "amp-key-4c1d9e", "amp-secret-7b2f0a"
FAST = dict(max_attempts=4, max_retry_seconds=20, request_timeout=5, backoff_base=0.001)
H10, H11, H12 = "20240305T10", "20240305T11", "20240305T12"
COUNTS = {H10: 25, H11: 7}
ROWS = rows_for_hours(COUNTS)


@pytest.fixture()
def server():
    with AmplitudeExportServer(ROWS, KEY, SECRET, part_rows=3) as srv:
        yield srv


def project(element):
    """Comparable form: lines by content, markers by status and row count."""
    if isinstance(element, ExportLine):
        return ("line", element.hour, element.line)
    return ("marker", element.hour, element.status, element.counts["rows_read"])


def expected(hours_status: dict[str, str], rows=ROWS):
    out = []
    by_hour = {}
    # An hour's zip holds one set of parts per app; parts are named "<app>/…", so apps come in
    # numeric order and rows keep their upload order within an app.
    for row, line in sorted(zip(rows, lines_of(rows)), key=lambda pair: pair[0]["app"]):
        hour = row["server_upload_time"][:13].replace("-", "").replace(" ", "T")
        by_hour.setdefault(hour, []).append(line)
    for hour, status in hours_status.items():
        lines = by_hour.get(hour, []) if status == DONE else []
        out += [("line", hour, line) for line in lines]
        out.append(("marker", hour, status, len(lines)))
    return out


def read(server, hours, **options):
    """The DoFn called directly (setup, process, teardown): elements in emission order."""
    concurrency = options.pop("concurrency", 4)
    preserve_dir = options.pop("preserve_dir", None)
    return read_export_hours(server.url, (KEY, SECRET), hours,
                             {**FAST, "backoff_cap": 1.0, **options}, concurrency, preserve_dir)


def counters(result) -> dict[str, int]:
    found = result.metrics().query(MetricsFilter())["counters"]
    return {c.key.metric.name: c.committed for c in found}


def test_pipeline_reads_each_hour_once_with_markers_and_metrics(server):
    with BeamTestPipeline() as p:
        out = p | ReadFromAmplitudeExport([H11, H10, H12], api_key=KEY, secret_key=SECRET,
                                          base_url=server.url, **FAST)
        assert_that(out | beam.FlatMap(one_per_line) | beam.Map(project),
                    equal_to(expected({H10: DONE, H11: DONE, H12: EMPTY})))
    metrics = counters(p.result)
    assert metrics["rows_read"] == 32
    assert metrics["hours_fetched"] == 2 and metrics["hours_empty"] == 1
    assert metrics["export_bytes"] > 0
    assert [server.request_count(h) for h in (H10, H11, H12)] == [1, 1, 1]


def test_lines_come_in_natural_part_order_and_the_marker_last(server):
    out = read(server, [H10])
    lines, marker = out[:-1], out[-1]
    assert marker == HourMarker(H10, DONE, None, {"rows_read": 25})
    # 25 rows in parts of 3 make parts #0..#8, read in order: exactly the rows' order.
    assert [project(e) for e in out] == expected({H10: DONE})
    assert lines[0].file.endswith("_2024-03-05_10#0.json.gz") and lines[0].line_number == 1


def test_natural_order_beyond_ten_parts():
    rows = rows_for_hours({H10: 12})
    with AmplitudeExportServer(rows, KEY, SECRET, part_rows=1) as srv:
        out = read(srv, [H10])
    assert [line.line for line in out[:-1]] == lines_of(rows)
    assert [line.file.rsplit("#")[1] for line in out[:-1]][9:] == ["9.json.gz", "10.json.gz",
                                                                    "11.json.gz"]


def test_inclusive_hour_boundaries_read_a_row_once_in_its_hour():
    last_of_10 = make_row(1, dt.datetime(2024, 3, 5, 10, 59, 59, 999000))
    first_of_11 = make_row(2, dt.datetime(2024, 3, 5, 11, 0, 0))
    with AmplitudeExportServer([last_of_10, first_of_11], KEY, SECRET) as srv:
        with BeamTestPipeline() as p:
            out = p | ReadFromAmplitudeExport([H10, H11], api_key=KEY, secret_key=SECRET,
                                              base_url=srv.url, **FAST)
            assert_that(out | beam.FlatMap(one_per_line) | beam.Map(project), equal_to(
                expected({H10: DONE, H11: DONE}, rows=[last_of_10, first_of_11])))


def test_hour_over_the_export_limit_fails_with_advice_and_others_go_on():
    rows = rows_for_hours({H10: 40, H11: 2})
    with AmplitudeExportServer(rows, KEY, SECRET, max_export_bytes=10_000) as srv:
        out = read(srv, [H10, H11])
        assert srv.request_count(H10) == 1  # a 400 is an answer, not a hiccup: no retry
    failed = out[0]
    assert failed.status == FAILED and failed.detail == TOO_LARGE_ADVICE
    assert "4 GB" in failed.detail and "--source files" in failed.detail
    assert [e.status for e in out if isinstance(e, HourMarker)] == [FAILED, DONE]
    assert sum(isinstance(e, ExportLine) for e in out) == 2


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_stop_the_run_naming_the_flags(server, status):
    server.add_faults(Fault(status=status))
    with pytest.raises(AuthenticationError) as raised:
        with BeamTestPipeline() as p:
            _ = p | ReadFromAmplitudeExport([H10, H11], api_key=KEY, secret_key=SECRET,
                                            base_url=server.url, **FAST)
    message = str(raised.value)
    assert "--amplitude_api_key" in message and "--amplitude_secret_key" in message
    assert KEY not in message and SECRET not in message
    assert server.request_count(H10) + server.request_count(H11) <= 2


def test_wrong_secret_is_refused_by_the_server(server):
    fn = _ReadExportHours(server.url, _Keys(KEY, "wrong"), None, FAST)
    fn.setup()
    with pytest.raises(AuthenticationError):
        list(fn.process((H10,), tracker=OffsetRestrictionTracker(OffsetRange(0, 1))))
    fn.teardown()


@pytest.mark.parametrize("fault", [
    Fault(status=429), Fault(status=500), Fault(status=502), Fault(status=503),
    Fault(status=504), Fault(truncate=True), Fault(drop=True), Fault(corrupt=True),
    Fault(slow=1.0),
], ids=["429", "500", "502", "503", "504", "truncated", "dropped", "corrupt", "slow"])
def test_transient_faults_are_retried_without_losing_or_repeating_lines(server, fault):
    server.add_faults(fault, hour=H10)
    # The slow body pauses 1 s before each chunk; a 0.3 s read timeout turns that into a retry.
    out = read(server, [H10], request_timeout=0.3 if fault.slow else 5)
    assert [project(e) for e in out] == expected({H10: DONE})
    assert server.request_count(H10) == 2


def test_retries_are_counted_in_metrics(server):
    server.add_faults(Fault(status=503), Fault(truncate=True), hour=H11)
    with BeamTestPipeline() as p:
        out = p | ReadFromAmplitudeExport([H10, H11], api_key=KEY, secret_key=SECRET,
                                          base_url=server.url, **FAST)
        assert_that(out | beam.FlatMap(one_per_line) | beam.Map(project),
                    equal_to(expected({H10: DONE, H11: DONE})))
    metrics = counters(p.result)
    assert metrics["http_retries"] == 2 and metrics["hours_fetched"] == 2


def test_retry_after_is_honoured(server):
    server.add_faults(Fault(status=429, retry_after="1"), hour=H11)
    with BeamTestPipeline() as p:
        out = p | ReadFromAmplitudeExport([H11], api_key=KEY, secret_key=SECRET,
                                          base_url=server.url, **FAST)
        assert_that(out | beam.FlatMap(one_per_line) | beam.Map(project),
                    equal_to(expected({H11: DONE})))
    assert counters(p.result)["retry_sleep_ms"] >= 1000


def test_retry_after_beyond_the_time_bound_fails_the_hour_at_once(server):
    server.add_faults(Fault(status=503, retry_after="3600"), hour=H10)
    out = read(server, [H10, H11], max_retry_seconds=5)
    assert out[0].status == FAILED and "HTTP 503" in out[0].detail
    assert server.request_count(H10) == 1
    assert out[-1] == HourMarker(H11, DONE, None, {"rows_read": 7})


def test_hour_fails_after_max_attempts_and_the_other_hours_go_on(server):
    server.add_faults(*[Fault(status=504)] * 10, hour=H10)
    with BeamTestPipeline() as p:
        out = p | ReadFromAmplitudeExport([H10, H11], api_key=KEY, secret_key=SECRET,
                                          base_url=server.url, **{**FAST, "max_attempts": 3})
        markers = out | beam.Filter(lambda e: isinstance(e, HourMarker))
        summary = markers | beam.Map(lambda m: (m.hour, m.status, "3 attempt" in (m.detail or "")))
        assert_that(summary, equal_to([(H10, FAILED, True), (H11, DONE, False)]))
    assert server.request_count(H10) == 3
    assert counters(p.result)["hours_failed"] == 1


def test_unexpected_status_fails_the_hour_without_retry(server):
    server.add_faults(Fault(status=422), hour=H10)
    out = read(server, [H10])
    assert out == [HourMarker(H10, FAILED, "unexpected HTTP 422 from the Export API",
                              {"rows_read": 0})]
    assert server.request_count(H10) == 1


def test_no_hours_reads_nothing(server):
    with BeamTestPipeline() as p:
        assert_that(p | ReadFromAmplitudeExport([], api_key=KEY, secret_key=SECRET,
                                                base_url=server.url), equal_to([]))


@pytest.mark.parametrize("kwargs, flag", [
    (dict(api_key=""), "--amplitude_api_key"),
    (dict(secret_key=" "), "--amplitude_secret_key"),
    (dict(base_url="ftp://example.com"), "--amplitude_url"),
    (dict(hours=["2024-03-05 10"]), "YYYYMMDDTHH"),
    (dict(max_attempts=0), "max_attempts"),
    (dict(request_timeout=0), "request_timeout"),
])
def test_constructor_rejects_bad_configuration(kwargs, flag):
    arguments = dict(hours=[H10], api_key=KEY, secret_key=SECRET, base_url="http://127.0.0.1:1")
    arguments.update(kwargs)
    hours = arguments.pop("hours")
    with pytest.raises(ValueError, match=flag):
        ReadFromAmplitudeExport(hours, **arguments)


def test_a_long_range_spans_several_elements_and_every_hour_is_read_once():
    hours = [f"202403{d:02d}T{h:02d}" for d in (1, 2, 3) for h in range(24)]
    rows = rows_for_hours({hours[0]: 2, hours[30]: 3, hours[-1]: 1})
    with AmplitudeExportServer(rows, KEY, SECRET) as srv:
        with BeamTestPipeline() as p:
            out = p | ReadFromAmplitudeExport(hours, api_key=KEY, secret_key=SECRET,
                                              base_url=srv.url, **FAST)
            markers = out | beam.Filter(lambda e: isinstance(e, HourMarker))
            assert_that(markers | beam.Map(lambda m: (m.hour, m.status, m.counts["rows_read"])),
                        equal_to([(h, DONE, {0: 2, 30: 3, 71: 1}[i]) if i in (0, 30, 71)
                                  else (h, EMPTY, 0) for i, h in enumerate(hours)]))
        assert all(srv.request_count(h) == 1 for h in hours)


def test_the_initial_split_keeps_a_day_in_one_restriction_to_download_several_hours_at_once():
    from connectors.amplitude import _DayPerRestriction

    provider = _DayPerRestriction()
    hours = (H10, H11, H12)
    assert provider.initial_restriction(hours) == OffsetRange(0, 3)
    assert list(provider.split(hours, OffsetRange(0, 3))) == [OffsetRange(0, 3)]


def test_hours_are_read_by_several_worker_processes(server):
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(direct_running_mode="multi_processing", direct_num_workers=2)
    with BeamTestPipeline(options=options) as p:
        out = p | ReadFromAmplitudeExport([H10, H11, H12], api_key=KEY, secret_key=SECRET,
                                          base_url=server.url, **FAST)
        assert_that(out | beam.FlatMap(one_per_line) | beam.Map(project),
                    equal_to(expected({H10: DONE, H11: DONE, H12: EMPTY})))
