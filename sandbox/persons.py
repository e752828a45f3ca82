"""A pure model of how PostHog turns ingested events into persons: merges and person properties.

No I/O: feed it events one by one, in the order PostHog would process them, and read the persons
back. Each rule follows PostHog's public source (repository PostHog/posthog, cited per rule);
the id, name and property rules it shares with the job live in ``transforms.posthog_rules``.

- capture stringifies ``distinct_id``, replaces NUL by U+FFFD and cuts it to 200 characters
  (``RawEvent::extract_distinct_id``,
  https://github.com/PostHog/posthog/blob/master/rust/common/types/src/event.rs); ingestion cuts
  event names to 200 characters (``sanitizeEventName``,
  https://github.com/PostHog/posthog/blob/master/nodejs/src/utils/db/utils.ts).
- Historical events are ordered per distinct_id only; ``interleave`` produces one of the orders
  PostHog may process a batch in.
- ``$identify`` with ``$anon_distinct_id`` and ``$create_alias``/``$merge_dangerously`` with
  ``alias`` merge the other id's person into the event's: refused with an ingestion warning when
  either id is illegal or unmergeable, and (except ``$merge_dangerously``) when the other person
  is already identified; when only the other id has a person, the event's id simply joins it
  (https://github.com/PostHog/posthog/blob/master/nodejs/src/worker/ingestion/persons/person-merge-service.ts,
  ``merge``, ``mergeDistinctIds``, ``mergePeople``, ``isMergeAllowed``;
  https://github.com/PostHog/posthog/blob/master/nodejs/src/common/persons/person-utils.ts,
  ``isDistinctIdIllegal``, ``isDistinctIdUnmergeable``).
- Each event's ``EVENT_TO_PERSON_PROPERTIES`` and ``CAMPAIGN_PROPERTIES`` are copied into its
  ``$set`` (unless already there) and, as ``$initial_<name without $>``, into its ``$set_once``
  (``personInitialAndUTMProperties`` in nodejs/src/utils/db/utils.ts; the sets in
  https://github.com/PostHog/posthog/blob/master/nodejs/src/common/persons/person-property-utils.ts).
- ``$set`` overwrites, ``$set_once`` fills only absent keys, ``$unset`` removes; a change only to
  existing "filtered" properties (``$current_url``, ``$browser`` ...) on an event that is not a
  person event (``$identify``, ``$create_alias``, ``$merge_dangerously``, ``$set``) does not
  trigger a person write, so it is not kept
  (https://github.com/PostHog/posthog/blob/master/nodejs/src/worker/ingestion/persons/person-update.ts,
  ``computeEventPropertyUpdates``).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

import orjson

from transforms.posthog_rules import (EVENT_TO_PERSON_PROPERTIES, MAX_DISTINCT_ID_CHARS,
                                     MAX_EVENT_NAME_CHARS, captured_distinct_id, initial_name,
                                     is_distinct_id_illegal, is_distinct_id_unmergeable,
                                     person_updates)

__all__ = ["EVENT_TO_PERSON_PROPERTIES", "MAX_DISTINCT_ID_CHARS", "MAX_EVENT_NAME_CHARS",
           "Person", "PersonModel", "capture_distinct_id", "initial_name", "interleave",
           "is_distinct_id_illegal", "is_distinct_id_unmergeable"]

# person-update.ts: "filtered" properties do not trigger a person write on their own.
_FILTERED = frozenset((
    "$current_url", "$pathname", "$referring_domain", "$referrer", "$screen_height",
    "$screen_width", "$viewport_height", "$viewport_width", "$browser", "$browser_version",
    "$device_type", "$raw_user_agent", "$os", "$os_name", "$os_version"))
_PERSON_EVENTS = frozenset(("$identify", "$create_alias", "$merge_dangerously", "$set"))
_NO_PERSON_UPDATE_EVENTS = frozenset(("$exception", "$$heatmap"))
# PostHog derives person uuids from the team and distinct_id; any fixed namespace will do here.
_PERSON_NAMESPACE = uuid.UUID("5a1b7c4e-2f0d-4c3b-9e8a-6d1f0b2c3a4e")


def capture_distinct_id(value) -> str | None:
    """The distinct_id capture stores for ``value``: None when capture would refuse the event."""
    if value is None:
        return None
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return captured_distinct_id(text) or None


@dataclass
class Person:
    """One person: its uuid, every distinct_id that resolves to it, properties, identified flag."""

    uuid: str
    distinct_ids: set[str] = field(default_factory=set)
    properties: dict = field(default_factory=dict)
    is_identified: bool = False
    created_at: str | None = None


class PersonModel:
    """Persons as PostHog builds them from events processed in ``ingest`` call order.

    ``warnings`` holds ``(kind, detail)`` for what PostHog reports as ingestion warnings or
    alters silently: ``cannot_merge_with_illegal_distinct_id``, ``cannot_merge_already_identified``,
    ``distinct_id_truncated``, ``event_name_truncated``, ``missing_distinct_id``.

    ``write_filtered_changes`` keeps changes PostHog would not write (a change only to filtered
    properties): the person as it would be if every update were written, to compare with.
    """

    def __init__(self, team_id: int = 1, write_filtered_changes: bool = False):
        self._team = team_id
        self._write_filtered = write_filtered_changes
        self._by_id: dict[str, Person] = {}
        self.warnings: list[tuple[str, str]] = []

    def person(self, distinct_id: str) -> Person | None:
        """The person ``distinct_id`` resolves to (capture's cut applied), or None."""
        return self._by_id.get(capture_distinct_id(distinct_id) or "")

    def persons(self) -> list[Person]:
        """Every person, each once, ordered by uuid."""
        unique = {id(p): p for p in self._by_id.values()}
        return sorted(unique.values(), key=lambda p: p.uuid)

    def ingest(self, event: dict) -> None:
        """Process one event as PostHog's capture and person ingestion would."""
        raw_id = event.get("distinct_id")
        distinct_id = capture_distinct_id(raw_id)
        if distinct_id is None:
            self.warnings.append(("missing_distinct_id", str(event.get("uuid"))))
            return
        if isinstance(raw_id, str) and raw_id != distinct_id:
            self.warnings.append(("distinct_id_truncated", distinct_id))
        name = str(event.get("event", ""))
        if len(name) > MAX_EVENT_NAME_CHARS:
            self.warnings.append(("event_name_truncated", name[:MAX_EVENT_NAME_CHARS]))
            name = name[:MAX_EVENT_NAME_CHARS]
        properties = event.get("properties") or {}
        if properties.get("$process_person_profile") is False:
            return
        timestamp = event.get("timestamp")
        set_, set_once = person_updates(properties)
        unset = properties.get("$unset") or ()
        if name in _NO_PERSON_UPDATE_EVENTS:
            set_, set_once, unset = {}, {}, ()
        other = None
        if name in ("$create_alias", "$merge_dangerously") and properties.get("alias"):
            other = str(properties["alias"])
        elif name == "$identify" and "$anon_distinct_id" in properties:
            other = str(properties["$anon_distinct_id"])
        identified = False
        if other is not None and other != distinct_id:
            identified = self._merge(name, other, distinct_id, timestamp, set_, set_once)
        person = self._by_id.get(distinct_id)
        if person is None:
            person = self._create(distinct_id, timestamp, set_, set_once, identified)
        else:
            self._update(person, name, set_, set_once, unset)
        if identified:
            person.is_identified = True

    def _create(self, distinct_id: str, timestamp, set_: dict, set_once: dict,
                identified: bool, *more_ids: str) -> Person:
        person_uuid = str(uuid.uuid5(_PERSON_NAMESPACE, f"{self._team}:{distinct_id}"))
        person = Person(uuid=person_uuid, properties={**set_once, **set_},
                        is_identified=identified, created_at=timestamp)
        for one in (distinct_id, *more_ids):
            person.distinct_ids.add(one)
            self._by_id[one] = person
        return person

    def _update(self, person: Person, name: str, set_: dict, set_once: dict, unset) -> None:
        current = person.properties
        changes: dict = {}
        triggers = False
        for key, value in set_once.items():
            if key not in current:
                changes[key] = value
                triggers = triggers or name in _PERSON_EVENTS or key not in _FILTERED
        for key, value in set_.items():
            if current.get(key, _ABSENT) != value:
                changes[key] = value
                triggers = (triggers or key not in current or name in _PERSON_EVENTS
                            or key not in _FILTERED)
        removed = [key for key in (unset if isinstance(unset, list) else list(unset))
                   if isinstance(key, str) and key in current]
        if removed:
            triggers = True
        if not triggers and not self._write_filtered:
            return  # a filtered-only change is never written
        current.update(changes)
        for key in removed:
            current.pop(key, None)

    def _merge(self, name: str, other: str, into: str, timestamp, set_: dict,
               set_once: dict) -> bool:
        """Merges ``other``'s person into ``into``'s; True when ``into`` becomes identified."""
        for illegal, partner in ((into, other), (other, into)):
            if is_distinct_id_unmergeable(illegal):
                self.warnings.append(("cannot_merge_with_illegal_distinct_id",
                                      f"{illegal!r} with {partner!r}"))
                return False
        source, target = self._by_id.get(other), self._by_id.get(into)
        if source is None and target is None:
            self._create(into, timestamp, set_, set_once, True, other)
        elif target is None:
            source.distinct_ids.add(into)  # joins the other person, identified or not
            self._by_id[into] = source
        elif source is None:
            target.distinct_ids.add(other)
            self._by_id[other] = target
        elif source is not target:
            if source.is_identified and name != "$merge_dangerously":
                self.warnings.append(("cannot_merge_already_identified",
                                      f"{other!r} into {into!r}"))
                return True
            target.properties = {**source.properties, **target.properties}
            for one in source.distinct_ids:
                self._by_id[one] = target
            target.distinct_ids |= source.distinct_ids
            if source.created_at and (not target.created_at
                                      or source.created_at < target.created_at):
                target.created_at = source.created_at
        return True


_ABSENT = object()


def interleave(events: list[dict], seed: int) -> list[dict]:
    """One order PostHog may process ``events`` in: each distinct_id's in sent order, the
    distinct_ids interleaved at random (historical events are ordered per distinct_id only,
    https://github.com/PostHog/posthog/blob/master/rust/capture/src/pipeline.rs)."""
    lanes: dict[str, list[dict]] = {}
    for event in events:
        lanes.setdefault(capture_distinct_id(event.get("distinct_id")) or "", []).append(event)
    queues = [list(reversed(lane)) for lane in lanes.values()]
    rng = random.Random(seed)
    order: list[dict] = []
    while queues:
        pick = rng.randrange(len(queues))
        order.append(queues[pick].pop())
        if not queues[pick]:
            queues[pick] = queues[-1]
            queues.pop()
    return order
