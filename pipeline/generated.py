"""Events the job generates from what it saw across all hours: ``$identify`` and friends.

They are computed after every hour of the run is committed (a side input on the commit step is the
barrier) from the per-hour facts in the work_dir, so hours done by earlier runs of the job count
too: a resumed job sends the same generated events as one that ran straight through, with the
same deterministic uuids.
"""

from __future__ import annotations

import apache_beam as beam
import orjson

from connectors.files import configure_gcs_emulator, exists, read_bytes, write_atomically
from pipeline.ledger import DEAD_LETTER, FACTS, GENERATED, LEDGER, hour_path, write_dead_letters
from pipeline.job import join, utc_now
from transforms.translate import identify_uuid
from transforms.records import DONE, FAILED


def _read_facts(hour: str, state: str, _barrier) -> list[dict]:
    configure_gcs_emulator()
    path = hour_path(state, FACTS, hour)
    return [orjson.loads(read_bytes(path))] if exists(path) else []


def _pairs(facts: dict):
    for user_id, device_id, timestamp in facts.get("pairs", ()):
        yield (user_id, device_id), timestamp


def identify_event(pair: tuple[str, str], timestamp: str) -> dict:
    """The ``$identify`` that merges a device's anonymous events into its user."""
    user_id, device_id = pair
    return {
        "event": "$identify",
        "distinct_id": user_id,
        "uuid": identify_uuid(user_id, device_id),
        "timestamp": timestamp,
        # Generated events carry no client IP: without this PostHog would geolocate our worker.
        "properties": {"$anon_distinct_id": device_id, "$geoip_disable": True,
                       "$lib": "aplistorical"},
    }


class GenerateEvents(beam.PTransform):
    """``PBegin -> PCollection[event dict]``: the job's generated events.

    ``barrier`` is a PCollection that is complete only when every hour of the run is committed.
    """

    def __init__(self, state: str, hours: list[str], barrier, identify_mode: str):
        super().__init__()
        self._state, self._hours, self._barrier = state, hours, barrier
        self._identify_mode = identify_mode

    def expand(self, pbegin):
        facts = (pbegin
                 | "Hours" >> beam.Create(self._hours)
                 | "ReadFacts" >> beam.FlatMap(_read_facts, self._state,
                                               beam.pvalue.AsList(self._barrier)))
        outputs = []
        if self._identify_mode == "pairs":
            outputs.append(facts
                           | "Pairs" >> beam.FlatMap(_pairs)
                           | "EarliestPerPair" >> beam.CombinePerKey(min)
                           | "Identify" >> beam.MapTuple(identify_event))
        if not outputs:
            return pbegin | "NoEvents" >> beam.Create([])
        return outputs | "AllGenerated" >> beam.Flatten()


def _write_generated(_, state: str, sent_by_name: dict, failed_by_name: dict, failed: list):
    configure_gcs_emulator()
    counts = {name: n - failed_by_name.get(name, 0) for name, n in sent_by_name.items()}
    path = join(state, DEAD_LETTER, GENERATED + ".jsonl")
    if failed or exists(path):
        write_dead_letters(path, failed)
    reasons: dict[str, int] = {}
    for letter in failed:
        reasons[letter.reason] = reasons.get(letter.reason, 0) + 1
    record = {"hour": GENERATED, "status": FAILED if failed else DONE, "counts": counts,
              "dead": reasons, "updated_at": utc_now(), "detail": None}
    write_atomically(join(state, LEDGER, GENERATED + ".json"), orjson.dumps(record))


class RecordGenerated(beam.PTransform):
    """Writes ``ledger/generated.json``: generated events sent per name and those that failed.

    Input: the generated ``PCollection[event dict]`` and the sink's failed
    ``PCollection[DeadLetter]``; output: a PCollection with one None once the record is written.
    """

    def __init__(self, state: str, failed):
        super().__init__()
        self._state, self._failed = state, failed

    def expand(self, events):
        def by_name(pcoll, label):
            return (pcoll | f"{label}Names" >> beam.Map(lambda e: e["event"])
                    | f"{label}Count" >> beam.combiners.Count.PerElement())
        sent = by_name(events, "Sent")
        failed_names = by_name(self._failed | beam.Map(lambda d: d.payload), "Failed")
        return (events.pipeline
                | "Once" >> beam.Create([None])
                | "WriteRecord" >> beam.Map(_write_generated, self._state,
                                            beam.pvalue.AsDict(sent),
                                            beam.pvalue.AsDict(failed_names),
                                            beam.pvalue.AsList(self._failed)))
