"""`tint demo`: the whole generator on a world small enough for a laptop CPU, in a few minutes.

Trains a tiny Stable-Diffusion-format model on coloured shapes, specialises it with TINT to two
colour-shape pairs it never saw, generates new images of them, and writes a
picture of supports beside generated images."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from tint.data import shapes
from tint.data.images import load_rgb
from tint.diffusion import training
from tint.diffusion.architectures import TinyArchitecture
from tint.diffusion.model import DiffusionModel
from tint.diffusion.pipeline import GenerateConfig, generate
from tint.pictures import grid
from tint.storage import write_png

ARCH = TinyArchitecture(
    image_size=16,
    vae_channels=(32, 64),
    unet_channels=(32, 64),
    text_width=64,
    text_layers=2,
    text_heads=2,
    words=[*shapes.WORDS, "object"],
)
NOVEL = [("orange", "disc"), ("purple", "triangle")]
# Every colour and every shape is seen in training, but never these two pairs together.
BASE = [(c, k) for c in shapes.COLORS for k in shapes.KINDS if (c, k) not in NOVEL]
SHOTS, NUM = 5, 8
TRAINING = training.PretrainConfig(
    vae_steps=300, denoiser_steps=1200, batch=32, warmup=0, checkpoint_every=300
)


def _draw_base(n: int, g: torch.Generator):
    return shapes.draw(n, g, BASE, size=ARCH.image_size)


def run(out: str | Path, progress: bool = True) -> dict:
    """Run the demo in `out` (finished stages are reused) and return its summary."""
    out = Path(out)
    timings = {}
    model_dir = out / "model"
    start = time.perf_counter()
    resume = (model_dir / "training" / "state.json").is_file()
    training.pretrain(model_dir, ARCH, TRAINING, _draw_base, resume=resume, progress=progress)
    timings["train tiny model (s)"] = round(time.perf_counter() - start, 1)

    supports = out / "supports"
    g = torch.Generator().manual_seed(1)
    for color, kind in NOVEL:
        folder = supports / f"{color}-{kind}"
        for i in range(SHOTS):
            if not (folder / f"{i}.png").is_file():
                write_png(folder / f"{i}.png", shapes.render(kind, color, ARCH.image_size, g))

    start = time.perf_counter()
    model = DiffusionModel.load(model_dir)
    config = GenerateConfig.from_preset("fast", num=NUM, ti_steps=150, seed=0)
    manifest = generate(supports, out / "generated", model, config, resume=True, progress=progress)
    timings["specialise + generate (s)"] = round(time.perf_counter() - start, 1)

    rows = []
    for color, kind in NOVEL:
        name = f"{color}-{kind}"
        row = [load_rgb(p) for p in sorted((supports / name).glob("*.png"))] + [None]
        row += [
            load_rgb(out / "generated" / e["path"])
            for e in manifest["images"]
            if e["class"] == name
        ]
        rows.append(row)
    write_png(out / "overview.png", grid(rows))
    summary = {
        "classes": [f"{c}-{k}" for c, k in NOVEL],
        "supports_per_class": SHOTS,
        "generated_per_class": NUM,
        "timings": timings,
        "picture": str(out / "overview.png"),
        "images": str(out / "generated" / "images"),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
