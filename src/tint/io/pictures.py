"""Pictures for people: image grids for demos and reports."""

from __future__ import annotations

from PIL import Image


def grid(rows: list[list[Image.Image]], cell: int = 64, gap: int = 4) -> Image.Image:
    """Rows of images, each scaled (nearest neighbour, so pixels stay visible) into a square cell,
    on a light grey background. An empty slot in a row is left blank (pass None)."""
    width = max(len(r) for r in rows) * (cell + gap) + gap
    sheet = Image.new("RGB", (width, len(rows) * (cell + gap) + gap), (230, 230, 230))
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            if image is not None:
                tile = image.convert("RGB").resize((cell, cell), Image.Resampling.NEAREST)
                sheet.paste(tile, (gap + c * (cell + gap), gap + r * (cell + gap)))
    return sheet
