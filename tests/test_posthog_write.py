"""WriteToPostHog in a TestPipeline against the capture sandbox: markers, dead letters, counters."""

import gc
import uuid

import apache_beam as beam
import pytest
from apache_beam.metrics import MetricsFilter
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from connectors.errors import AuthenticationError
from connectors.posthog import WriteToPostHog, _WriteFn
from sandbox.posthog import DROP, SLOW, PostHogCaptureServer
from transforms.records import DeadLetter, HourMarker

KEY = "phc_write_test_key"
FAST = dict(backoff_base=0.001, backoff_cap=0.005, max_retry_seconds=5)


def event(n):
    return {"event": "Page Viewed", "distinct_id": f"user-{n}", "uuid": str(uuid.uuid4()),
            "properties": {"n": n}}


def dead(payload, reason, hour):
    return (reason, "deliver", hour, payload)


def summarise(letter: DeadLetter):
    assert letter.detail
    return (letter.reason, letter.stage, letter.hour, letter.payload)


@pytest.fixture
def server():
    with PostHogCaptureServer(KEY, retry_after="0") as srv:
        yield srv


def counters(pipeline_result):
    query = pipeline_result.metrics().query(MetricsFilter().with_namespace("WriteToPostHog"))
    values = {c.key.metric.name: c.committed for c in query["counters"]}
    values.update({d.key.metric.name: d.committed for d in query["distributions"]})
    return values


def test_markers_come_out_after_their_hour_with_its_counts(server):
    hour0 = [event(n) for n in range(5)]
    hour1 = [event(n) for n in range(5, 8)]
    invalid = {"event": "Broken"}  # no distinct_id: rejected by PostHog
    too_large = {**event(99), "properties": {"blob": "x" * 5000}}
    marker0 = HourMarker("20240101T00", "done", counts={"events": 7})
    marker1 = HourMarker("20240101T01", "done")
    unmarked = event(100)
    elements = (hour0[:2] + [invalid] + hour0[2:] + [too_large, marker0]
                + hour1 + [marker1, unmarked])

    with test_pipeline.TestPipeline() as pipeline:
        result = (pipeline | beam.Create(elements, reshuffle=False)
                  | WriteToPostHog(server.url, KEY, max_event_bytes=2000, **FAST))
        # Each marker also carries its hour's dead letters, for the ledger to write first.
        assert_that(result.checkpoints | beam.Map(
            lambda m: (m._replace(letters=()), sorted((summarise(d) for d in m.letters), key=str))),
            equal_to([
                (marker0.with_counts({"events_sent": 5, "dead:rejected_by_posthog": 1,
                                      "dead:event_too_large": 1}),
                 sorted([dead(invalid, "rejected_by_posthog", "20240101T00"),
                         dead(too_large, "event_too_large", "20240101T00")], key=str)),
                (marker1.with_counts({"events_sent": 3}), []),
            ]), label="Checkpoints")
        assert_that(result.failed | beam.Map(summarise), equal_to([
            dead(invalid, "rejected_by_posthog", "20240101T00"),
            dead(too_large, "event_too_large", "20240101T00"),
        ]), label="DeadLetters")

    assert server.events[-1] == unmarked  # sent when the bundle finished
    assert sorted(server.uuids) == sorted(e["uuid"] for e in hour0 + hour1 + [unmarked])
    # A batch never spans a marker: hour 0 (with its bisection), then hour 1, then the rest.
    accepted = [r["events"] for r in server.request_log if r["status"] == 200]
    assert accepted[-2:] == [3, 1] and sum(accepted[:-2]) == 5
    values = counters(pipeline.result)
    assert values["events_sent"] == 9
    assert values["batches_sent"] == len(accepted)
    assert values["dead_lettered_rejected_by_posthog"] == 1
    assert values["dead_lettered_event_too_large"] == 1
    assert values["batch_size"].sum == 9
    assert values["request_latency_ms"].count == server.requests


# Servers by URL, for steps that look at what the server holds when an element reaches them (the
# in-process runner shares this module with the test).
_SERVERS: dict = {}


def _uuids_at_server(marker, url):
    return marker.hour, frozenset(_SERVERS[url].uuids)


def test_a_marker_waits_for_every_batch_sent_before_it():
    # Slow answers keep several batches in flight when each marker arrives.
    with PostHogCaptureServer(KEY, retry_after="0", slow_seconds=0.05) as server:
        _SERVERS[server.url] = server
        server.inject(*[SLOW] * 12)
        hour0 = [event(n) for n in range(23)]
        invalid = {"event": "Broken"}
        hour1 = [event(n) for n in range(100, 112)]
        elements = (hour0[:11] + [invalid] + hour0[11:] + [HourMarker("20240101T00", "done")]
                    + hour1 + [HourMarker("20240101T01", "done")])
        with test_pipeline.TestPipeline() as pipeline:
            result = (pipeline | beam.Create(elements, reshuffle=False)
                      | WriteToPostHog(server.url, KEY, batch_size=4, **FAST))
            url = server.url
            assert_that(result.checkpoints | beam.Map(lambda m: (m.hour, m.counts)), equal_to([
                ("20240101T00", {"events_sent": 23, "dead:rejected_by_posthog": 1}),
                ("20240101T01", {"events_sent": 12}),
            ]), label="Counts")
            # Every event before a marker was acknowledged before the marker came out.
            assert_that(
                result.checkpoints | beam.Map(_uuids_at_server, url)
                | beam.Map(lambda seen, firsts: (seen[0], firsts[seen[0]] <= seen[1]), {
                    "20240101T00": frozenset(e["uuid"] for e in hour0),
                    "20240101T01": frozenset(e["uuid"] for e in hour0 + hour1)}),
                equal_to([("20240101T00", True), ("20240101T01", True)]), label="Acknowledged")
            assert_that(result.failed | beam.Map(summarise),
                        equal_to([dead(invalid, "rejected_by_posthog", "20240101T00")]),
                        label="DeadLetters")
        del _SERVERS[server.url]
    values = counters(pipeline.result)
    assert values["events_sent"] == 35 and values["dead_lettered_rejected_by_posthog"] == 1


def test_dead_letters_without_a_marker_have_no_hour(server):
    invalid = {"distinct_id": "u"}  # no event name
    with test_pipeline.TestPipeline() as pipeline:
        result = (pipeline | beam.Create([event(1), invalid], reshuffle=False)
                  | WriteToPostHog(server.url, KEY, **FAST))
        assert_that(result.checkpoints, equal_to([]), label="NoCheckpoints")
        assert_that(result.failed | beam.Map(summarise),
                    equal_to([dead(invalid, "rejected_by_posthog", None)]), label="DeadLetters")
    assert len(server.events) == 1


def test_batches_respect_batch_size_and_retries_are_counted(server):
    server.inject(503, DROP, 500)
    elements = [event(n) for n in range(25)] + [HourMarker("20240101T05", "done")]
    with test_pipeline.TestPipeline() as pipeline:
        result = (pipeline | beam.Create(elements, reshuffle=False)
                  | WriteToPostHog(server.url, KEY, batch_size=10, **FAST))
        assert_that(result.checkpoints, equal_to([
            HourMarker("20240101T05", "done", counts={"events_sent": 25})]))
    assert [r["events"] for r in server.request_log if r["status"] == 200] == [10, 10, 5]
    values = counters(pipeline.result)
    assert (values["events_sent"], values["batches_sent"], values["http_retries"]) == (25, 3, 3)


def test_exhausted_retries_dead_letter_the_hour_as_delivery_failed(server):
    server.fault_rate, server.fault_kinds = 1.0, (503,)
    hour = [event(n) for n in range(3)]
    with test_pipeline.TestPipeline() as pipeline:
        result = (pipeline | beam.Create(hour + [HourMarker("20240101T02", "done")],
                                         reshuffle=False)
                  | WriteToPostHog(server.url, KEY, **{**FAST, "max_retry_seconds": 0.05}))
        assert_that(result.checkpoints | beam.Map(lambda m: (m._replace(letters=()),
                                                             len(m.letters))),
                    equal_to([(HourMarker("20240101T02", "done", counts={
                        "events_sent": 0, "dead:delivery_failed": 3}), 3)]),
                    label="Checkpoints")
        assert_that(result.failed | beam.Map(summarise),
                    equal_to([dead(e, "delivery_failed", "20240101T02") for e in hour]),
                    label="DeadLetters")
    values = counters(pipeline.result)
    assert values["dead_lettered_delivery_failed"] == 3 and values["http_retries"] > 0


def test_a_refused_key_fails_the_run_without_revealing_it(server):
    secret = "phc_SECRET_wrong_key_777"
    with pytest.raises(AuthenticationError) as raised:
        with test_pipeline.TestPipeline() as pipeline:
            _ = (pipeline | beam.Create([event(1)], reshuffle=False)
                 | WriteToPostHog(server.url, secret, **FAST))
    assert "--posthog_api_key" in str(raised.value)
    assert secret not in str(raised.value)
    assert server.events == []


def test_constructor_validates_and_keeps_the_key_out_of_display_data(server):
    with pytest.raises(ValueError, match="--batch_size"):
        WriteToPostHog(server.url, KEY, batch_size=0)
    with pytest.raises(ValueError, match="--posthog_host"):
        WriteToPostHog("localhost:8000", KEY)
    transform = WriteToPostHog(server.url, KEY)
    shown = repr(transform.display_data()) + repr(transform)
    assert server.url in shown and KEY not in shown


@pytest.mark.parametrize("before, after", [(700, 100_000), (500_000, 500_000), (0, 0)])
def test_setup_raises_the_young_generation_gc_threshold_only(before, after, server):
    saved = gc.get_threshold()
    try:
        gc.set_threshold(before, 7, 9)
        write_fn = _WriteFn(dict(WriteToPostHog(server.url, KEY)._settings))
        write_fn.setup()
        write_fn.teardown()
        assert gc.get_threshold() == (after, 7, 9)
    finally:
        gc.set_threshold(*saved)
