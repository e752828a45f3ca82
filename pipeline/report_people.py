"""The report's ``identities`` and ``warnings``: how the job linked people, what PostHog alters.

``identities`` comes from the generated record (``pipeline.people`` counts it); ``warnings``
from the facts of every hour, plus the group types beyond the five a PostHog project can have.
"""

from __future__ import annotations

from html import escape

from transforms.facts import GROUPS, WARNINGS
from transforms.posthog_rules import MAX_GROUP_TYPES

__all__ = ["WARNING_TEXTS", "WarningTally", "identities_html", "identities_section",
           "warnings_html"]

TOO_MANY_GROUP_TYPES = "too_many_group_types"
# What each warning means for the user, as report.html says it.
WARNING_TEXTS = {
    "distinct_id_too_long": "events whose distinct_id is over 200 characters: PostHog keeps "
                            "the first 200 (the job's generated events use the same cut)",
    "distinct_id_nul": "events whose distinct_id holds NUL: PostHog stores U+FFFD instead",
    "event_name_too_long": "events whose name is over 200 characters: PostHog keeps the first "
                           "200",
    "group_key_too_long": "group keys over 400 characters: PostHog drops the group (the job "
                          "sends no $groupidentify for it)",
    TOO_MANY_GROUP_TYPES: "group types beyond the 5 a PostHog project can have: PostHog "
                          "creates the first 5 it processes and ignores the others",
}


class WarningTally:
    """Sums the warnings of the hours' facts, and the job's group types."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.group_types: set[str] = set()

    def add(self, facts: dict) -> None:
        for kind, n in facts.get(WARNINGS, {}).items():
            self.counts[kind] = self.counts.get(kind, 0) + n
        self.group_types.update(row[0] for row in facts.get(GROUPS, ()))

    def result(self) -> dict[str, int]:
        counts = dict(self.counts)
        beyond = len(self.group_types) - MAX_GROUP_TYPES
        if beyond > 0:
            counts[TOO_MANY_GROUP_TYPES] = beyond
        return dict(sorted(counts.items()))


def identities_section(generated_record: dict) -> dict:
    """The report's ``identities``: pairs seen, ``$identify`` sent, devices shared by several
    users, and pairs not merged by reason (empty before the generated events ran)."""
    counts = generated_record.get("identities") or {}
    section = {key: counts.get(key, 0)
               for key in ("pairs_seen", "identify_sent", "devices_shared")}
    section["not_merged"] = {name.split(":", 1)[1]: n for name, n in sorted(counts.items())
                             if name.startswith("not_merged:")}
    return section


def _rows(pairs) -> str:
    return "".join(f'<tr><td>{escape(str(label))}</td><td class="num">{n:,}</td></tr>'
                   for label, n in pairs)


def identities_html(report: dict) -> str:
    section = report.get("identities") or {}
    rows = [("(user, device) pairs seen in migrated events", section.get("pairs_seen", 0)),
            ("$identify sent (one per device, with its first user)",
             section.get("identify_sent", 0)),
            ("devices shared by several users", section.get("devices_shared", 0))]
    rows += [(f"pairs not merged: {reason}", n)
             for reason, n in sorted((section.get("not_merged") or {}).items())]
    return ('<section id="identities"><h2>Identities</h2><table><tbody>' + _rows(rows)
            + '</tbody></table><p class="note">A device belongs to the first user seen on it; '
            'ids PostHog refuses to merge stay apart.</p></section>')


def warnings_html(report: dict) -> str:
    warnings = report.get("warnings") or {}
    if not warnings:
        return ('<section id="warnings"><h2>Values PostHog alters</h2>'
                '<p class="muted">None.</p></section>')
    rows = [(f"{kind}: {WARNING_TEXTS.get(kind, '')}", n) for kind, n in warnings.items()]
    return ('<section id="warnings"><h2>Values PostHog alters</h2><table><tbody>'
            + _rows(rows) + '</tbody></table></section>')
