"""Deliver translated events to PostHog's batch capture endpoint.

``WriteToPostHog`` batches events, sends them with ``PostHogClient`` (gzip, retries, 400 bisection,
413 splits, pacing; see ``connectors.posthog_client``) and turns every event PostHog did not take
into a ``DeadLetter``. Hour markers pass through it only once their hour is settled, which is what
lets the job ledger mark an hour done.
"""

from __future__ import annotations

import collections
import gc
import queue
import threading
from concurrent.futures import Future
from typing import Any, Iterable, Iterator, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import PCollection, TaggedOutput
from apache_beam.transforms.window import GlobalWindows

from connectors.posthog_client import PostHogClient, UnsendableEvent
from connectors.posthog_pacing import check_settings, shared_bucket
from transforms.coders import StageRecord
from transforms.records import DeadLetter, HourMarker

__all__ = ["METRICS_NAMESPACE", "WriteToPostHog", "WriteToPostHogResult"]

METRICS_NAMESPACE = "WriteToPostHog"
_FAILED = "failed"
# Batches handed to the sending thread and not yet settled. One overlaps PostHog's answer with
# building the next batch; the second absorbs a slow answer. Each may hold max_batch_bytes.
_IN_FLIGHT = 2
# CPython collects its youngest generation after every 700 net allocations of containers. Batches
# of events, dozens of dicts and lists each, outlive hundreds of such collections only to be freed
# by reference counting. In the end-to-end benchmark the worker spent about 2 of its 12 CPU s per
# 100k rows collecting at 700, and next to nothing at this threshold, which still bounds how much
# cyclic garbage can wait for a collection.
_GC_GEN0_THRESHOLD = 100_000


class WriteToPostHogResult(NamedTuple):
    """The outputs of ``WriteToPostHog``.

    ``failed``: ``PCollection[DeadLetter]`` of the events PostHog did not take.
    ``checkpoints``: ``PCollection[HourMarker]``, each marker released after its hour is settled.
    """

    failed: PCollection
    checkpoints: PCollection


class WriteToPostHog(beam.PTransform):
    """Send events to PostHog; ``PCollection[dict | list[dict] | HourMarker]`` →
    ``WriteToPostHogResult``.

    An element is one event or a list of events (a chunk from ``TranslateToPostHog``), handled
    as that many events in order.

    Events are sent in batches of at most ``batch_size`` events and ``max_batch_bytes`` of
    uncompressed JSON. An event whose JSON exceeds ``max_event_bytes`` is dead-lettered
    ``event_too_large`` without being sent (PostHog would drop it silently); one that is not a
    JSON object, ``invalid_event``. Events PostHog refuses become ``rejected_by_posthog`` dead
    letters with its answer; those still failing after ``max_retry_seconds`` of retries,
    ``delivery_failed`` (the ``resend`` command replays them). A refused API key raises
    ``AuthenticationError`` and fails the run.

    ``HourMarker`` elements are end-of-hour punctuation (see ``transforms.records``). A marker
    closes the pending batch; once every batch before it is acknowledged or failed, the hour's dead
    letters are emitted stamped with the marker's hour (and carried on the marker, for a ledger
    that must write them before the hour counts as done), and then the marker itself with the
    counts ``events_sent`` and ``dead:<reason>`` of the events received since the previous marker.
    Batches never span a marker. They are posted by a thread of each DoFn instance, in order and
    one request at a time, while the next batch is built, so a marker may come out while the
    next hour's first batches are on their way; the end of a bundle waits for every batch. This
    relies on an hour's events and its marker reaching the sink in the same bundle, as they do
    when the source emits both from one call. Events with no marker after them in their bundle
    are sent when the bundle finishes and their dead letters carry ``hour=None``. An hour's dead
    letters wait in memory for its marker: during a long PostHog outage that is up to one hour of
    events per worker.

    Pacing: ``max_events_per_second`` is enforced by a token bucket in each DoFn instance, and a
    runner runs one instance per bundle it processes in parallel. The job-wide rate is therefore
    up to ``max_events_per_second`` × that parallelism: on Dataflow, workers × SDK processes per
    worker (one per vCPU) × ``--number_of_worker_harness_threads``; on the DirectRunner,
    ``--direct_num_workers``. To hold a job-wide ceiling, divide it by that number (or cap
    ``--max_num_workers``). ``shared_events_per_second`` instead paces every sink of a worker
    process together, with one bucket per process (a job-wide rate divided by the processes: see
    ``pipeline.pacing``). ``sleep_interval_ms`` is slept after every request.

    Counters (namespace ``WriteToPostHog``): ``events_sent``, ``batches_sent``, ``http_retries``,
    ``throttled_ms`` (time slept on purpose: pacing and back-off) and ``dead_lettered_<reason>``;
    distributions ``batch_size`` (events per acknowledged request) and ``request_latency_ms``.
    """

    def __init__(self, host: str, api_key: str, *, batch_size: int = 1000,
                 max_batch_bytes: int = 10_000_000, max_event_bytes: int = 1_000_000,
                 max_events_per_second: float | None = None, sleep_interval_ms: float = 0,
                 max_retry_seconds: float = 600, verify_tls: bool = True, timeout: float = 30,
                 backoff_base: float = 1.0, backoff_cap: float = 60.0,
                 shared_events_per_second: float | None = None):
        super().__init__()
        self._settings = dict(
            host=host, api_key=api_key, batch_size=batch_size, max_batch_bytes=max_batch_bytes,
            max_event_bytes=max_event_bytes, max_events_per_second=max_events_per_second,
            sleep_interval_ms=sleep_interval_ms, max_retry_seconds=max_retry_seconds,
            verify_tls=verify_tls, timeout=timeout, backoff_base=backoff_base,
            backoff_cap=backoff_cap)
        check_settings(**self._settings)
        if shared_events_per_second is not None and not shared_events_per_second > 0:
            raise ValueError("shared_events_per_second must be > 0 (or unset)")
        self._shared_rate = shared_events_per_second

    def expand(self, pcoll: PCollection) -> WriteToPostHogResult:
        # StageRecord: the markers passed on carry their hours' facts (see transforms.coders).
        outputs = pcoll | "SendBatches" >> beam.ParDo(
            _WriteFn(self._settings, self._shared_rate)).with_output_types(
            StageRecord).with_outputs(_FAILED, main="checkpoints")
        return WriteToPostHogResult(failed=outputs[_FAILED], checkpoints=outputs.checkpoints)

    def display_data(self) -> dict[str, Any]:
        shown = ("host", "batch_size", "max_events_per_second", "sleep_interval_ms",
                 "max_retry_seconds", "verify_tls")
        return {name: self._settings[name] for name in shown
                if self._settings[name] is not None}


class _Sender:
    """Posts batches with ``client.send_encoded`` from a thread of its own, in submission order.

    Results and exceptions (``AuthenticationError`` among them) come back through each batch's
    ``Future``. The thread is a daemon so that an interrupted run does not wait out a batch's
    retries before it exits; it closes the client once it has stopped.
    """

    def __init__(self, client: PostHogClient):
        self._client = client
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="posthog-sender", daemon=True)
        self._thread.start()

    def submit(self, batch: list) -> Future:
        future: Future = Future()
        self._jobs.put((future, batch))
        return future

    def stop(self) -> None:
        """Stop once the batches submitted so far are sent or cancelled."""
        self._jobs.put(None)

    def _run(self) -> None:
        try:
            while (job := self._jobs.get()) is not None:
                future, batch = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(self._client.send_encoded(batch))
                except BaseException as exc:  # whatever it is, the bundle waiting must see it
                    future.set_exception(exc)
        finally:
            self._client.close()


class _Hour:
    """What became of the events received since the previous marker (or the bundle's start)."""

    __slots__ = ("marker", "sent", "dead", "held", "unsettled")

    def __init__(self):
        self.marker: HourMarker | None = None  # set when the marker arrives
        self.sent = 0
        self.dead: collections.Counter = collections.Counter()
        self.held: list[tuple[Any, str, str | None]] = []
        self.unsettled = 0  # batches handed to the sender and not yet accounted for


class _WriteFn(beam.DoFn):
    """Buffers events into batches, sends them, holds each hour's dead letters until its marker.

    A marker does not wait for its hour's batches: it is queued and released, with its counts and
    dead letters, as soon as they and every earlier batch are settled, while the next hour's
    events are already being batched.
    """

    def __init__(self, settings: dict[str, Any], shared_rate: float | None = None):
        self._settings = settings
        self._shared_rate = shared_rate
        self._events_sent = Metrics.counter(METRICS_NAMESPACE, "events_sent")
        self._batches_sent = Metrics.counter(METRICS_NAMESPACE, "batches_sent")
        self._retries = Metrics.counter(METRICS_NAMESPACE, "http_retries")
        self._throttled_ms = Metrics.counter(METRICS_NAMESPACE, "throttled_ms")
        self._batch_size = Metrics.distribution(METRICS_NAMESPACE, "batch_size")
        self._latency_ms = Metrics.distribution(METRICS_NAMESPACE, "request_latency_ms")
        self._dead_counters: dict[str, Any] = {}

    def setup(self) -> None:
        _raise_gc_threshold()
        pacer = shared_bucket(self._shared_rate) if self._shared_rate else None
        self._client = PostHogClient(**self._settings, pacer=pacer)
        self._max_events = self._settings["batch_size"]
        self._max_bytes = self._client.max_payload_bytes
        # encode() runs here; the client's sending state is touched by the sender thread alone.
        self._sender = _Sender(self._client)
        self._in_flight: collections.deque[tuple[Future, _Hour]] = collections.deque()

    def start_bundle(self) -> None:
        # Left over only if the previous bundle failed; the runner retries that bundle's events.
        for future, _ in self._in_flight:
            future.cancel()
        self._in_flight.clear()
        self._batch: list[tuple[dict, bytes]] = []
        self._batch_bytes = 0
        self._hour = _Hour()
        self._closed: collections.deque[_Hour] = collections.deque()  # markers not yet released

    def process(self, element: Any) -> Iterable[Any]:
        if type(element) is list:  # a chunk of events: Beam's per-element work paid once
            flushed = False
            for event in element:
                flushed = self._add(event) or flushed
            if flushed:
                yield from self._release()
            return
        if isinstance(element, HourMarker):
            self._flush()
            self._hour.marker = element
            self._closed.append(self._hour)
            self._hour = _Hour()
            yield from self._release()
            return
        if self._add(element):
            yield from self._release()

    def _add(self, event: Any) -> bool:
        """Add one event to the pending batch; whether a full batch went to the sender first."""
        try:
            data = self._client.encode(event)
        except UnsendableEvent as exc:
            self._hold(self._hour, event, exc.reason, str(exc))
            return False
        flushed = False
        # Same accounting as the client's own chunking, so that one flush is one request.
        if self._batch and (len(self._batch) >= self._max_events
                            or self._batch_bytes + len(data) + 1 > self._max_bytes):
            self._flush()
            flushed = True
        self._batch.append((event, data))
        self._batch_bytes += len(data) + 1
        return flushed

    def finish_bundle(self) -> Iterable[Any]:
        self._flush()
        while self._in_flight:
            self._settle_one()
        for output in self._release():
            if isinstance(output, TaggedOutput):
                yield TaggedOutput(output.tag, GlobalWindows.windowed_value(output.value))
            else:
                yield GlobalWindows.windowed_value(output)
        for event, reason, detail in self._hour.held:
            yield TaggedOutput(_FAILED, GlobalWindows.windowed_value(
                _dead_letter(event, reason, detail, None)))
        self._hour = _Hour()

    def teardown(self) -> None:
        for future, _ in getattr(self, "_in_flight", ()):
            future.cancel()
        sender = getattr(self, "_sender", None)
        if sender is not None:
            sender.stop()  # which closes the client
        elif getattr(self, "_client", None) is not None:
            self._client.close()

    def _flush(self) -> None:
        """Hand the pending batch to the sender, first settling the oldest if too many are out."""
        if not self._batch:
            return
        if len(self._in_flight) >= _IN_FLIGHT:
            self._settle_one()
        self._in_flight.append((self._sender.submit(self._batch), self._hour))
        self._hour.unsettled += 1
        self._batch, self._batch_bytes = [], 0

    def _release(self) -> Iterator[Any]:
        """Emit, in order, each marker whose hour has no batch left unsettled, and its letters."""
        while self._in_flight and self._in_flight[0][0].done():
            self._settle_one()
        while self._closed and not self._closed[0].unsettled:
            hour = self._closed.popleft()
            letters = [_dead_letter(event, reason, detail, hour.marker.hour)
                       for event, reason, detail in hour.held]
            for letter in letters:
                yield TaggedOutput(_FAILED, letter)
            counts = {"events_sent": hour.sent}
            counts.update((f"dead:{reason}", n) for reason, n in hour.dead.items())
            yield hour.marker.with_counts(counts).with_letters(letters)

    def _settle_one(self) -> None:
        # Counters are updated here, in the bundle's thread, where Beam records them. result()
        # re-raises what the sender raised: AuthenticationError must stop the run.
        future, hour = self._in_flight.popleft()
        result = future.result()
        hour.unsettled -= 1
        hour.sent += result.acknowledged
        self._events_sent.inc(result.acknowledged)
        self._batches_sent.inc(result.batches_sent)
        self._retries.inc(result.retries)
        self._throttled_ms.inc(result.throttled_ms)
        for size in result.batch_sizes:
            self._batch_size.update(size)
        for latency in result.latencies_ms:
            self._latency_ms.update(round(latency))
        for failed in result.failed:
            self._hold(hour, failed.event, failed.reason, failed.detail)

    def _hold(self, hour: _Hour, event: Any, reason: str, detail: str | None) -> None:
        hour.held.append((event, reason, detail))
        hour.dead[reason] += 1
        counter = self._dead_counters.get(reason)
        if counter is None:
            counter = self._dead_counters[reason] = Metrics.counter(
                METRICS_NAMESPACE, f"dead_lettered_{reason}")
        counter.inc()


def _raise_gc_threshold() -> None:
    # The worker process's setting, shared with every stage fused here: only ever raised, and left
    # alone when automatic collection is off (0).
    gen0, gen1, gen2 = gc.get_threshold()
    if 0 < gen0 < _GC_GEN0_THRESHOLD:
        gc.set_threshold(_GC_GEN0_THRESHOLD, gen1, gen2)


def _dead_letter(event: Any, reason: str, detail: str | None, hour: str | None) -> DeadLetter:
    return DeadLetter(reason=reason, stage="deliver", hour=hour, file=None, line_number=None,
                      payload=event, detail=detail)
