"""The events the job generates from its facts, as pure functions of the chosen fact rows.

Every uuid is a UUIDv5 in the translation's namespace of a JSON array naming the event and what
it was built from, so a rerun, or a resumed job, sends the same uuids and PostHog deduplicates
them. Generated events carry no client IP, so each sets ``$geoip_disable``: without it PostHog
would place the person by the migration worker's address.
"""

from __future__ import annotations

import orjson

from transforms.ids import identify_uuid, name_uuid
from transforms.posthog_rules import captured_distinct_id, is_distinct_id_unmergeable

__all__ = [
    "file_identify_event", "file_identify_uuid", "group_identify_event", "group_identify_uuid",
    "identify_event", "person_snapshot_event", "person_snapshot_uuid",
]

_LIB = "aplistorical"


def _properties(**properties) -> dict:
    return {**properties, "$geoip_disable": True, "$lib": _LIB}


def identify_event(pair: tuple[str, str], timestamp: str,
                   uuid_of: tuple[str, str] | None = None) -> dict:
    """The ``$identify`` that merges a device's anonymous events into its user.

    ``uuid_of``: the (user_id, device_id) the uuid names, when ``pair`` names the device as
    PostHog stores it rather than as exported.
    """
    user_id, device_id = pair
    return {"event": "$identify", "distinct_id": user_id,
            "uuid": identify_uuid(*(uuid_of or pair)), "timestamp": timestamp,
            "properties": _properties(**{"$anon_distinct_id": device_id})}


def file_identify_uuid(hour: str, file: str, user_id: str) -> str:
    """UUIDv5 of ``["$identify", hour, file, user_id]``: one per user per export file."""
    return name_uuid(orjson.dumps(["$identify", hour, file, user_id]))


def file_identify_event(row: list) -> dict | None:
    """``--identify_mode per_file``: the ``$identify`` of a user's first event in a file.

    ``row`` is a ``files`` fact row: ``[hour, file, user_id, line_number, timestamp, device_id,
    properties]``. None when PostHog would refuse the user's id in a merge; a device id it would
    refuse is left out (the event then only sets the user's properties).
    """
    hour, file, user_id, _, timestamp, device_id, person = row
    if is_distinct_id_unmergeable(captured_distinct_id(user_id)):
        return None
    properties = {"$set": person}
    if device_id is not None:
        device = captured_distinct_id(device_id)
        if device != captured_distinct_id(user_id) and not is_distinct_id_unmergeable(device):
            properties["$anon_distinct_id"] = device
    return {"event": "$identify", "distinct_id": user_id,
            "uuid": file_identify_uuid(hour, file, user_id), "timestamp": timestamp,
            "properties": _properties(**properties)}


def group_identify_uuid(group_type: str, group_key: str, source_uuid: str) -> str:
    """UUIDv5 of ``["$groupidentify", type, key, uuid of the event it was taken from]``."""
    return name_uuid(orjson.dumps(["$groupidentify", group_type, group_key, source_uuid]))


def group_identify_event(row: list) -> dict:
    """The ``$groupidentify`` that gives a group its latest properties.

    ``row`` is a ``groups`` fact row: ``[group_type, group_key, timestamp, uuid, distinct_id,
    properties]``, the group's latest event.
    """
    group_type, group_key, timestamp, source_uuid, distinct_id, group_set = row
    return {"event": "$groupidentify", "distinct_id": distinct_id,
            "uuid": group_identify_uuid(group_type, group_key, source_uuid),
            "timestamp": timestamp,
            "properties": _properties(**{"$group_type": group_type, "$group_key": group_key,
                                         "$group_set": group_set})}


def person_snapshot_uuid(distinct_id: str, source_uuid: str) -> str:
    """UUIDv5 of ``["$set", distinct_id, uuid of the person's latest event]``."""
    return name_uuid(orjson.dumps(["$set", distinct_id, source_uuid]))


def person_snapshot_event(distinct_id: str, timestamp: str, source_uuid: str,
                          person: dict) -> dict:
    """The final ``$set`` of a person, sent on one of its distinct_ids: every property with its
    latest value and every first-touch property with its earliest (see ``pipeline.people``).

    ``timestamp`` and ``source_uuid`` are those of the person's latest event that set any.
    """
    return {"event": "$set", "distinct_id": distinct_id,
            "uuid": person_snapshot_uuid(distinct_id, source_uuid), "timestamp": timestamp,
            "properties": _properties(**{"$set": person})}
