"""Every Amplitude export field and the PostHog field it becomes, as data.

``TABLE`` is the mapping docs/mapping.md shows (``python -m transforms.mapping`` prints it) and a
test keeps the two equal. Rows marked ``copy`` are applied by the translation straight from this table;
the other rows describe rules that ``transforms.translate`` implements in code, and each of them
has a behaviour test keyed by the row.

Sources are top-level columns of the export row, or ``event_properties.<key>`` /
``user_properties.<key>`` for keys inside those objects.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "EVENT_NAMES", "GROUP_IDENTIFY_EVENTS", "IDENTITY_FIELDS", "NOT_MIGRATED", "SESSION_MARKERS",
    "TABLE", "TIMESTAMP_FIELDS", "FieldMapping", "render_table",
]


class FieldMapping(NamedTuple):
    sources: tuple[str, ...]  # Amplitude fields, in order of preference
    destination: str  # PostHog field: "event", "properties.$ip", ...
    how: str  # the rule in a few words (Markdown)
    vs_aplistorical: str  # where and why we differ from Aplistorical's table; "" when we agree
    copy: bool = False  # the first source that is neither null nor "" is copied as is


# Built-in event names, applied when no --rename_event names the source event.
EVENT_NAMES: dict[str, str] = {
    "[Amplitude] Page Viewed": "$pageview",
    "Viewed Page": "$pageview",
    "PageVisited": "$pageview",
    "pagevisited": "$pageview",
    "[Amplitude] Element Clicked": "$autocapture",
    "[Amplitude] Element Changed": "$autocapture",
    "$identify": "$set",
}

# PostHog derives sessions from $session_id; Amplitude's marker events would be noise there.
SESSION_MARKERS = frozenset({"session_start", "session_end"})
# Amplitude's group property updates: the job sends one $groupidentify per group instead.
GROUP_IDENTIFY_EVENTS = frozenset({"$groupidentify"})

IDENTITY_FIELDS = ("user_id", "device_id", "amplitude_id")
TIMESTAMP_FIELDS = ("event_time", "client_event_time", "server_received_time")

_NOT_IN_APLISTORICAL = "Not migrated by Aplistorical."
_TRACE = "Not migrated by Aplistorical; kept so that every event leads back to its Amplitude row."
_PAGE = "Kept only under Amplitude's names, so PostHog's web analytics found no pages."

TABLE: tuple[FieldMapping, ...] = (
    FieldMapping(
        ("event_type",), "event",
        "`--rename_event SRC::DST` first; else `[Amplitude] Page Viewed`, `Viewed Page`, "
        "`PageVisited`, `pagevisited` → `$pageview`; `[Amplitude] Element Clicked`, "
        "`[Amplitude] Element Changed` → `$autocapture`; `$identify` → `$set`; else unchanged. "
        "Missing or empty → dead letter `missing_event_type`",
        "Adds `$autocapture` and `$set`. Aplistorical's code compared against `Viewed  Page` "
        "(two spaces), so `Viewed Page` never became a `$pageview`."),
    FieldMapping(
        ("event_type",), "not migrated",
        "`session_start`, `session_end` → skipped `session_marker` (PostHog builds sessions from "
        "`$session_id`); `$groupidentify` → skipped `group_identify` (its group properties go to "
        "the job's `$groupidentify` events); names given to `--ignore_event` → skipped "
        "`ignored`. All before renames",
        "Sent session markers as ordinary events."),
    FieldMapping(
        IDENTITY_FIELDS, "distinct_id",
        "first non-blank of `user_id`, `device_id`, then `amplitude:<amplitude_id>`; "
        "none → dead letter `missing_identity`",
        "`user_id` only: every anonymous row was dropped."),
    FieldMapping(
        ("uuid", "$insert_id", "app"), "uuid",
        "the row's `uuid` when it is a valid UUID (lower-cased); else UUIDv5 of "
        "`<app>:<$insert_id>`; else UUIDv5 of the row's canonical JSON",
        "No uuid: a rerun duplicated every event."),
    FieldMapping(
        TIMESTAMP_FIELDS, "timestamp",
        "first parseable, as UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ`; none → dead letter "
        "`invalid_timestamp`",
        "`event_time` only, read in the machine's time zone and cut to whole seconds; also sent as "
        "`$time` and `$timestamp`, which PostHog does not need."),
    FieldMapping(
        ("event_properties.*",), "properties.*",
        "copied, keys renamed by `--rename_property SRC::DST`; null → `{}`; not an object → dead "
        "letter `invalid_event_properties`",
        ""),
    FieldMapping(
        ("event_properties.language",), "properties.locale",
        "only with `--rename_property language::locale`; the value is kept",
        "Always renamed, and the language name turned into a code."),
    FieldMapping(("ip_address",), "properties.$ip", "copied", "", copy=True),
    FieldMapping(("library",), "properties.$lib", "copied", "", copy=True),
    FieldMapping(
        ("version_name",), "properties.$app_version", "copied",
        "Aplistorical wrote `$lib_version`, but `version_name` is the app's version, not the "
        "SDK's.", copy=True),
    FieldMapping(
        ("device_id",), "properties.$device_id", "copied",
        "Aplistorical wrote `device_id`, which PostHog does not read.", copy=True),
    FieldMapping(("user_id",), "properties.$amplitude_user_id", "copied", _TRACE, copy=True),
    FieldMapping(("device_id",), "properties.$amplitude_device_id", "copied", _TRACE, copy=True),
    FieldMapping(("amplitude_id",), "properties.$amplitude_id", "copied", _TRACE, copy=True),
    FieldMapping(("event_id",), "properties.$amplitude_event_id", "copied", _TRACE, copy=True),
    FieldMapping(("country",), "properties.$geoip_country_name", "copied", _NOT_IN_APLISTORICAL,
                 copy=True),
    FieldMapping(("region",), "properties.$geoip_subdivision_1_name", "copied",
                 _NOT_IN_APLISTORICAL, copy=True),
    FieldMapping(("city",), "properties.$geoip_city_name", "copied", _NOT_IN_APLISTORICAL,
                 copy=True),
    FieldMapping(("location_lat",), "properties.$geoip_latitude", "copied", _NOT_IN_APLISTORICAL,
                 copy=True),
    FieldMapping(("location_lng",), "properties.$geoip_longitude", "copied",
                 _NOT_IN_APLISTORICAL, copy=True),
    FieldMapping(
        (), "properties.$geoip_disable",
        "always `true`: the location above is the one Amplitude saw",
        "Not set, so PostHog placed old events by today's GeoIP lookup of their IP."),
    # PostHog's batch importer tags what it imports the same way:
    # https://github.com/PostHog/posthog/blob/master/rust/batch-import-worker/src/parse/content/amplitude.rs
    FieldMapping(
        (), "properties.$import_job_id",
        "always the job's `--job_name`, on every event the job sends, generated ones too: filter "
        "or delete one import by it; `verify` counts the job's events in PostHog by it",
        "Not set by Aplistorical. The property PostHog's own importer sets on what it imports."),
    FieldMapping(
        ("os_name",), "properties.$browser", "web rows (`platform` `Web`)",
        "On web rows Amplitude's `os_*` fields describe the browser; Aplistorical sent "
        "`os_version` as `$os_version` on every row."),
    FieldMapping(("os_version",), "properties.$browser_version", "web rows", "As above."),
    FieldMapping(
        ("device_family", "device_type", "device_model"), "properties.$os",
        "web rows: the first non-empty", "Aplistorical read `os`, a field exports do not have."),
    FieldMapping(
        ("device_family", "device_type", "device_model"), "properties.$device_type",
        "web rows: `Mobile` when that OS is iOS or Android, else `Desktop`", _NOT_IN_APLISTORICAL),
    FieldMapping(
        ("platform", "os_name"), "properties.$os",
        "mobile rows (`platform` iOS or Android, or `os_name` ios or android): `iOS` or `Android`",
        "Aplistorical read `os`, a field exports do not have."),
    FieldMapping(("os_version",), "properties.$os_version", "mobile and other rows", ""),
    FieldMapping(("device_model",), "properties.$device_model", "mobile rows",
                 _NOT_IN_APLISTORICAL),
    FieldMapping(
        ("device_manufacturer", "device_brand"), "properties.$device_manufacturer",
        "mobile rows: the first non-empty", "Aplistorical wrote `device_manufacturer`."),
    FieldMapping(
        ("device_model", "device_family"), "properties.$device_type",
        "mobile rows: `Tablet` when either names an iPad or a tablet, else `Mobile`",
        _NOT_IN_APLISTORICAL),
    FieldMapping(("device_carrier",), "properties.$network_carrier",
                 "mobile rows, unless `Unknown`", _NOT_IN_APLISTORICAL),
    FieldMapping(("os_name",), "properties.$os", "other rows (neither web nor mobile)",
                 "Aplistorical read `os`, a field exports do not have."),
    FieldMapping(
        ("event_properties.[Amplitude] Page Location", "event_properties.[Amplitude] Page URL"),
        "properties.$current_url", "copied", _PAGE, copy=True),
    FieldMapping(("event_properties.[Amplitude] Page Domain",), "properties.$host", "copied",
                 _PAGE, copy=True),
    FieldMapping(("event_properties.[Amplitude] Page Path",), "properties.$pathname", "copied",
                 _PAGE, copy=True),
    FieldMapping(("event_properties.[Amplitude] Page Title",), "properties.$title", "copied",
                 _PAGE, copy=True),
    FieldMapping(("event_properties.[Amplitude] Viewport Height",), "properties.$viewport_height",
                 "copied", _PAGE, copy=True),
    FieldMapping(("event_properties.[Amplitude] Viewport Width",), "properties.$viewport_width",
                 "copied", _PAGE, copy=True),
    FieldMapping(
        ("event_properties.referrer", "user_properties.referrer"), "properties.$referrer",
        "copied (Amplitude's web attribution keeps it in user properties)", _PAGE, copy=True),
    FieldMapping(
        ("event_properties.referring_domain", "user_properties.referring_domain"),
        "properties.$referring_domain", "copied (as above)", _PAGE, copy=True),
    FieldMapping(("session_id",), "properties.$amplitude_session_id",
                 "when an integer > 0 (`-1` and `0` mean no session)", _NOT_IN_APLISTORICAL),
    FieldMapping(
        ("session_id", "device_id"), "properties.$session_id",
        "when `session_id` > 0: a UUIDv7 whose time is `session_id` (the session's start in ms) "
        "and whose other bits hash `device_id` (else `distinct_id`) with `session_id`",
        "Not migrated by Aplistorical, so PostHog showed no sessions."),
    FieldMapping(
        ("groups",), "properties.$groups",
        "`{type: key}` or `{type: [keys]}` → `{type: first key}`, as a string",
        _NOT_IN_APLISTORICAL),
    FieldMapping(
        ("user_properties.*",), "properties.$set.*",
        "`--user_properties_mode set` (default), plus this event's `$os`, `$browser`, "
        "`$device_type`, `$geoip_country_name`, `$geoip_subdivision_1_name`, `$geoip_city_name`",
        "Same destination; Aplistorical documented its modes but always used this one."),
    FieldMapping(
        ("user_properties.*",), "properties.*",
        "`--user_properties_mode root`; the event's own properties win on a clash",
        "Documented by Aplistorical, never applied."),
    FieldMapping(
        ("user_properties.*",), "properties.user_properties",
        "`--user_properties_mode property`; an event property of that name wins",
        "Documented by Aplistorical, never applied."),
    FieldMapping(
        ("user_properties.initial_*",), "properties.$set_once.$initial_*",
        "in every mode; values `EMPTY`, null and empty left out",
        "Not migrated by Aplistorical, so PostHog's initial person properties stayed empty."),
)

# Export columns that do not become part of the event, and why.
NOT_MIGRATED: dict[str, str] = {
    "$insert_key": "Amplitude internal", "$schema": "Amplitude internal",
    "adid": "advertising id", "idfa": "advertising id",
    "amplitude_attribution_ids": "Amplitude internal", "amplitude_event_type": "Amplitude internal",
    "client_upload_time": "upload bookkeeping", "server_upload_time": "upload bookkeeping",
    "processed_time": "upload bookkeeping", "data": "Amplitude internal",
    "data_type": "Amplitude internal", "dma": "no PostHog field",
    "global_user_properties": "Amplitude internal", "group_properties": "group snapshot",
    "is_attribution_event": "Amplitude internal", "language": "no PostHog event field",
    "partner_id": "Amplitude internal", "paying": "Amplitude internal", "plan": "tracking plan",
    "sample_rate": "Amplitude internal", "source_id": "Amplitude internal",
    "start_version": "no PostHog field", "user_creation_time": "no PostHog field",
}


def _code(name: str) -> str:
    return f"`{name}`"


def render_table() -> str:
    """The mapping table of docs/mapping.md, in Markdown."""
    lines = [
        "| Amplitude | PostHog | How | Where and why we differ from Aplistorical |",
        "| --- | --- | --- | --- |",
    ]
    for row in TABLE:
        sources = ", ".join(map(_code, row.sources)) or "—"
        destination = row.destination if row.destination == "not migrated" else _code(
            row.destination)
        cells = (sources, destination, row.how, row.vs_aplistorical or "Same.")
        if any("|" in cell for cell in cells):
            raise ValueError(f"a '|' would break the Markdown table: {row}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Not part of the event: " + ", ".join(
        f"{_code(name)} ({why})" for name, why in sorted(NOT_MIGRATED.items())) + ".")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_table(), end="")
