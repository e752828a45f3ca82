"""Inline SVG bar and line charts for ``report.html``: no script, no network, nothing to install.

A chart is drawn in a fixed 1000-unit-wide view box and scales with the page. Every bar carries a
``<title>``, which browsers show as a tooltip, so exact figures stay one hover away.
"""

from __future__ import annotations

import math
from html import escape
from typing import Sequence

__all__ = ["Series", "bar_chart", "compact_number"]

_WIDTH, _HEIGHT = 1000, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 16, 14, 44
_MAX_LABELS = 8
_LINE_ABOVE = 160  # more groups than this: lines instead of bars


class Series:
    """A named row of values and the CSS color it is drawn in."""

    def __init__(self, name: str, values: Sequence[int], color: str):
        self.name = name
        self.values = list(values)
        self.color = color


def compact_number(value: float) -> str:
    """12345 -> "12.3k": short axis labels."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            text = f"{value / size:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return f"{value:g}"


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _axis(top: float) -> list[str]:
    parts = []
    plot_height = _HEIGHT - _TOP - _BOTTOM
    for index in range(5):
        value = top * index / 4
        y = _HEIGHT - _BOTTOM - plot_height * index / 4
        parts.append(f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'class="grid{" base" if index == 0 else ""}"/>')
        parts.append(f'<text x="{_LEFT - 8}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
                     f'{escape(compact_number(value))}</text>')
    return parts


def _labels(labels: Sequence[str], slot: float) -> list[str]:
    count = len(labels)
    step = max(1, math.ceil(count / _MAX_LABELS))
    parts = []
    for index in range(0, count, step):
        x = _LEFT + slot * (index + 0.5)
        parts.append(f'<text x="{x:.1f}" y="{_HEIGHT - _BOTTOM + 18}" class="tick" '
                     f'text-anchor="middle">{escape(labels[index])}</text>')
    return parts


def bar_chart(labels: Sequence[str], series: Sequence[Series], *, title: str,
              marks: Sequence[int] = (), mark_label: str = "") -> str:
    """An SVG chart of ``series`` over ``labels``: grouped bars, or lines when there are many.

    ``marks`` are indexes of labels to flag with a red tick under the axis (failed hours).
    """
    count = len(labels)
    top = _nice_ceiling(max((max(s.values, default=0) for s in series), default=0))
    plot_width = _WIDTH - _LEFT - _RIGHT
    plot_height = _HEIGHT - _TOP - _BOTTOM
    slot = plot_width / max(count, 1)
    base = _HEIGHT - _BOTTOM
    parts = [f'<svg class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
             f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
             f"<title>{escape(title)}</title>"]
    parts += _axis(top)
    if count == 0:
        parts.append(f'<text x="{_WIDTH / 2}" y="{_HEIGHT / 2}" class="empty" '
                     f'text-anchor="middle">No data yet</text>')
    elif count > _LINE_ABOVE:
        for index, one in enumerate(series):
            points = " ".join(
                f"{_LEFT + slot * (i + 0.5):.1f},{base - plot_height * v / top:.1f}"
                for i, v in enumerate(one.values))
            if index == 0:
                parts.append(f'<polygon points="{_LEFT + slot * 0.5:.1f},{base} {points} '
                             f'{_LEFT + slot * (count - 0.5):.1f},{base}" '
                             f'fill="{one.color}" fill-opacity="0.18"/>')
            parts.append(f'<polyline points="{points}" fill="none" stroke="{one.color}" '
                         f'stroke-width="1.6" stroke-linejoin="round"/>')
    else:
        inner = min(slot * 0.8, 36.0 * len(series))  # wide bars for a few days look odd
        width = inner / len(series)
        for i, label in enumerate(labels):
            tooltip = escape(f"{label}: " + ", ".join(f"{s.values[i]:,} {s.name}" for s in series))
            start = _LEFT + slot * i + (slot - inner) / 2
            parts.append(f"<g><title>{tooltip}</title>")
            for j, one in enumerate(series):
                height = plot_height * one.values[i] / top
                parts.append(f'<rect x="{start + width * j:.2f}" y="{base - height:.2f}" '
                             f'width="{max(width - 0.6, 0.6):.2f}" height="{height:.2f}" '
                             f'fill="{one.color}" rx="{min(2.0, width / 4):.2f}"/>')
            parts.append("</g>")
    for index in marks:
        x = _LEFT + slot * (index + 0.5)
        parts.append(f'<g class="mark"><title>{escape(f"{mark_label} {labels[index]}")}</title>'
                     f'<rect x="{x - max(slot / 2, 1.5):.2f}" y="{base + 2}" '
                     f'width="{max(slot, 3):.2f}" height="6" fill="#dc2626"/></g>')
    parts += _labels(labels, slot)
    parts.append("</svg>")
    return "".join(parts)
