"""`tint demo`: one few-shot episode of the glyph world, on a laptop CPU, in a few minutes.

Picks 5 novel glyph classes (never seen by the shipped models), writes 5 supports of each,
specialises the shipped diffusion model to them with TINT, generates new images, and checks them
with the shipped base teacher: each generated image is classified 5-way by nearest prototype
(the mean teacher feature of each class's supports). Writes a picture of supports beside
generated images and a summary."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from tint import world
from tint.data import glyphs
from tint.data.images import load_rgb, to_image, to_tensor
from tint.diffusion.model import DiffusionModel
from tint.diffusion.pipeline import GenerateConfig, generate
from tint.eval.model_quality import nearest_prototype
from tint.models.resnet import ResNet
from tint.pictures import grid
from tint.storage import write_json, write_png

WAYS, SHOTS, NUM = 5, 5, 10
SEED = 0


def episode_classes() -> list[glyphs.Glyph]:
    """The demo's novel classes: a fixed random draw from the novel split."""
    novel = glyphs.split("novel")
    picks = torch.randperm(len(novel), generator=torch.Generator().manual_seed(SEED))[:WAYS]
    return [novel[i] for i in sorted(picks.tolist())]


def write_supports(folder: Path, classes: list[glyphs.Glyph]) -> None:
    """Each class's first SHOTS benchmark instances as folder/<class>/<i>.png."""
    for glyph in classes:
        paths = [folder / glyph.name / f"{i}.png" for i in range(SHOTS)]
        if all(p.is_file() for p in paths):
            continue
        for path, x in zip(paths, glyphs.benchmark_instances(glyph, SHOTS)):
            write_png(path, to_image(x))


def run(out: str | Path, progress: bool = True) -> dict:
    """Run the demo in `out` (finished work is reused) and return its summary."""
    out = Path(out)
    classes = episode_classes()
    supports_dir = out / "supports"
    write_supports(supports_dir, classes)

    start = time.perf_counter()
    model = DiffusionModel.load(world.DEFAULT_MODEL)
    config = GenerateConfig.from_preset("fast", num=NUM, seed=SEED)
    manifest = generate(
        supports_dir, out / "generated", model, config, resume=True, progress=progress
    )
    seconds = time.perf_counter() - start

    teacher = ResNet.from_pretrained(world.DEFAULT_TEACHER).eval()
    names = [g.name for g in classes]
    supports = {n: _load(sorted((supports_dir / n).glob("*.png"))) for n in names}
    made = {
        n: _load([out / "generated" / e["path"] for e in manifest["images"] if e["class"] == n])
        for n in names
    }
    per_class = {}
    for target, name in enumerate(names):
        predicted = nearest_prototype(teacher, [supports[n] for n in names], made[name])
        per_class[name] = float((predicted == target).float().mean())

    write_png(
        out / "overview.png",
        grid([[*map(to_image, supports[n]), None, *map(to_image, made[n])] for n in names]),
    )
    summary = {
        "classes": names,
        "supports_per_class": SHOTS,
        "generated_per_class": NUM,
        "generated_recognised": per_class,
        "generated_recognised_mean": sum(per_class.values()) / len(per_class),
        "specialise_and_generate_seconds": round(seconds, 1),
        "picture": str(out / "overview.png"),
        "images": str(out / "generated" / "images"),
    }
    write_json(out / "summary.json", summary)
    return summary


def _load(paths: list[Path]) -> torch.Tensor:
    return torch.stack([to_tensor(load_rgb(p), (glyphs.SIZE, glyphs.SIZE)) for p in paths])
