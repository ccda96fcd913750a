"""Small inline SVG charts for reports: no JavaScript, no CDN, every label escaped.

A report must open anywhere (a mail client, an intranet without internet), so its charts are plain
SVG text written here rather than a charting library's HTML.
"""
from __future__ import annotations

import math
from datetime import datetime
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _fmt(value: float, percent: bool) -> str:
    return f"{value:.0%}" if percent else (f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.2f}")


def line_chart(series: dict[str, list[tuple[datetime, float]]], title: str, width: int = 640, height: int = 220,
               percent: bool = False, y_range: tuple[float, float] | None = None,
               markers: list[tuple[datetime, str]] = ()) -> str:
    """One line per series over time, with a legend; `markers` draw a dashed rule at a time, titled."""
    points = [(x, y) for values in series.values() for x, y in values if y is not None and not math.isnan(y)]
    if not points:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="40" role="img">' \
               f'<title>{escape(title)}</title><text x="4" y="24" font-size="13">{escape(title)}: no data</text></svg>'
    left, right, top, bottom = 48, 28, 28, 36
    xs = [x.timestamp() for x, _ in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 86400
    y0, y1 = y_range or (min(0.0, min(y for _, y in points)), max(y for _, y in points) or 1.0)
    y1 = y1 if y1 > y0 else y0 + 1

    def px(x: datetime) -> float:
        return left + (x.timestamp() - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'font-family="sans-serif" font-size="11"><title>{escape(title)}</title>',
           f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    for tick in range(5):
        value = y0 + (y1 - y0) * tick / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{py(value):.1f}" y2="{py(value):.1f}" '
                   f'stroke="#e5e5e5"/><text x="{left - 4}" y="{py(value) + 4:.1f}" text-anchor="end">'
                   f'{escape(_fmt(value, percent))}</text>')
    for tick in range(5):
        stamp = x0 + (x1 - x0) * tick / 4
        out.append(f'<text x="{px(datetime.fromtimestamp(stamp)):.1f}" y="{height - bottom + 16}" '
                   f'text-anchor="middle">{datetime.fromtimestamp(stamp):%d %b}</text>')
    for when, label in markers:
        if x0 <= when.timestamp() <= x1:
            out.append(f'<line x1="{px(when):.1f}" x2="{px(when):.1f}" y1="{top}" y2="{height - bottom}" '
                       f'stroke="#d62728" stroke-dasharray="4 3"><title>{escape(label)}</title></line>')
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        kept = [(x, y) for x, y in values if y is not None and not math.isnan(y)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in kept)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        out.extend(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}"><title>{escape(name)} '
                   f'{x:%Y-%m-%d}: {escape(_fmt(y, percent))}</title></circle>' for x, y in kept)
        out.append(f'<rect x="{left + 110 * index}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{left + 110 * index + 14}" y="{height - 5}">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def bar_chart(items: list[tuple[str, float]], title: str, width: int = 640, percent: bool = False) -> str:
    """Horizontal bars, one per (label, value), largest first as given."""
    row, left = 22, 150
    height = 28 + row * max(1, len(items))
    top = max((v for _, v in items), default=0) or 1
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
           f'font-family="sans-serif" font-size="11"><title>{escape(title)}</title>',
           f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    for index, (label, value) in enumerate(items):
        y = 24 + index * row
        bar = (width - left - 60) * value / top
        out.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{escape(str(label)[:28])}</text>'
                   f'<rect x="{left}" y="{y + 3}" width="{bar:.1f}" height="{row - 6}" '
                   f'fill="{PALETTE[index % len(PALETTE)]}"/>'
                   f'<text x="{left + bar + 4:.1f}" y="{y + 14}">{escape(_fmt(value, percent))}</text>')
    out.append("</svg>")
    return "".join(out)


def sparkline(values: list[float], width: int = 120, height: int = 28) -> str:
    """A goal's weekly trend: a small line, gaps where a week had no data."""
    kept = [(i, v) for i, v in enumerate(values) if v is not None and not math.isnan(v)]
    if not kept:
        return ""
    low, high = min(v for _, v in kept), max(v for _, v in kept)
    span = (high - low) or 1
    step = (width - 4) / max(1, len(values) - 1)
    path = " ".join(f"{2 + i * step:.1f},{height - 3 - (v - low) / span * (height - 6):.1f}" for i, v in kept)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">'
            f'<title>weekly trend</title><polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{path}"/></svg>')
