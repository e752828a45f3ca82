"""``report.html``: the job's report as one self-contained page.

Everything is inline (CSS, SVG charts), so the file can be opened from a bucket, mailed or
archived and still show the same thing: no network, no script. The page shows the settings, the
reconciliation of every row read, rows and events per day and per hour, the top event names, the
dead letters by reason with where a few of them came from (hour, file, line: never the rows), and
the failed hours with the command that resumes the job. Every string is escaped.
"""

from __future__ import annotations

import shlex
from datetime import datetime, timezone
from html import escape
from typing import Any

from pipeline.page import CSS as _CSS
from pipeline.page import number as _number
from pipeline.page import text as _text
from pipeline.report_charts import Series, bar_chart
from pipeline.report_people import identities_html, warnings_html
from pipeline.report_verify import verification_html

__all__ = ["render_report_html"]

_ROWS_COLOR = "#94a3b8"
_EVENTS_COLOR = "#4f46e5"
_MAX_HOUR_POINTS = 2000  # beyond this, hours are summed into buckets for the chart


def _total(counts: Any) -> int:
    return sum(v for v in (counts or {}).values() if isinstance(v, int))


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _moment(value: Any) -> str:
    """An ISO time as "2024-06-02 09:14:03 UTC" when it is one; anything else as it is."""
    moment = _when(value)
    if moment is None or moment.utcoffset() is None:
        return _text(value)
    return escape(moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"))


def _duration(started: Any, finished: Any) -> str | None:
    start, end = _when(started), _when(finished)
    if start is None or end is None or (start.tzinfo is None) != (end.tzinfo is None):
        return None
    seconds = int((end - start).total_seconds())
    if seconds < 0:
        return None
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"


def _header(report: dict) -> str:
    complete = report.get("status") == "complete"
    meta = [f"Started {_moment(report.get('started_at'))}",
            f"finished {_moment(report.get('finished_at'))}"]
    took = _duration(report.get("started_at"), report.get("finished_at"))
    if took:
        meta.append(f"took {escape(took)}")
    if report.get("work_dir"):
        meta.append(f"work_dir <code>{_text(report['work_dir'])}</code>")
    if report.get("dry_run"):
        meta.append("<strong>dry run: nothing was sent</strong>")
    return (f'<p class="kicker">Aplistorical · Amplitude → PostHog migration report</p>'
            f'<header><h1>{_text(report.get("job_name"))}</h1>'
            f'<span class="pill {"ok" if complete else "warn"}">'
            f'{"✓ Complete" if complete else "⚠ Incomplete"}</span></header>'
            f'<p class="meta">{" · ".join(meta)}</p>')


def _cards(report: dict, delivered_label: str, delivered: int) -> str:
    hours = report.get("hours") or {}
    total = max(int(hours.get("total") or 0), 1)
    segments = "".join(
        f'<span style="width:{100 * int(hours.get(key) or 0) / total:.2f}%;background:{color}" '
        f'title="{key}: {int(hours.get(key) or 0):,}"></span>'
        for key, color in (("done", "#16a34a"), ("empty", "#86efac"), ("failed", "#dc2626"),
                           ("pending", "#cbd5e1")))
    cards = [("Rows read", _number(report.get("rows_read", 0))),
             (delivered_label, _number(delivered)),
             ("Rows skipped", _number(_total(report.get("rows_skipped")))),
             ("Rows dead-lettered", _number(_total(report.get("rows_dead_lettered"))))]
    html = "".join(f'<div class="card"><div class="label">{label}</div>'
                   f'<div class="value">{value}</div></div>' for label, value in cards)
    done = int(hours.get("done") or 0) + int(hours.get("empty") or 0)
    html += (f'<div class="card"><div class="label">Hours done or empty</div>'
             f'<div class="value">{done:,} <span class="muted" style="font-size:16px">/ '
             f'{int(hours.get("total") or 0):,}</span></div>'
             f'<div class="hoursbar">{segments}</div>'
             f'<div class="label">{int(hours.get("failed") or 0):,} failed · '
             f'{int(hours.get("pending") or 0):,} pending</div></div>')
    return f'<div class="cards">{html}</div>'


def _reconciliation(report: dict, delivered_label: str, delivered: int) -> str:
    rows_read = report.get("rows_read") or 0
    lines = [("", "Rows read", rows_read), ("=", delivered_label, delivered)]
    for kind, key in (("Skipped", "rows_skipped"), ("Dead-lettered", "rows_dead_lettered")):
        for reason, count in sorted((report.get(key) or {}).items()):
            lines.append(("+", f"{kind}: {reason}", count))
    accounted = delivered + _total(report.get("rows_skipped")) + _total(
        report.get("rows_dead_lettered"))
    body = "".join(f'<tr><td class="op">{op}</td><td>{_text(label)}</td>'
                   f'<td class="num">{_number(count)}</td></tr>' for op, label, count in lines)
    body += (f'<tr class="total"><td class="op"></td><td>Accounted for</td>'
             f'<td class="num">{_number(accounted)}</td></tr>')
    if accounted == rows_read:
        verdict = '<div class="verdict ok">✓ Every row read is accounted for.</div>'
    else:
        gap = rows_read - accounted
        what = "rows unaccounted for" if gap > 0 else "more rows accounted for than read"
        verdict = (f'<div class="verdict bad">⚠ {abs(gap):,} {what}: rows read ≠ '
                   f'{escape(delivered_label.lower())} + skipped + dead-lettered.</div>')
    generated = report.get("generated_events_sent") or {}
    failed = report.get("generated_events_failed") or {}
    extra = ""
    if generated or failed:
        names = sorted(set(generated) | set(failed))
        extra = ('<h2 style="margin-top:22px">Events the migration generated</h2>'
                 '<table><thead><tr><th>Event</th><th class="num">'
                 + ("Made (dry run)" if report.get("dry_run") else "Sent") + '</th>'
                 '<th class="num">Failed</th></tr></thead><tbody>'
                 + "".join(f'<tr><td><code>{_text(n)}</code></td>'
                           f'<td class="num">{_number(generated.get(n, 0))}</td>'
                           f'<td class="num">{_number(failed.get(n, 0))}</td></tr>' for n in names)
                 + '</tbody></table><p class="note">Not made from a row, so outside the '
                   'reconciliation above.</p>')
    return (f'<section id="reconciliation"><h2>Reconciliation</h2>'
            f'<table class="reconciliation"><tbody>{body}</tbody></table>{verdict}{extra}'
            f'</section>')


def _legend(rows: str, events: str) -> str:
    return (f'<div class="legend"><span><i style="background:{_ROWS_COLOR}"></i>{rows}</span>'
            f'<span><i style="background:{_EVENTS_COLOR}"></i>{events}</span></div>')


def _day_chart(report: dict, delivered_label: str) -> str:
    days = sorted(report.get("per_day") or [], key=lambda d: str(d.get("day")))
    chart = bar_chart([str(d.get("day")) for d in days],
                      [Series("rows", [int(d.get("rows") or 0) for d in days], _ROWS_COLOR),
                       Series("events", [int(d.get("events") or 0) for d in days],
                              _EVENTS_COLOR)],
                      title=f"Rows read and {delivered_label.lower()} per day, by event time")
    return (f'<section id="per-day"><h2>Per day, by event time</h2>'
            f'{_legend("rows read", delivered_label.lower())}{chart}</section>')


def _hour_label(hour: str) -> str:
    text = hour.replace("-", "")
    return f"{text[:4]}-{text[4:6]}-{text[6:8]} {text[9:11]}h" if len(text) == 11 else hour


def _hour_chart(report: dict, delivered_label: str) -> str:
    hours = sorted(report.get("per_hour") or [], key=lambda h: str(h.get("hour")))
    failed = {str(f.get("hour")) for f in report.get("failed_hours") or []}
    labels = sorted({str(h.get("hour")) for h in hours} | failed)
    by_hour = {str(h.get("hour")): h for h in hours}
    rows = [int(by_hour.get(h, {}).get("rows_read") or 0) for h in labels]
    # A dry run sends nothing: its hours show what would have been sent.
    key = "events_translated" if report.get("dry_run") else "events_sent"
    events = [int(by_hour.get(h, {}).get(key) or 0) for h in labels]
    marks = [i for i, h in enumerate(labels) if h in failed]
    size = -(-len(labels) // _MAX_HOUR_POINTS)  # hours per point, when there are very many
    note = ""
    if size > 1:
        note = f'<p class="note">Each point sums {size} consecutive hours.</p>'
        marks = sorted({i // size for i in marks})
        rows = [sum(rows[i:i + size]) for i in range(0, len(rows), size)]
        events = [sum(events[i:i + size]) for i in range(0, len(events), size)]
        labels = labels[::size]
    chart = bar_chart([_hour_label(h) for h in labels],
                      [Series("rows", rows, _ROWS_COLOR), Series("events", events, _EVENTS_COLOR)],
                      title=f"Rows read and {delivered_label.lower()} per export hour",
                      marks=marks,
                      mark_label="failed hour")
    failed_note = (f'<p class="note"><span style="color:#dc2626">■</span> failed hours '
                   f'({len(failed):,})</p>' if failed else "")
    return (f'<section id="per-hour"><h2>Per export hour</h2>'
            f'{_legend("rows read", delivered_label.lower())}{chart}{note}{failed_note}'
            f'</section>')


def _top_events(report: dict) -> str:
    top = report.get("top_events") or []
    largest = max((int(e.get("count") or 0) for e in top), default=0) or 1
    body = "".join(
        f'<tr><td><code>{_text(e.get("event"))}</code></td>'
        f'<td class="num">{_number(e.get("count"))}</td><td style="width:40%">'
        f'<div class="bar"><span style="width:{100 * int(e.get("count") or 0) / largest:.1f}%">'
        f'</span></div></td></tr>' for e in top)
    if not body:
        body = '<tr><td colspan="3" class="muted">No events yet.</td></tr>'
    return (f'<section id="top-events"><h2>Top event names</h2><table><thead><tr><th>Event</th>'
            f'<th class="num">Count</th><th></th></tr></thead><tbody>{body}</tbody></table>'
            f'</section>')


def _dead_letters(report: dict) -> str:
    counts = report.get("rows_dead_lettered") or {}
    examples = report.get("dead_letter_examples") or {}
    items = []
    for reason in sorted(set(counts) | set(examples)):
        where = "".join(
            f'<li>hour {_text(e.get("hour"))} · {_text(e.get("file"))} · '
            f'line {_text(e.get("line_number"))}</li>' for e in examples.get(reason) or [])
        items.append(f'<tr><td><span class="reason">{_text(reason)}</span>'
                     f'<ul class="examples">{where}</ul></td>'
                     f'<td class="num">{_number(counts.get(reason, 0))}</td></tr>')
    if not items:
        return ('<section id="dead-letters"><h2>Dead letters</h2>'
                '<p class="muted">None: no row or event was set aside.</p></section>')
    resend = ""
    if counts.get("delivery_failed") and report.get("work_dir"):
        command = f"python -m pipeline resend --work_dir {shlex.quote(str(report['work_dir']))}"
        resend = (f'<p class="note">Re-send what PostHog did not take:</p>'
                  f'<pre>{_text(command)}</pre>')
    return ('<section id="dead-letters"><h2>Dead letters</h2><table><thead><tr><th>Reason · '
            'where some came from</th><th class="num">Count</th></tr></thead><tbody>'
            + "".join(items) + '</tbody></table><p class="note">The rows themselves are in '
            '<code>dead_letter/</code> under the job\'s work_dir; this page never shows them.</p>'
            f'{resend}</section>')


def _failed_hours(report: dict) -> str:
    failed = report.get("failed_hours") or []
    command = (f'<p class="note">Resume the job (done hours are skipped, failed and pending '
               f'ones retried):</p><pre>{_text(report.get("resume_command"))}</pre>'
               if report.get("resume_command") and report.get("status") != "complete" else "")
    if not failed:
        return (f'<section id="failed-hours"><h2>Failed hours</h2>'
                f'<p class="muted">None.</p>{command}</section>')
    body = "".join(f'<tr><td><code>{_text(f.get("hour"))}</code></td>'
                   f'<td>{_text(f.get("detail"))}</td></tr>' for f in failed)
    return (f'<section id="failed-hours"><h2>Failed hours</h2><table><thead><tr><th>Hour</th>'
            f'<th>Why</th></tr></thead><tbody>{body}</tbody></table>{command}</section>')


def _settings(report: dict) -> str:
    settings = report.get("settings") or {}
    body = "".join(f'<tr><th scope="row"><code>{_text(name)}</code></th><td>{_text(value)}</td>'
                   f'</tr>' for name, value in sorted(settings.items()))
    return (f'<section id="settings"><h2>Settings</h2><table><tbody>{body}</tbody></table>'
            f'<p class="note">Keys and secrets are never stored in the job, so they are not '
            f'here.</p></section>')


def render_report_html(report: dict) -> str:
    """The report dict (as written to ``report.json``) as a self-contained HTML page."""
    if report.get("dry_run"):
        delivered_label, delivered = "Events translated", report.get("events_translated") or 0
    else:
        delivered_label, delivered = "Events sent", report.get("events_sent") or 0
    body = "".join((
        _header(report), _cards(report, delivered_label, delivered),
        '<div class="grid2">', _reconciliation(report, delivered_label, delivered),
        _dead_letters(report), "</div>", '<div style="height:20px"></div>',
        _day_chart(report, delivered_label), _hour_chart(report, delivered_label),
        '<div class="grid2">', _top_events(report), _failed_hours(report), "</div>",
        '<div class="grid2">', identities_html(report), warnings_html(report), "</div>",
        '<div style="height:20px"></div>', verification_html(report.get("verification")),
        _settings(report),
    ))
    title = f"Migration report: {_text(report.get('job_name'))}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{title}</title><style>{_CSS}</style></head><body><main>{body}"
            f'<footer>Generated by Aplistorical from report.json.</footer></main></body></html>')
