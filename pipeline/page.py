"""What the tool's HTML pages share: the style sheet and how values become escaped text.

``report.html`` and ``preview.html`` are single self-contained files (inline CSS, no script,
nothing fetched), so they look the same opened from a laptop, a bucket or an e-mail.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

__all__ = ["CSS", "number", "text"]

CSS = """
:root{--ink:#0f172a;--muted:#64748b;--line:#e2e8f0;--card:#fff;--bg:#f8fafc;--ok:#15803d;
--okbg:#dcfce7;--warn:#b45309;--warnbg:#fef3c7;--bad:#b91c1c;--badbg:#fee2e2;--accent:#4f46e5}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1120px;margin:0 auto;padding:32px 24px 48px}
header{display:flex;flex-wrap:wrap;align-items:center;gap:12px 20px;margin-bottom:8px}
h1{font-size:28px;margin:0;letter-spacing:-.01em}
h2{font-size:18px;margin:0 0 12px}
.kicker{color:var(--muted);font-size:13px;text-transform:uppercase;letter-spacing:.08em;margin:0}
.meta{color:var(--muted);margin:0 0 24px}
.pill{display:inline-block;padding:3px 12px;border-radius:999px;font-weight:600;font-size:14px}
.pill.ok{background:var(--okbg);color:var(--ok)}
.pill.warn{background:var(--warnbg);color:var(--warn)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px;
margin-bottom:20px}
.card,section{background:var(--card);border:1px solid var(--line);border-radius:12px}
.card{padding:14px 16px}
.card .label{color:var(--muted);font-size:13px}
.card .value{font-size:26px;font-weight:650;font-variant-numeric:tabular-nums}
.hoursbar{display:flex;height:8px;border-radius:4px;overflow:hidden;background:var(--line);
margin-top:8px}
.hoursbar span{display:block;height:100%}
section{padding:20px 22px;margin-bottom:20px}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:20px}
@media (max-width:820px){.grid2{grid-template-columns:1fr}}
.grid2>section{margin-bottom:0}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:7px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600;font-size:13px}
td.num,th.num{text-align:right;white-space:nowrap}
tr.total td{font-weight:650;border-top:2px solid var(--ink)}
.op{color:var(--muted);width:1.5em}
.verdict{margin-top:12px;padding:10px 14px;border-radius:8px;font-weight:600}
.verdict.ok{background:var(--okbg);color:var(--ok)}
.verdict.bad{background:var(--badbg);color:var(--bad)}
.legend{display:flex;gap:18px;color:var(--muted);font-size:13px;margin:-4px 0 6px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:6px;
vertical-align:-1px}
svg.chart{width:100%;height:auto;display:block}
svg .grid{stroke:var(--line);stroke-width:1}svg .grid.base{stroke:#94a3b8}
svg .tick{fill:var(--muted);font-size:12px}svg .empty{fill:var(--muted);font-size:16px}
.bar{background:#eef2ff;border-radius:4px;height:10px;min-width:2px}
.bar span{display:block;height:100%;background:var(--accent);border-radius:4px}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
pre{background:#0f172a;color:#e2e8f0;padding:12px 14px;border-radius:8px;overflow-x:auto;
margin:8px 0 0}
.muted{color:var(--muted)}.note{color:var(--muted);font-size:13px;margin:10px 0 0}
.reason{font-weight:600}
#settings td{overflow-wrap:anywhere}
.examples{margin:4px 0 0;padding:0;list-style:none;color:var(--muted);font-size:13px}
footer{color:var(--muted);font-size:13px;text-align:center;margin-top:28px}
"""


def text(value: Any) -> str:
    """Any value as escaped text; containers as compact JSON."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list, tuple)):
        # json's ", " and ": " separators give the browser places to wrap a long value.
        value = json.dumps(value, ensure_ascii=False, default=str)
    return escape(str(value), quote=True)


def number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else text(value)
