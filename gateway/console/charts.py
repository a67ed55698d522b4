"""Charts drawn on the server as inline SVG: no chart library to ship, nothing to run in the
browser, and a page works the same with scripts off (and in a screenshot)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

COLORS = ("#2563eb", "#16a34a", "#dc2626", "#9333ea")


def count(value: int) -> str:
    return str(value)


def money(millis: int) -> str:
    """1/1000 of the currency unit (``cost_millis``) as the unit with 2 decimals."""
    return f"{millis / 1000:.2f}"


def line_chart(labels: Sequence[str], series: dict[str, Sequence[int]], *, width: int = 720,
               height: int = 180, title: str = "",
               unit: Callable[[int], str] = count) -> Markup:
    """One polyline per series over shared x labels; first, middle and last labels shown."""
    pad_l, pad_b, pad_t = 36, 20, 10
    w, h = width - pad_l - 8, height - pad_b - pad_t
    top = max([1, *(v for vals in series.values() for v in vals)])
    n = max(len(labels) - 1, 1)
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" '
             'stroke="#999"/>',
             f'<text x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end">{unit(top)}</text>',
             f'<text x="{pad_l - 4}" y="{pad_t + h}" text-anchor="end">0</text>']
    for i, (name, vals) in enumerate(series.items()):
        pts = " ".join(f"{pad_l + w * j / n:.1f},{pad_t + h - h * v / top:.1f}"
                       for j, v in enumerate(vals))
        color = COLORS[i % len(COLORS)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" '
                     f'points="{pts}"/>')
        parts.append(f'<text x="{pad_l + 8 + 90 * i}" y="{pad_t + 10}" fill="{color}">'
                     f'{escape(name)} ({unit(sum(vals))})</text>')
    for j in sorted({0, len(labels) // 2, len(labels) - 1}):
        if 0 <= j < len(labels):
            anchor = "start" if j == 0 else "end" if j == len(labels) - 1 else "middle"
            parts.append(f'<text x="{pad_l + w * j / n:.1f}" y="{height - 4}" '
                         f'text-anchor="{anchor}">{escape(labels[j])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(items: Sequence[tuple[str, int]], *, width: int = 720, bar: int = 18,
              title: str = "", unit: Callable[[int], str] = count) -> Markup:
    """Horizontal bars, one per (label, value)."""
    top = max([1, *(v for _, v in items)])
    label_w, height = 160, max(len(items), 1) * (bar + 6) + 6
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for i, (label, value) in enumerate(items):
        y = 6 + i * (bar + 6)
        length = (width - label_w - 60) * value / top
        parts.append(f'<text x="{label_w - 6}" y="{y + bar - 5}" text-anchor="end">'
                     f'{escape(label)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar}" '
                     f'fill="{COLORS[0]}"/>'
                     f'<text x="{label_w + length + 4:.1f}" y="{y + bar - 5}">{unit(value)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
