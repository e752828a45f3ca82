"""What the job sent, per UTC day of the events' timestamps and per event name, from its work_dir.

An hour's facts count the events its rows became per day and per name; of those, the ones still
in the hour's dead letters (stage ``deliver``) were not acknowledged. ``ledger/generated.json``
counts the generated events per day and name, and ``dead_letter/generated.jsonl`` holds those not
acknowledged. So what the job sent = facts + generated − undelivered, which stays right after a
``resend`` (it empties dead letters) and after a repair (it rewrites the hours it redoes).

The facts also say which hours fed which day, which is what ``verify --repair`` re-reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from connectors.files import exists, read_bytes
from pipeline.ledger import DEAD_LETTER, FACTS, GENERATED, hour_path, read_records
from transforms.records import DONE

__all__ = ["Sent", "sent_by_the_job"]


@dataclass
class Sent:
    """Events the job had acknowledged, by day and by name."""

    days: dict[str, int] = field(default_factory=dict)
    names: dict[str, int] = field(default_factory=dict)
    hours_of_day: dict[str, list[str]] = field(default_factory=dict)  # hours whose rows fed it
    generated_days: set[str] = field(default_factory=set)  # days holding generated events
    newest_acknowledged_at: str | None = None  # when the latest ledger record was written
    generated_recorded_per_day: bool = True

    def add(self, day: str, name: str, n: int) -> None:
        self.days[day] = self.days.get(day, 0) + n
        self.names[name] = self.names.get(name, 0) + n


def _undelivered(path: str, sent: Sent) -> None:
    if not exists(path):
        return
    for line in read_bytes(path).splitlines():
        letter = orjson.loads(line)
        payload = letter.get("payload")
        if letter.get("stage") == "deliver" and isinstance(payload, dict):
            sent.add(str(payload.get("timestamp") or "")[:10], str(payload.get("event")), -1)


def sent_by_the_job(work_dir: str) -> Sent:
    """Counts over every done hour of the job and its generated events."""
    sent = Sent()
    records = read_records(work_dir)
    stamps = [r.get("updated_at") for r in records.values() if r.get("updated_at")]
    sent.newest_acknowledged_at = max(stamps) if stamps else None
    for hour, record in sorted(records.items()):
        if hour in (GENERATED, "repairs") or record.get("status") != DONE:
            continue
        path = hour_path(work_dir, FACTS, hour)
        if not exists(path):
            continue
        facts = orjson.loads(read_bytes(path))
        for day, counts in facts.get("days", {}).items():
            if counts.get("events"):
                sent.days[day] = sent.days.get(day, 0) + counts["events"]
                sent.hours_of_day.setdefault(day, []).append(hour)
        for name, n in facts.get("event_names", {}).items():
            sent.names[name] = sent.names.get(name, 0) + n
        _undelivered(hour_path(work_dir, DEAD_LETTER, hour), sent)
    generated = records.get(GENERATED)
    if generated is not None:
        if "days" not in generated:  # written before days were recorded
            sent.generated_recorded_per_day = False
        for day, names in generated.get("days", {}).items():
            sent.generated_days.add(day)
            for name, n in names.items():
                sent.add(day, name, n)
        _undelivered(hour_path(work_dir, DEAD_LETTER, GENERATED), sent)
    sent.days = {d: n for d, n in sorted(sent.days.items()) if n}
    sent.names = {k: n for k, n in sorted(sent.names.items()) if n}
    return sent
