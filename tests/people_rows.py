"""Small hand-made Amplitude export rows about people and groups, for facts and generated events."""

from __future__ import annotations

import uuid

import orjson

from sandbox.generate import COLUMNS

APP = 636686


def row(event_time: str, *, user: str | None = "user-1", device: str | None = "device-1",
        event_type: str = "Clicked", user_properties: dict | None = None,
        groups: dict | None = None, group_properties: dict | None = None, name: str = "",
        **more) -> bytes:
    """One export line; every column present, as in real exports. ``event_time`` is
    ``YYYY-MM-DD HH:MM:SS``; the uuid is derived from ``name`` (default: time, user, type)."""
    data = dict.fromkeys(COLUMNS)
    seed = name or f"{event_time}/{user}/{device}/{event_type}"
    data.update({
        "app": APP, "event_type": event_type, "event_time": f"{event_time}.000000",
        "user_id": user, "device_id": device, "amplitude_id": 1234,
        "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, seed)), "event_properties": {},
        "user_properties": user_properties or {}, "groups": groups or {},
        "group_properties": group_properties or {}, "session_id": -1,
        "platform": "Web", "os_name": "Firefox", "os_version": "128",
        "device_family": "Windows", "country": "France",
    })
    data.update(more)
    return orjson.dumps(data)


def person(plan: str, referrer: str = "EMPTY", **more) -> dict:
    """User properties at one point in time; ``initial_referrer`` goes to ``$set_once``."""
    return {"plan": plan, "initial_referrer": referrer, "initial_gclid": "EMPTY", **more}
