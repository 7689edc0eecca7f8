"""Self-contained HTML reports: tables, pictures (inline PNG) and bar charts (inline SVG), in one
file that opens anywhere with no network and no other file."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from PIL import Image

from tint.io.storage import atomic_path

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { image-rendering: pixelated; }
.note { color: #666; font-size: 0.9em; }
"""


def picture(image: Image.Image, caption: str = "") -> str:
    """An <img> holding the PNG itself, with a caption under it."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    alt = html.escape(caption)
    return f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">{text}</figure>'


def table(headers: list[str], rows: list[list]) -> str:
    """A table; floats are shown with 3 decimals."""

    def cell(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def bar_chart(
    labels: list[str],
    values: list[float],
    intervals: list[tuple[float, float]] | None = None,
    maximum: float = 1.0,
    unit: str = "accuracy",
) -> str:
    """Horizontal bars from 0 to `maximum`, with an interval whisker per bar where given."""
    row, left, width = 26, 130, 420
    height = row * len(labels) + 30

    def x(v: float) -> float:
        return left + width * max(0.0, min(v, maximum)) / maximum

    parts = [f'<svg width="{left + width + 70}" height="{height}" font-size="12">']
    for i, (label, value) in enumerate(zip(labels, values)):
        y = 10 + i * row
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{html.escape(label)}</text>'
        )
        parts.append(
            f'<rect x="{left}" y="{y + 2}" width="{x(value) - left:.1f}" height="{row - 8}" '
            'fill="#4a7ebb"/>'
        )
        if intervals:
            lo, hi = intervals[i]
            mid = y + row / 2 - 2
            parts.append(
                f'<line x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{mid}" y2="{mid}" '
                'stroke="#222" stroke-width="1.5"/>'
            )
        parts.append(f'<text x="{x(value) + 4:.1f}" y="{y + 14}">{value:.3f}</text>')
    axis = 10 + len(labels) * row
    parts.append(f'<line x1="{left}" x2="{left + width}" y1="{axis}" y2="{axis}" stroke="#888"/>')
    parts.append(f'<text x="{left + width}" y="{axis + 14}" text-anchor="end">{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def write_report(path: str | Path, title: str, sections: list[tuple[str, str]]) -> None:
    """One HTML file: a title, then (heading, html) sections."""
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(page)
