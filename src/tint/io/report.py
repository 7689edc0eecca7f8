"""Self-contained HTML reports: tables and pictures (inline PNG: images, and the figures of
`tint.io.figures`), in one file that opens anywhere with no network and no other file."""

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


def picture(image: Image.Image, caption: str = "", alt: str | None = None) -> str:
    """An <img> holding the PNG itself, with a caption under it; `alt` says in words what it
    shows (default: the caption)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    text = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    alt = html.escape(caption if alt is None else alt)
    return f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">{text}</figure>'


def table(headers: list[str], rows: list[list]) -> str:
    """A table; floats are shown with 3 decimals."""

    def cell(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(path: str | Path, title: str, sections: list[tuple[str, str]]) -> None:
    """One HTML file: a title, then (heading, html) sections."""
    body = "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(page)
