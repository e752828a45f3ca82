"""The events the job generates from its facts, as pure functions of the chosen fact rows.

Every uuid is a UUIDv5 in the translation's namespace of a JSON array naming the event and what
it was built from, so a rerun, or a resumed job, sends the same uuids and PostHog deduplicates
them. Generated events carry no client IP, so each sets ``$geoip_disable``: without it PostHog
would place the person by the migration worker's address.
"""

from __future__ import annotations

import orjson

from transforms.ids import identify_uuid, name_uuid

__all__ = [
    "file_identify_event", "file_identify_uuid", "group_identify_event", "group_identify_uuid",
    "identify_event", "person_snapshot_event", "person_snapshot_uuid",
]

_LIB = "aplistorical"


def _properties(**properties) -> dict:
    return {**properties, "$geoip_disable": True, "$lib": _LIB}


def identify_event(pair: tuple[str, str], timestamp: str) -> dict:
    """The ``$identify`` that merges a device's anonymous events into its user."""
    user_id, device_id = pair
    return {"event": "$identify", "distinct_id": user_id,
            "uuid": identify_uuid(user_id, device_id), "timestamp": timestamp,
            "properties": _properties(**{"$anon_distinct_id": device_id})}


def file_identify_uuid(hour: str, file: str, user_id: str) -> str:
    """UUIDv5 of ``["$identify", hour, file, user_id]``: one per user per export file."""
    return name_uuid(orjson.dumps(["$identify", hour, file, user_id]))


def file_identify_event(row: list) -> dict:
    """``--identify_mode per_file``: the ``$identify`` of a user's first event in a file.

    ``row`` is a ``files`` fact row: ``[hour, file, user_id, line_number, timestamp, device_id,
    properties]``.
    """
    hour, file, user_id, _, timestamp, device_id, person = row
    properties = {"$set": person}
    if device_id is not None and device_id != user_id:
        properties["$anon_distinct_id"] = device_id
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


def person_snapshot_uuid(user_id: str, source_uuid: str) -> str:
    """UUIDv5 of ``["$set", user_id, uuid of the user's latest event]``."""
    return name_uuid(orjson.dumps(["$set", user_id, source_uuid]))


def person_snapshot_event(latest: list, earliest: list | None) -> dict | None:
    """The final ``$set`` of a user: the latest properties, and the earliest initial ones.

    ``latest`` is the user's ``person_set`` fact row and ``earliest`` its ``person_set_once``
    row (``[user_id, timestamp, uuid, properties]``). None when there is nothing to set.
    """
    user_id, timestamp, source_uuid, person = latest
    once = earliest[3] if earliest is not None else {}
    if not person and not once:
        return None
    properties = {"$set": person}
    if once:
        properties["$set_once"] = once
    return {"event": "$set", "distinct_id": user_id,
            "uuid": person_snapshot_uuid(user_id, source_uuid), "timestamp": timestamp,
            "properties": _properties(**properties)}
