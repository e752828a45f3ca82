"""What PostHog does to ids, names and person properties on its own, read from its public source.

The job's generated events are built against these rules, and ``sandbox.persons`` models PostHog's
person processing with them. Each rule cites the file it comes from in PostHog/posthog.
"""

from __future__ import annotations

__all__ = [
    "EVENT_TO_PERSON_PROPERTIES", "MAX_DISTINCT_ID_CHARS", "MAX_EVENT_NAME_CHARS",
    "MAX_GROUP_KEY_CHARS", "MAX_GROUP_TYPES", "MAX_MERGEABLE_CHARS", "captured_distinct_id",
    "initial_name", "is_distinct_id_illegal", "is_distinct_id_unmergeable", "person_updates",
]

# capture stringifies distinct_id, replaces NUL by U+FFFD and keeps its first 200 characters:
# RawEvent::extract_distinct_id in
# https://github.com/PostHog/posthog/blob/master/rust/common/types/src/event.rs
MAX_DISTINCT_ID_CHARS = 200
# sanitizeEventName keeps an event name's first 200 characters:
# https://github.com/PostHog/posthog/blob/master/nodejs/src/utils/db/utils.ts
MAX_EVENT_NAME_CHARS = 200
# MAX_GROUP_TYPES_PER_TEAM: a project gets at most 5 group types; later ones are not created:
# https://github.com/PostHog/posthog/blob/master/nodejs/src/worker/ingestion/group-type-manager.ts
MAX_GROUP_TYPES = 5
# Group keys and distinct ids are stored in varchar(400) columns: a longer group key drops the
# group, a longer id can never be merged (isDistinctIdUnmergeable, below).
MAX_GROUP_KEY_CHARS = 400
MAX_MERGEABLE_CHARS = 400

# EVENT_TO_PERSON_PROPERTIES and CAMPAIGN_PROPERTIES: ingestion copies these from every event
# onto its person, as $x (the last event processed) and $initial_x (the first one):
# https://github.com/PostHog/posthog/blob/master/nodejs/src/common/persons/person-property-utils.ts
_EVENT_TO_PERSON = (
    "$app_build", "$app_name", "$app_namespace", "$app_version", "$browser", "$browser_version",
    "$device_type", "$current_url", "$pathname", "$os", "$os_name", "$os_version",
    "$referring_domain", "$referrer", "$screen_height", "$screen_width", "$viewport_height",
    "$viewport_width", "$raw_user_agent")
_CAMPAIGN = (
    "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_name", "utm_term", "gclid",
    "gad_source", "gclsrc", "dclid", "gbraid", "wbraid", "fbclid", "msclkid", "twclid",
    "li_fat_id", "mc_cid", "igshid", "ttclid", "rdt_cid", "irclid", "_kx", "epik", "qclid",
    "sccid")
EVENT_TO_PERSON_PROPERTIES = _EVENT_TO_PERSON + _CAMPAIGN
_COPIED = frozenset(EVENT_TO_PERSON_PROPERTIES)

# isDistinctIdIllegal: ids PostHog assumes come from a bug, in any case or only as written, bare
# or in single or double quotes:
# https://github.com/PostHog/posthog/blob/master/nodejs/src/common/persons/person-utils.ts
_ILLEGAL_ANY_CASE = ("anonymous", "guest", "distinctid", "distinct_id", "id", "not_authenticated",
                     "email", "undefined", "true", "false")
_ILLEGAL_AS_WRITTEN = ("[object Object]", "NaN", "None", "none", "null", "0", "undefined")


def _quoted(ids: tuple[str, ...]) -> frozenset[str]:
    return frozenset((*ids, *(f"'{i}'" for i in ids), *(f'"{i}"' for i in ids)))


_ILLEGAL_LOWER = _quoted(_ILLEGAL_ANY_CASE)
_ILLEGAL_EXACT = _quoted(_ILLEGAL_AS_WRITTEN)


def is_distinct_id_illegal(distinct_id: str) -> bool:
    """PostHog's ``isDistinctIdIllegal``: blank, or one of the generic ids it never merges."""
    return (distinct_id.strip() == "" or distinct_id.lower() in _ILLEGAL_LOWER
            or distinct_id in _ILLEGAL_EXACT)


def is_distinct_id_unmergeable(distinct_id: str) -> bool:
    """PostHog's ``isDistinctIdUnmergeable``: illegal, or holding NUL, or over 400 characters."""
    return (is_distinct_id_illegal(distinct_id) or "\x00" in distinct_id
            or len(distinct_id) > MAX_MERGEABLE_CHARS)


def captured_distinct_id(distinct_id: str) -> str:
    """The distinct_id PostHog stores for an event sent with ``distinct_id`` (a non-empty str)."""
    if "\x00" in distinct_id:
        distinct_id = distinct_id.replace("\x00", "\ufffd")
    return distinct_id[:MAX_DISTINCT_ID_CHARS]


def initial_name(key: str) -> str:
    """PostHog's first-touch name for an event-to-person property: ``$initial_`` + the key
    without its first ``$`` (``$browser`` -> ``$initial_browser``, ``gclid`` ->
    ``$initial_gclid``)."""
    return "$initial_" + key.replace("$", "", 1)


_INITIAL_NAMES = {key: initial_name(key) for key in EVENT_TO_PERSON_PROPERTIES}


def person_updates(properties: dict) -> tuple[dict, dict]:
    """An event's ``$set`` and ``$set_once`` as PostHog applies them: its own, plus each
    event-to-person property it carries (``$set`` keeps an explicit value over the copy), as
    ``personInitialAndUTMProperties`` in
    https://github.com/PostHog/posthog/blob/master/nodejs/src/utils/db/utils.ts does. The
    event's dicts are not changed."""
    set_, set_once = properties.get("$set"), properties.get("$set_once")
    set_ = set_ if type(set_) is dict else {}
    set_once = set_once if type(set_once) is dict else {}
    copied = _COPIED.intersection(properties)
    if not copied:
        return set_, set_once
    # The event's own $set and $set_once win over the copies (PostHog only fills what is absent).
    set_ = {**{key: properties[key] for key in copied}, **set_}
    set_once = {**{_INITIAL_NAMES[key]: properties[key] for key in copied}, **set_once}
    if "$os_name" in copied:  # an alias of $os, not kept under its own name
        set_.setdefault("$os", properties["$os_name"])
        set_once.setdefault("$initial_os", properties["$os_name"])
        set_.pop("$os_name", None)
        set_once.pop("$initial_os_name", None)
    return set_, set_once
