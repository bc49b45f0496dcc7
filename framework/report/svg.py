"""Small inline-SVG charts: bars, horizontal bars, lines, a donut and a heat map.

Every chart is one `<svg>` string, sized by its viewBox so it scales with the page. Each drawn
data point is an element with `class="mark"`, `data-label` and `data-value` (the exact number,
for tests and for anyone reading the page's source) and a `<title>` (the tooltip; the page's
script turns it into a styled one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

Number = int | float | Decimal
Format = Callable[[float], str]

INK, MUTED, GRID = "#1f2937", "#6b7280", "#e5e7eb"
BLUE, TEAL, RED, AMBER, PURPLE, GREY = \
    "#2563eb", "#0d9488", "#dc2626", "#d97706", "#7c3aed", "#9ca3af"


@dataclass(frozen=True)
class Mark:
    """One data point: its axis label, exact value, tooltip text and (optional) colour."""

    label: str
    value: Number
    tip: str
    color: str | None = None


def shorten(text: str, size: int) -> str:
    """`text` cut to `size` characters, the last one an ellipsis when cut."""
    return text if len(text) <= size else text[:size - 1] + "…"


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float) -> str:
    """Coordinates with two decimals at most: short markup, no visible loss."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _mark(tag: str, mark: Mark, color: str, **geometry: float | str) -> str:
    attrs = " ".join(f'{k.replace("_", "-")}="{_num(v) if isinstance(v, float | int) else v}"'
                     for k, v in geometry.items())
    return (f'<{tag} class="mark" {attrs} fill="{mark.color or color}" '
            f'data-label="{_attr(mark.label)}" data-value="{_attr(mark.value)}">'
            f"<title>{escape(mark.tip)}</title></{tag}>")


def _svg(width: float, height: float, body: list[str], label: str) -> str:
    return (f'<svg viewBox="0 0 {_num(width)} {_num(height)}" role="img" '
            f'aria-label="{_attr(label)}" xmlns="http://www.w3.org/2000/svg">'
            + "".join(body) + "</svg>")


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 11,
          color: str = MUTED, weight: str = "normal") -> str:
    return (f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}" font-size="{size}" '
            f'fill="{color}" font-weight="{weight}">{escape(text)}</text>')


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """0 and round steps (1, 2, 2.5 or 5 times a power of ten) up to at least `maximum`."""
    if maximum <= 0:
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    steps = math.ceil(maximum / step - 1e-9)
    return [i * step for i in range(steps + 1)]


def _every(count: int, space: float, label_width: float) -> int:
    """Label every n-th slot so that labels `label_width` wide do not overlap."""
    return max(1, math.ceil(count * label_width / space)) if count else 1


def bar_chart(marks: Sequence[Mark], *, axis: Format, label: str, color: str = BLUE,
              width: int = 640, height: int = 250, label_width: float = 44) -> str:
    """Vertical bars from zero, one per mark, with a value axis and every n-th x label."""
    left, right, top, bottom = 52.0, 8.0, 10.0, 26.0
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(max((float(m.value) for m in marks), default=0.0))
    body = _y_axis(ticks, axis, left, top, plot_w, plot_h)
    slot = plot_w / max(len(marks), 1)
    bar_w = max(slot * 0.78, 1.0)
    every = _every(len(marks), plot_w, label_width)
    for i, mark in enumerate(marks):
        bar_h = plot_h * max(float(mark.value), 0.0) / ticks[-1]
        x = left + i * slot + (slot - bar_w) / 2
        body.append(_mark("rect", mark, color, x=x, y=top + plot_h - bar_h, width=bar_w,
                          height=bar_h))
        if i % every == 0:
            body.append(_text(left + (i + 0.5) * slot, height - 8, mark.label, anchor="middle",
                              size=10))
    return _svg(width, height, body, label)


def line_chart(marks: Sequence[Mark], *, axis: Format, label: str, color: str = BLUE,
               width: int = 640, height: int = 250, reference: tuple[float, str] | None = None,
               label_width: float = 44) -> str:
    """A line through the marks (drawn as dots), optionally a dashed reference line."""
    left, right, top, bottom = 52.0, 8.0, 10.0, 26.0
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [float(m.value) for m in marks] + ([reference[0]] if reference else [])
    ticks = nice_ticks(max(values, default=0.0))
    body = _y_axis(ticks, axis, left, top, plot_w, plot_h)
    slot = plot_w / max(len(marks), 1)
    points = [(left + (i + 0.5) * slot, top + plot_h * (1 - float(m.value) / ticks[-1]))
              for i, m in enumerate(marks)]
    if reference:
        y = top + plot_h * (1 - reference[0] / ticks[-1])
        body.append(f'<line x1="{_num(left)}" x2="{_num(left + plot_w)}" y1="{_num(y)}" '
                    f'y2="{_num(y)}" stroke="{MUTED}" stroke-dasharray="4 3"/>')
        body.append(_text(left + plot_w - 2, y - 4, reference[1], anchor="end", size=10))
    if len(points) > 1:
        path = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                    'stroke-width="2" stroke-linejoin="round"/>')
    every = _every(len(marks), plot_w, label_width)
    for i, (mark, (x, y)) in enumerate(zip(marks, points)):
        body.append(_mark("circle", mark, color, cx=x, cy=y, r=3.2))
        if i % every == 0:
            body.append(_text(x, height - 8, mark.label, anchor="middle", size=10))
    return _svg(width, height, body, label)


def _y_axis(ticks: list[float], axis: Format, left: float, top: float, plot_w: float,
            plot_h: float) -> list[str]:
    parts = []
    for tick in ticks:
        y = top + plot_h * (1 - tick / ticks[-1])
        parts.append(f'<line x1="{_num(left)}" x2="{_num(left + plot_w)}" y1="{_num(y)}" '
                     f'y2="{_num(y)}" stroke="{GRID}"/>')
        parts.append(_text(left - 6, y + 4, axis(tick), anchor="end", size=10))
    return parts


def hbar_chart(marks: Sequence[Mark], *, value_text: Callable[[Mark], str], label: str,
               color: str = BLUE, width: int = 640, row: int = 24, label_width: int = 190) -> str:
    """Horizontal bars, one row per mark, the label on the left and the value at the end."""
    value_w, top = 96.0, 4.0
    plot_w = width - label_width - value_w
    height = top * 2 + row * len(marks)
    largest = max((float(m.value) for m in marks), default=0.0) or 1.0
    body = []
    for i, mark in enumerate(marks):
        y = top + i * row
        bar_w = plot_w * max(float(mark.value), 0.0) / largest
        body.append(_text(label_width - 8, y + row * 0.66, shorten(mark.label, 28),
                          anchor="end", size=12,
                          color=INK))
        body.append(_mark("rect", mark, color, x=float(label_width), y=y + row * 0.18,
                          width=bar_w, height=row * 0.64, rx=2))
        body.append(_text(label_width + bar_w + 6, y + row * 0.66, value_text(mark), size=11))
    return _svg(width, height, body, label)


def donut_chart(marks: Sequence[Mark], *, legend: Callable[[Mark], str], label: str,
                width: int = 640, height: int = 230) -> str:
    """Share of each mark in the total, as ring segments, with a legend on the right."""
    cx, cy, outer, inner = height / 2, height / 2, height / 2 - 8, height / 2 - 52
    total = sum(max(float(m.value), 0.0) for m in marks)
    body, start = [], 0.0
    for i, mark in enumerate(marks):
        share = max(float(mark.value), 0.0) / total if total else 0.0
        colour = mark.color or PALETTE[i % len(PALETTE)]
        body.append(_mark("path", mark, colour, d=_ring_segment(cx, cy, outer, inner, start,
                                                                start + share)))
        start += share
        y = 28 + i * 26
        body.append(f'<rect x="{_num(height + 24)}" y="{_num(y - 11)}" width="14" height="14" '
                    f'rx="3" fill="{colour}"/>')
        body.append(_text(height + 46, y, legend(mark), size=13, color=INK))
    return _svg(width, height, body, label)


def _ring_segment(cx: float, cy: float, outer: float, inner: float, start: float,
                  end: float) -> str:
    """Path of a ring segment between two fractions of the circle (0 = 12 o'clock)."""
    if end - start >= 0.9999:  # a full ring: two half arcs (one arc cannot close a circle)
        return (_ring_segment(cx, cy, outer, inner, 0.0, 0.5) + " "
                + _ring_segment(cx, cy, outer, inner, 0.5, 1.0))
    if end <= start:
        return f"M{_num(cx)},{_num(cy - outer)}Z"

    def point(radius: float, fraction: float) -> str:
        angle = 2 * math.pi * fraction - math.pi / 2
        return f"{_num(cx + radius * math.cos(angle))},{_num(cy + radius * math.sin(angle))}"

    large = 1 if end - start > 0.5 else 0
    return (f"M{point(outer, start)} A{_num(outer)},{_num(outer)} 0 {large} 1 {point(outer, end)} "
            f"L{point(inner, end)} A{_num(inner)},{_num(inner)} 0 {large} 0 {point(inner, start)}Z")


def heatmap(rows: Sequence[str], columns: Sequence[str], cells: dict[tuple[int, int], Mark], *,
            label: str, scale_max: float, width: int = 1240, show_values: Callable[[Mark], str]
            | None = None, row_limits: Sequence[int] | None = None,
            first_column_color: str = "#cbd5e1") -> str:
    """A grid of cells (row index, column index) -> mark, shaded by value / scale_max.

    The first column is drawn in a neutral colour: in a cohort table it is the cohort itself
    (always 100%), which would otherwise flatten the scale of every later month. Empty cells
    get a pale background up to `row_limits[row]` (the last column that could hold data).
    """
    left, top = 64.0, 22.0
    cell_w = (width - left - 4) / max(len(columns), 1)
    cell_h = 20.0
    height = top + cell_h * len(rows) + 4
    body = []
    every = _every(len(columns), width - left, 26)
    for j, name in enumerate(columns):
        if j % every == 0:
            body.append(_text(left + (j + 0.5) * cell_w, 14, name, anchor="middle", size=10))
    for i, name in enumerate(rows):
        y = top + i * cell_h
        body.append(_text(left - 6, y + cell_h * 0.7, name, anchor="end", size=10))
        for j in range(len(columns)):
            mark = cells.get((i, j))
            x = left + j * cell_w
            if mark is None:
                if row_limits is not None and j > row_limits[i]:
                    continue
                body.append(f'<rect x="{_num(x + 0.5)}" y="{_num(y + 0.5)}" '
                            f'width="{_num(cell_w - 1)}" height="{_num(cell_h - 1)}" '
                            'fill="#f9fafb"/>')
                continue
            level = 0.0 if j == 0 or not scale_max else min(float(mark.value) / scale_max, 1.0)
            colour = first_column_color if j == 0 else _shade(level)
            body.append(_mark("rect", mark, colour, x=x + 0.5, y=y + 0.5, width=cell_w - 1,
                              height=cell_h - 1))
            if show_values and cell_w >= 34:
                body.append(_text(x + cell_w / 2, y + cell_h * 0.7, show_values(mark),
                                  anchor="middle", size=9,
                                  color="#ffffff" if level > 0.5 else INK))
    return _svg(width, height, body, label)


def _shade(fraction: float) -> str:
    """From a pale blue (0) to a deep blue (1), linearly."""
    f = min(max(fraction, 0.0), 1.0)
    low, high = (219, 234, 254), (30, 64, 175)
    r, g, b = (round(lo + (hi - lo) * f) for lo, hi in zip(low, high))
    return f"#{r:02x}{g:02x}{b:02x}"


PALETTE = (BLUE, AMBER, PURPLE, TEAL, RED, GREY)
