"""``preview.html``: a job's first rows beside what they become, as one self-contained page.

Like ``report.html`` (and with its style sheet), the page is inline CSS and nothing else: no
script, nothing fetched. Unlike the report it does show rows: it is written into the job's own
folder, where the rows already are, for the person who runs the job. Keys never reach it: the
rows come from the export and the settings from ``Job.stored()``, which holds none.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.page import CSS, number, text

if TYPE_CHECKING:  # the page is drawn from a Preview; importing it here would be circular
    from pipeline.job import Job
    from pipeline.preview import Preview

__all__ = ["render_preview_html"]

_PREVIEW_CSS = """
.rows{table-layout:fixed}.rows col.n{width:3.5em}.rows td.n{color:var(--muted)}
.where{color:var(--muted);font-size:13px;margin:0 0 4px;overflow-wrap:anywhere}
pre.json{background:var(--bg);color:var(--ink);border:1px solid var(--line);margin:0;
white-space:pre-wrap;overflow-wrap:anywhere;max-height:26em;overflow:auto}
.tag{display:inline-block;padding:1px 10px;border-radius:999px;font-size:13px;font-weight:600;
margin-right:6px}
.tag.event{background:var(--okbg);color:var(--ok)}
.tag.skipped{background:var(--warnbg);color:var(--warn)}
.tag.dead{background:var(--badbg);color:var(--bad)}
.detail{margin:6px 0 0}
"""
_OUTCOME_LABELS = {"event": "PostHog event", "skipped": "skipped", "dead": "dead letter"}


def _json(value: Any) -> str:
    return escape(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode(), quote=False)


def _outcome(translation) -> str:
    if translation.event is not None:
        return "event"
    return "dead" if translation.dead else "skipped"


def _source(line, translation) -> str:
    where = (f'<p class="where">hour {text(line.hour)} · {text(line.file)} · '
             f'line {number(line.line_number)}</p>')
    if translation.row is not None:
        return f'{where}<pre class="json">{_json(translation.row)}</pre>'
    raw = line.line.decode("utf-8", errors="replace")
    return f'{where}<pre class="json">{escape(raw, quote=False)}</pre>'


def _result(translation) -> str:
    outcome = _outcome(translation)
    if outcome == "event":
        event = translation.event
        return (f'<p class="where"><span class="tag event">{text(event["event"])}</span>'
                f'{text(event["distinct_id"])}</p><pre class="json">{_json(event)}</pre>')
    return (f'<span class="tag {outcome}">{_OUTCOME_LABELS[outcome]}</span>'
            f'<span class="reason">{text(translation.reason)}</span>'
            f'<p class="detail">{text(translation.detail)}</p>')


def _counts(result: "Preview") -> tuple[int, dict[str, int], dict[str, int], dict[str, int]]:
    events, skipped, dead, generated = 0, {}, {}, {}
    for _, translation in result.rows:
        outcome = _outcome(translation)
        if outcome == "event":
            events += 1
        else:
            into = dead if outcome == "dead" else skipped
            into[translation.reason] = into.get(translation.reason, 0) + 1
    for event in result.generated:
        generated[event["event"]] = generated.get(event["event"], 0) + 1
    return events, skipped, dead, generated


def _header(job: "Job", result: "Preview") -> str:
    hours = [hour for hour, _, _ in result.hours]
    span = f"{hours[0]} to {hours[-1]}" if len(hours) > 1 else (hours[0] if hours else "—")
    meta = [f"the first {len(result.rows):,} rows of hours {text(span)}",
            f"job range {text(job.start)} to {text(job.end)}",
            f"work_dir <code>{text(job.work_dir)}</code>",
            "<strong>nothing was sent</strong>"]
    return (f'<p class="kicker">Aplistorical · Amplitude → PostHog migration preview</p>'
            f'<header><h1>{text(job.job_name)}</h1>'
            f'<span class="pill warn">Preview</span></header>'
            f'<p class="meta">{" · ".join(meta)}</p>')


def _cards(rows: int, events: int, skipped: dict, dead: dict, generated: dict) -> str:
    cards = [("Rows read", rows), ("Would become events", events),
             ("Would be skipped", sum(skipped.values())),
             ("Would be dead-lettered", sum(dead.values())),
             ("Generated events", sum(generated.values()))]
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="label">{label}</div>'
        f'<div class="value">{number(value)}</div></div>' for label, value in cards) + "</div>"


def _summary(rows: int, events: int, skipped: dict, dead: dict, generated: dict) -> str:
    lines = [("", "Rows read", rows), ("=", "Events", events)]
    lines += [("+", f"Skipped: {reason}", count) for reason, count in sorted(skipped.items())]
    lines += [("+", f"Dead letter: {reason}", count) for reason, count in sorted(dead.items())]
    body = "".join(f'<tr><td class="op">{op}</td><td>{text(label)}</td>'
                   f'<td class="num">{number(count)}</td></tr>' for op, label, count in lines)
    made = "".join(f'<tr><td class="op"></td><td>Generated: <code>{text(name)}</code></td>'
                   f'<td class="num">{number(count)}</td></tr>'
                   for name, count in sorted(generated.items()))
    return (f'<section id="summary"><h2>Summary</h2><table class="summary"><tbody>{body}'
            f'{made}</tbody></table><p class="note">Generated events are not made from one row: '
            f'the job sends them once every hour is delivered, from all of its rows.</p>'
            f'</section>')


def _rows(result: "Preview") -> str:
    body = "".join(
        f'<tr id="row-{i}" class="row {_outcome(translation)}"><td class="n">{i}</td>'
        f'<td class="source">{_source(line, translation)}</td>'
        f'<td class="result">{_result(translation)}</td></tr>'
        for i, (line, translation) in enumerate(result.rows, start=1))
    return (f'<section id="rows"><h2>Each row and what it becomes</h2><table class="rows">'
            f'<colgroup><col class="n"><col><col></colgroup>'
            f'<thead><tr><th>#</th><th>Amplitude export row</th>'
            f'<th>PostHog event, or why not</th></tr></thead><tbody>{body}</tbody></table>'
            f'</section>')


def _generated(result: "Preview") -> str:
    if not result.generated:
        return ('<section id="generated"><h2>Generated events</h2>'
                '<p class="muted">None for these rows with these settings.</p></section>')
    body = "".join(
        f'<tr class="generated"><td><code>{text(event["event"])}</code></td>'
        f'<td>{text(event["distinct_id"])}</td><td>{text(event["timestamp"])}</td>'
        f'<td><pre class="json">{_json(event["properties"])}</pre></td></tr>'
        for event in result.generated)
    return (f'<section id="generated"><h2>Generated events these rows would add</h2>'
            f'<table><thead><tr><th>Event</th><th>distinct_id</th><th>Timestamp</th>'
            f'<th>Properties</th></tr></thead><tbody>{body}</tbody></table></section>')


def _settings(job: "Job") -> str:
    body = "".join(f'<tr><th scope="row"><code>{text(name)}</code></th><td>{text(value)}</td>'
                   f'</tr>' for name, value in sorted(job.stored().items()))
    return (f'<section id="settings"><h2>Settings</h2><table><tbody>{body}</tbody></table>'
            f'<p class="note">Keys are never stored or shown; the job reads them from the '
            f'environment variables named above.</p></section>')


def render_preview_html(job: "Job", result: "Preview") -> str:
    """The preview of ``job``'s first rows as a self-contained HTML page."""
    events, skipped, dead, generated = _counts(result)
    rows = len(result.rows)
    body = "".join((
        _header(job, result), _cards(rows, events, skipped, dead, generated),
        _summary(rows, events, skipped, dead, generated), _rows(result), _generated(result),
        _settings(job),
    ))
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<title>Migration preview: {text(job.job_name)}</title>'
            f'<style>{CSS}{_PREVIEW_CSS}</style></head><body><main>{body}'
            f'<footer>Generated by Aplistorical\'s preview; nothing was sent.</footer>'
            f'</main></body></html>')
