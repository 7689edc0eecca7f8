"""Shapes: a toy captioned world of coloured discs, squares and triangles on white, small enough
to train a diffusion model on in seconds, for the tests."""

from __future__ import annotations

import torch
from PIL import Image, ImageDraw

from tint.data.images import to_tensor

KINDS = ("disc", "square", "triangle")
COLORS = {
    "red": (210, 40, 40),
    "blue": (40, 60, 200),
    "green": (40, 170, 60),
    "orange": (240, 140, 20),
    "purple": (140, 50, 170),
}
WORDS = ["a", "photo", "of", *KINDS, *COLORS]


def render(kind: str, color: str, size: int, generator: torch.Generator) -> Image.Image:
    """One shape of random size and position; outline jitter makes instances differ."""

    def rand(lo: int, hi: int) -> int:
        return int(torch.randint(lo, hi + 1, (1,), generator=generator))

    img = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(img)
    extent = rand(size // 2, size - 2)
    x0, y0 = rand(0, size - extent), rand(0, size - extent)
    box = [x0, y0, x0 + extent - 1, y0 + extent - 1]
    fill = COLORS[color]
    if kind == "disc":
        d.ellipse(box, fill=fill)
    elif kind == "square":
        d.rectangle(box, fill=fill)
    else:
        d.polygon([(x0 + extent // 2, y0), (x0, y0 + extent - 1), box[2:]], fill=fill)
    return img


def draw(
    n: int, generator: torch.Generator, classes: list[tuple[str, str]], size: int = 16
) -> tuple[torch.Tensor, list[str]]:
    """n random instances of (color, kind) classes: images (n, 3, size, size) in [0, 1] and
    captions "a photo of a <color> <kind>"."""
    images, captions = [], []
    for _ in range(n):
        color, kind = classes[int(torch.randint(len(classes), (1,), generator=generator))]
        images.append(to_tensor(render(kind, color, size, generator), (size, size)))
        captions.append(f"a photo of a {color} {kind}")
    return torch.stack(images), captions
