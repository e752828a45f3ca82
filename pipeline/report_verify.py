"""The report's "Verified in PostHog" part: what the last ``verify`` found, and the repairs.

``summary`` condenses ``<work_dir>/verify.json`` and ``ledger/repairs.json`` for report.json;
``verification_html`` renders that summary as the report page's section.
"""

from __future__ import annotations

from html import escape

import orjson

from connectors.files import exists, read_bytes
from pipeline.job import join
from pipeline.ledger import LEDGER, hour_path

__all__ = ["status_line", "summary", "verification_html"]

_LISTED = 30


def summary(work_dir: str) -> dict | None:
    """The last verification and every repair, or None when the job was never verified."""
    path = join(work_dir, "verify.json")
    repairs_path = hour_path(work_dir, LEDGER, "repairs")
    repairs = (orjson.loads(read_bytes(repairs_path)).get("history", [])
               if exists(repairs_path) else [])
    if not exists(path) and not repairs:
        return None
    last = orjson.loads(read_bytes(path)) if exists(path) else {}
    keep = ("verified_at", "status", "short_days", "over_days", "equal_days", "events_sent",
            "uuids_found", "duplicates_pending", "newest_acknowledged_at", "project_id")
    result = {key: last.get(key) for key in keep}
    result["odd_days"] = [row for row in last.get("days", []) if row["status"] != "equal"]
    persons = last.get("persons") or {}
    result["persons_checked"] = persons.get("checked", 0)
    result["persons_mismatches"] = len(persons.get("mismatches", []))
    result["repairs"] = repairs
    return result


def status_line(verification: dict | None) -> str | None:
    """One line for ``status`` and the end of a run."""
    if not verification or not verification.get("verified_at"):
        return None
    short = verification.get("short_days") or []
    found = (f"{len(short)} day(s) short ({', '.join(short[:5])}{', ...' if len(short) > 5 else ''})"
             if short else f"every day matches ({verification.get('uuids_found') or 0:,} events)")
    return f"Verified in PostHog at {verification['verified_at']}: {found}"


def _e(value) -> str:
    return escape("—" if value is None else str(value), quote=True)


def verification_html(verification: dict | None) -> str:
    if not verification:
        return ('<section id="verification"><h2>Verified in PostHog</h2><p class="muted">Not '
                'yet: <code>python -m pipeline verify</code> counts what PostHog holds.</p>'
                '</section>')
    rows = "".join(
        f'<tr><td><code>{_e(r["day"])}</code></td><td>{_e(r["status"])}</td>'
        f'<td class="num">{r["sent"]:,}</td><td class="num">{r["uuids"]:,}</td>'
        f'<td class="num">{r["duplicates_pending"]:,}</td></tr>'
        for r in verification.get("odd_days", [])[:_LISTED])
    table = (f'<table><thead><tr><th>Day</th><th>Status</th><th class="num">Sent</th>'
             f'<th class="num">In PostHog</th><th class="num">Duplicates pending</th></tr>'
             f'</thead><tbody>{rows}</tbody></table>' if rows else "")
    line = status_line(verification) or "Not verified since the last repair."
    persons = (f'<p>Persons checked: {verification["persons_checked"]:,}, property '
               f'mismatches: {verification["persons_mismatches"]:,} (listed in verify.json).</p>'
               if verification.get("persons_checked") else "")
    repairs = "".join(
        f'<li>{_e(r.get("at"))}: {len(r.get("hours", []))} hour(s) re-sent for '
        f'{_e(", ".join(r.get("short_days", [])))} from {_e(r.get("source"))}</li>'
        for r in verification.get("repairs", []))
    repairs = f'<h3>Repairs</h3><ul>{repairs}</ul>' if repairs else ""
    return (f'<section id="verification"><h2>Verified in PostHog</h2><p>{_e(line)}; newest '
            f'events acknowledged at {_e(verification.get("newest_acknowledged_at"))}.</p>'
            f'{table}{persons}{repairs}</section>')
