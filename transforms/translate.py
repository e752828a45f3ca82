"""One Amplitude export line in, one PostHog event (or a reason why not) out.

Pure and Beam-free: ``translate_line`` is the whole translation, ``transforms.transform`` wraps it
for the pipeline. The field mapping lives in ``transforms.mapping`` (and docs/mapping.md); the
rules below follow the order given there, and the first rule that rejects a row names the reason.

Nothing here is random or depends on the clock: the same line always gives the same event, so a
rerun sends the same uuids and PostHog deduplicates them (see ``transforms.ids``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from transforms import mapping
from transforms.ids import UUID_NAMESPACE, canonical_uuid, identify_uuid, name_uuid, session_uuid
from transforms.settings import TranslationSettings
from transforms.timestamps import parse_timestamp

__all__ = [
    "DEAD_REASONS", "GROUP_IDENTIFY", "SKIP_REASONS", "UUID_NAMESPACE", "Translation",
    "identify_uuid", "parse_timestamp", "row_timestamp", "translate_line", "user_and_device",
]

INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_EVENT_TYPE = "missing_event_type"
IGNORED = "ignored"
SESSION_MARKER = "session_marker"
GROUP_IDENTIFY = "group_identify"
MISSING_IDENTITY = "missing_identity"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_EVENT_PROPERTIES = "invalid_event_properties"
SKIP_REASONS = frozenset({IGNORED, SESSION_MARKER, GROUP_IDENTIFY})
DEAD_REASONS = frozenset({INVALID_JSON, NOT_AN_OBJECT, MISSING_EVENT_TYPE, MISSING_IDENTITY,
                          INVALID_TIMESTAMP, INVALID_EVENT_PROPERTIES})


class Translation(NamedTuple):
    """The outcome for one line: ``event`` when it migrates, else ``reason`` (and ``detail``).

    ``dead`` tells a dead letter (bad data) from a skip (a row we choose not to send). ``row`` is
    the parsed export row whenever the line was a JSON object.
    """

    event: dict[str, Any] | None
    reason: str | None
    dead: bool
    detail: str | None
    row: dict[str, Any] | None


_DEFAULT_SETTINGS = TranslationSettings()
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "a number",
               float: "a number", bool: "a boolean", type(None): "null"}
_EVENT_NAMES = mapping.EVENT_NAMES
# Events that are not sent, by name: one lookup per row for all of them.
_SKIPPED_NAMES = {**dict.fromkeys(mapping.SESSION_MARKERS, SESSION_MARKER),
                  **dict.fromkeys(mapping.GROUP_IDENTIFY_EVENTS, GROUP_IDENTIFY)}
_MOBILE_OS = {"ios": "iOS", "android": "Android"}
_WEB = "web"
_PLATFORMS = {"web": _WEB, **_MOBILE_OS}
_PERSON_KEYS = ("$os", "$browser", "$device_type", "$geoip_country_name",
                "$geoip_subdivision_1_name", "$geoip_city_name")
_MAX_SESSION_ID = 1 << 48  # UUIDv7 keeps 48 bits of milliseconds


def _compile_copies() -> tuple[tuple, tuple, frozenset, frozenset]:
    """The table's ``copy`` rows as lookups: single column copies, and copies from inside
    event_properties / user_properties (with the keys they read, to skip rows that have none)."""
    containers = {"event_properties.": 1, "user_properties.": 2}
    columns, nested = [], []
    for row in mapping.TABLE:
        if not row.copy:
            continue
        destination = row.destination.removeprefix("properties.")
        sources = []
        for source in row.sources:
            prefix = next((p for p in containers if source.startswith(p)), "")
            sources.append((containers.get(prefix, 0), source[len(prefix):]))
        if len(sources) == 1 and sources[0][0] == 0:
            columns.append((sources[0][1], destination))
        elif all(container for container, _ in sources):
            nested.append((tuple(sources), destination))
        else:
            raise ValueError(f"a copy reads one column or only nested keys: {row}")
    keys = [frozenset(k for sources, _ in nested for c, k in sources if c == wanted)
            for wanted in (1, 2)]
    return tuple(columns), tuple(nested), keys[0], keys[1]


_COLUMN_COPIES, _NESTED_COPIES, _EVENT_PROPERTY_KEYS, _USER_PROPERTY_KEYS = _compile_copies()
_make = tuple.__new__  # NamedTuple's own __new__ is a Python-level call; this is the C one
# User property key -> its $set_once name ("$initial_x"), or "" when it is not an initial_* key.
# Rows repeat the same few keys, so each is tested and prefixed once; bounded like the id caches.
_SET_ONCE_NAMES: dict[str, str] = {}
_CACHE_LIMIT = 65536


def _identity(value: Any) -> str | None:
    """An id as sent to PostHog: a string that is not blank (numbers written out), else None."""
    if type(value) is str:
        return value if value and not value.isspace() else None
    if type(value) is int:
        return str(value)
    return None


def user_and_device(row: dict[str, Any]) -> tuple[str | None, str | None]:
    """The row's ``user_id`` and ``device_id`` as ids (None when missing or blank)."""
    return _identity(row.get("user_id")), _identity(row.get("device_id"))


def row_timestamp(row: dict[str, Any]) -> str | None:
    """The row's event time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: the first parseable source."""
    get = row.get
    return (parse_timestamp(get("event_time")) or parse_timestamp(get("client_event_time"))
            or parse_timestamp(get("server_received_time")))


def _not_migrated(reason: str, detail: str, row: dict[str, Any] | None) -> Translation:
    return Translation(None, reason, reason in DEAD_REASONS, detail, row)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def translate_line(line: bytes, settings: TranslationSettings | None = None) -> Translation:
    """Translate one raw export line (NDJSON, without its newline); settings default to none."""
    if settings is None:
        settings = _DEFAULT_SETTINGS
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return _not_migrated(INVALID_JSON, str(exc), None)
    if type(row) is not dict:
        return _not_migrated(NOT_AN_OBJECT, f"the line is {_JSON_TYPES.get(type(row))}", None)
    get = row.get

    source_name = get("event_type")
    if type(source_name) is not str or not source_name or source_name.isspace():
        what = "missing" if source_name is None else (
            "empty" if type(source_name) is str else _JSON_TYPES.get(type(source_name)))
        return _not_migrated(MISSING_EVENT_TYPE, f"event_type is {what}", row)
    if source_name in settings.ignore_events:
        return _not_migrated(IGNORED, source_name, row)
    skipped = _SKIPPED_NAMES.get(source_name)
    if skipped is not None:  # a $groupidentify row still feeds the job's group facts
        return _not_migrated(skipped, source_name, row)
    name = settings.rename_events.get(source_name) or _EVENT_NAMES.get(source_name, source_name)

    device_id = get("device_id")
    if type(device_id) is not str or not device_id or device_id.isspace():
        device_id = _identity(device_id)
    distinct_id = get("user_id")
    if type(distinct_id) is not str or not distinct_id or distinct_id.isspace():
        distinct_id = _identity(distinct_id) or device_id
    if distinct_id is None:
        amplitude_id = _identity(get("amplitude_id"))
        if amplitude_id is None:
            return _not_migrated(MISSING_IDENTITY, "user_id, device_id and amplitude_id are empty",
                                 row)
        distinct_id = "amplitude:" + amplitude_id

    event_uuid = canonical_uuid(get("uuid"))
    if event_uuid is None:
        insert_id = get("$insert_id")
        if (type(insert_id) is str and insert_id) or type(insert_id) is int:
            app = get("app")
            event_uuid = name_uuid(f"{'' if app is None else app}:{insert_id}".encode())
        else:
            try:
                event_uuid = name_uuid(orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
            except orjson.JSONEncodeError:  # nested deeper than orjson writes: hash the line
                event_uuid = name_uuid(line.strip())

    timestamp = parse_timestamp(get("event_time")) or row_timestamp(row)  # one call when valid
    if timestamp is None:
        return _not_migrated(INVALID_TIMESTAMP, "no parseable event_time, client_event_time or "
                             f"server_received_time (event_time={_short(get('event_time'))})", row)

    event_properties = get("event_properties")
    if event_properties is None:
        event_properties = {}
    elif type(event_properties) is not dict:
        return _not_migrated(INVALID_EVENT_PROPERTIES,
                             f"event_properties is {_JSON_TYPES.get(type(event_properties))}", row)
    user_properties = get("user_properties")
    if type(user_properties) is not dict:
        user_properties = {}

    renames = settings.rename_properties
    properties = _renamed(event_properties, renames) if renames else event_properties.copy()
    # "value or ...": a truthy value is neither null nor "", and most values are truthy, so they
    # pass on one test (comparing a number with "" is slow).
    for source, destination in _COLUMN_COPIES:
        value = get(source)
        if value or (value is not None and value != ""):
            properties[destination] = value
    # keys().isdisjoint() walks the smaller side; set.isdisjoint(dict) would walk the whole dict.
    if ((event_properties and not event_properties.keys().isdisjoint(_EVENT_PROPERTY_KEYS))
            or (user_properties and not user_properties.keys().isdisjoint(_USER_PROPERTY_KEYS))):
        containers = (row, event_properties, user_properties)
        for sources, destination in _NESTED_COPIES:
            for container, key in sources:
                value = containers[container].get(key)
                if value or (value is not None and value != ""):
                    properties[destination] = value
                    break
    properties["$geoip_disable"] = True
    _add_device(get, properties)

    session_id = get("session_id")
    if type(session_id) is int and session_id > 0:
        properties["$amplitude_session_id"] = session_id
        if session_id < _MAX_SESSION_ID:
            properties["$session_id"] = session_uuid(device_id or distinct_id, session_id)

    groups = get("groups")
    if groups and type(groups) is dict:
        _add_groups(groups, properties)

    _add_user_properties(user_properties, settings.user_properties_mode, properties)
    if settings.import_job_id is not None:  # after user properties: the job's tag always wins
        properties["$import_job_id"] = settings.import_job_id
    event = {"event": name, "distinct_id": distinct_id, "uuid": event_uuid, "timestamp": timestamp,
             "properties": properties}
    return _make(Translation, (event, None, False, None, row))


def _renamed(event_properties: dict[str, Any], renames: dict[str, str]) -> dict[str, Any]:
    """A copy with keys renamed; a renamed key replaces an existing key of the new name."""
    kept: dict[str, Any] = {}
    moved: dict[str, Any] = {}
    for key, value in event_properties.items():
        new_key = renames.get(key)
        if new_key is None:
            kept[key] = value
        else:
            moved[new_key] = value
    kept.update(moved)
    return kept


def _add_device(get: Any, properties: dict[str, Any]) -> None:
    """OS, browser and device properties; what Amplitude's fields mean depends on the platform."""
    platform = get("platform")
    os_name = get("os_name")
    kind = _PLATFORMS.get(platform.lower()) if type(platform) is str else None
    if kind is None and type(os_name) is str:
        kind = _MOBILE_OS.get(os_name.lower())
    os_version = get("os_version")
    if kind is None:
        if os_name is not None and os_name != "":
            properties["$os"] = os_name
        if os_version is not None and os_version != "":
            properties["$os_version"] = os_version
    elif kind is _WEB:  # on web rows os_* describe the browser, device_* the OS
        if os_name is not None and os_name != "":
            properties["$browser"] = os_name
        if os_version is not None and os_version != "":
            properties["$browser_version"] = os_version
        os = get("device_family")
        if os is None or os == "":
            os = get("device_type")
            if os is None or os == "":
                os = get("device_model")
        if os is not None and os != "":
            properties["$os"] = os
        mobile = type(os) is str and os.lower() in _MOBILE_OS
        properties["$device_type"] = "Mobile" if mobile else "Desktop"
    else:
        properties["$os"] = kind
        if os_version is not None and os_version != "":
            properties["$os_version"] = os_version
        model = get("device_model")
        if model is not None and model != "":
            properties["$device_model"] = model
        manufacturer = get("device_manufacturer")
        if manufacturer is None or manufacturer == "":
            manufacturer = get("device_brand")
        if manufacturer is not None and manufacturer != "":
            properties["$device_manufacturer"] = manufacturer
        family = get("device_family")
        names = f"{model if type(model) is str else ''} {family if type(family) is str else ''}"
        names = names.lower()
        properties["$device_type"] = "Tablet" if "ipad" in names or "tablet" in names else "Mobile"
        carrier = get("device_carrier")
        if (carrier is not None and carrier != ""
                and not (type(carrier) is str and carrier.lower() == "unknown")):
            properties["$network_carrier"] = carrier


def _add_groups(groups: dict[str, Any], properties: dict[str, Any]) -> None:
    out = {}
    for group_type, key in groups.items():
        if type(key) is list:
            key = key[0] if key else None
        if type(key) is str:
            if key:
                out[group_type] = key
        elif type(key) in (int, float):
            out[group_type] = str(key)
    if out:
        properties["$groups"] = out


def _set_once_name(key: str) -> str:
    name = "$" + key if key[:8] == "initial_" else ""
    if len(_SET_ONCE_NAMES) >= _CACHE_LIMIT:
        _SET_ONCE_NAMES.clear()
    _SET_ONCE_NAMES[key] = name
    return name


def _add_user_properties(user_properties: dict[str, Any], mode: str,
                         properties: dict[str, Any]) -> None:
    if user_properties:
        set_once = {}
        names = _SET_ONCE_NAMES
        for key, value in user_properties.items():
            if value != "EMPTY" and value is not None and value != "":
                name = names.get(key)
                if name is None:
                    name = _set_once_name(key)
                if name:
                    set_once[name] = value
        if set_once:
            properties["$set_once"] = set_once
    if mode == "set":
        person = user_properties.copy()
        for key in _PERSON_KEYS:
            value = properties.get(key)
            if value is not None:
                person[key] = value
        if person:
            properties["$set"] = person
    elif mode == "root":
        for key, value in user_properties.items():
            properties.setdefault(key, value)
    elif user_properties:  # "property"
        properties.setdefault("user_properties", user_properties)
