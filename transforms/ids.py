"""The ids the migration derives: event uuids, ``$identify`` uuids and session ids.

All of them are functions of the data alone (never random, never the clock), so a rerun sends
the same ids and PostHog deduplicates what it already has.
"""

from __future__ import annotations

import uuid
from hashlib import sha1
from typing import Any

import orjson

__all__ = ["UUID_NAMESPACE", "canonical_uuid", "identify_uuid", "name_uuid", "session_uuid"]

# Fixed namespace of every UUIDv5 (and of the session ids' hash). Changing it would give every
# migrated event a new uuid, so the next run would duplicate all history: never change it.
UUID_NAMESPACE = uuid.UUID("b747bf09-1061-40d2-9a1f-b5658220c520")

_NAMESPACE_BYTES = UUID_NAMESPACE.bytes
# SHA-1 state after the namespace's bytes: every id copies it and hashes only its own name,
# which costs less than a new hash object over the joined bytes. copy() is thread-safe.
_NAMESPACE_SHA1 = sha1(_NAMESPACE_BYTES)
_NIL_UUID = "00000000-0000-0000-0000-000000000000"
_HEX_DIGITS = b"0123456789abcdefABCDEF"
# A hex digit with its top two bits set to the RFC 9562 variant, 10.
_VARIANT_DIGITS = {digit: f"{0x8 | (int(digit, 16) & 0x3):x}" for digit in "0123456789abcdef"}
# A session's events arrive together, so one hash serves many rows; the bound keeps memory flat.
_SESSION_UUIDS: dict[tuple[str, int], str] = {}
_CACHE_LIMIT = 65536


def name_uuid(name: bytes) -> str:
    """UUIDv5 of ``name`` in ``UUID_NAMESPACE`` (what ``uuid.uuid5`` gives for the same text)."""
    # uuid.uuid5 takes only str and builds a UUID object; this is the same RFC 9562 recipe,
    # applied to the hex digits: the version digit becomes 5, the variant digit gets bits 10.
    hasher = _NAMESPACE_SHA1.copy()
    hasher.update(name)
    h = hasher.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT_DIGITS[h[16]]}{h[17:20]}-{h[20:32]}"


def identify_uuid(user_id: str, device_id: str) -> str:
    """The uuid of the ``$identify`` event linking ``device_id`` to ``user_id``.

    UUIDv5 of the JSON array ``["$identify", user_id, device_id]``: one stable id per pair, so
    reruns do not repeat the link.
    """
    return name_uuid(orjson.dumps(["$identify", user_id, device_id]))


def session_uuid(key: str, session_id: int) -> str:
    """UUIDv7 whose time is the session's start (``session_id``, in ms), unique per session.

    The other 74 bits come from SHA-1 over the namespace's bytes and ``<session_id>:<key>``,
    where ``key`` is the device (or distinct) id; the digits end at the first colon, so the pair
    reads back unambiguously. ``session_id`` must be in ``[0, 2**48)``.
    """
    cached = _SESSION_UUIDS.get((key, session_id))
    if cached is not None:
        return cached
    # 48 bits of time, then the digest's first 80 bits with the version digit 7 and the variant
    # bits set, as name_uuid does: built on hex digits, which a row with a new session pays for.
    ms = session_id.to_bytes(6, "big").hex()
    hasher = _NAMESPACE_SHA1.copy()
    hasher.update(f"{session_id}:{key}".encode())
    h = hasher.hexdigest()
    result = f"{ms[:8]}-{ms[8:]}-7{h[1:4]}-{_VARIANT_DIGITS[h[4]]}{h[5:8]}-{h[8:20]}"
    if len(_SESSION_UUIDS) >= _CACHE_LIMIT:
        _SESSION_UUIDS.clear()
    _SESSION_UUIDS[(key, session_id)] = result
    return result


def canonical_uuid(value: Any) -> str | None:
    """The lower-case canonical form of a hyphenated UUID string, else None (nil UUID too)."""
    if type(value) is not str or len(value) != 36 or not value.isascii():
        return None
    # Deleting the hex digits must leave just the four hyphens, and they must sit where UUIDs
    # have them: one pass in C, and no exception to raise for the many rows without a uuid.
    if (value.encode().translate(None, _HEX_DIGITS) != b"----"
            or value[8:24:5] != "----"):
        return None
    value = value.lower()
    return None if value == _NIL_UUID else value
