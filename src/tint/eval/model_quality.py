"""The quality figures of a glyph diffusion model and its base teacher (`tint eval-model`):

- base_fidelity: images generated from base-class prompts, classified by the base teacher (top-1
  and top-5 over the base classes).
- novel_fidelity: TINT (at the distillation alpha, 0.9, and at 1.0) and textual-inversion-only
  images of the classes of N-way K-shot episodes of the novel split (or, to tune settings, the
  val split; `tint.data.episodes`), random and hard ones, classified by the teacher's prototype
  head on the episode's supports (`tint.models.teachers`): the share labelled as the class they
  were made for.
- vae_psnr, reconstruction_psnr: the VAE's round trip, and TINT at alpha 0 (textual + null-text
  inversion), on the supports of the random episodes.
- copy_distance: teacher-feature cosine distance from each TINT image (distillation alpha) to its
  nearest support, beside the same for the episode's real queries.

Each episode is specialised on its own supports, as `tint benchmark` does; the specialisations
are kept in a work folder and reused by a second run."""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from tint.config import group, setting
from tint.data import glyphs
from tint.data.datasets import open_dataset
from tint.data.episodes import sample_episode
from tint.data.images import LabelledImage, to_image, to_tensor
from tint.data.tasks import episode_task
from tint.diffusion import ddim
from tint.diffusion.generation import (
    DRAWN_PER_IMAGE,
    GenerateConfig,
    plan_images,
    reconstruct,
    render,
)
from tint.diffusion.model import DiffusionModel
from tint.diffusion.pipeline import specialize_to
from tint.eval.benchmark import class_similarity
from tint.io.pictures import grid
from tint.io.progress import bar
from tint.io.storage import write_png
from tint.models.resnet import ResNet
from tint.models.teachers import GlyphBackbone
from tint.pipeline.recipe import DISTILL_ALPHA
from tint.pipeline.students import task_teacher

TINT = f"tint_{DISTILL_ALPHA}"
GENERATORS = {TINT: ("tint", DISTILL_ALPHA), "tint_1.0": ("tint", 1.0), "ti": ("ti", DISTILL_ALPHA)}


@dataclass
class QualitySettings:
    base_classes: int = setting(100, "base classes prompted for base fidelity", minimum=1)
    per_base_class: int = setting(10, "images per prompted base class", minimum=1)
    split: str = setting(
        "novel", "the classes of the episodes (val to tune settings on)", choices=("val", "novel")
    )
    tasks: int = setting(10, "random episodes, and as many hard ones", minimum=1)
    ways: int = setting(5, "classes per episode", minimum=2)
    shots: int = setting(5, "supports per class", minimum=1)
    queries: int = setting(5, "real queries per class, for copy_distance", minimum=1)
    per_class: int = setting(10, "images per class and generator", minimum=1)
    generation: GenerateConfig = group(
        GenerateConfig,
        "the specialisation and sampling",
        prefix="",
        exclude=(
            *("num", "generator", "alpha", "resolution", "batch", "upscale", "upscale_steps"),
            *DRAWN_PER_IMAGE,
        ),
    )


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over images of 10 log10(1 / MSE), images in [0, 1]."""
    mse = (a - b).pow(2).flatten(1).mean(1).clamp(min=1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


@torch.no_grad()
def base_fidelity(
    model, teacher, settings: QualitySettings, *, progress=True, samples=None
) -> dict:
    """The teacher's top-1/top-5 on images prompted with base classes. With `samples` (a list),
    appends (class, its images) for each prompted class."""
    base = glyphs.split("base")
    g = torch.Generator().manual_seed(settings.generation.seed)
    chosen = sorted(torch.randperm(len(base), generator=g)[: settings.base_classes].tolist())
    labels = torch.tensor(chosen).repeat_interleave(settings.per_base_class)
    side = glyphs.settings().size // model.vae_scale_factor
    config = settings.generation
    logits, made = [], []
    for batch in bar(labels.split(50), "base fidelity", progress):
        prompts = [glyphs.caption(base[i]) for i in batch.tolist()]
        z = torch.randn(len(batch), model.unet.config.in_channels, side, side, generator=g)
        cond = model.encode_text(prompts)
        empty = model.encode_text([""]).expand(len(batch), -1, -1)
        z0 = ddim.sample(model, z.to(model.device), cond, empty, config.ddim_steps, config.guidance)
        images = model.decode_latents(z0).cpu()
        logits.append(teacher(images))
        made.append(images)
    logits = torch.cat(logits)
    if samples is not None:
        made = torch.cat(made)
        samples += [(base[c], made[labels == c]) for c in chosen]
    top5 = logits.topk(5, dim=1).indices
    return {
        "top1": float((logits.argmax(1) == labels).float().mean()),
        "top5": float((top5 == labels[:, None]).any(1).float().mean()),
        "classes": len(chosen),
        "images": len(labels),
    }


def _as_tensors(images: list) -> torch.Tensor:
    return torch.stack([to_tensor(im, (im.size[1], im.size[0])) for im in images])


def evaluate(
    model: DiffusionModel,
    teacher: ResNet,
    settings: QualitySettings | None = None,
    workdir=None,
    *,
    progress: bool = True,
    pictures=None,
) -> dict:
    """All quality figures as one JSON-ready dict (see the module doc). Specialisations are
    kept in `workdir` and reused. With `pictures` (a folder), also writes base-samples.png (per
    base class: a real instance, then images prompted with its word) and novel-samples.png (per
    class of the first episodes: its supports, then TINT at the distillation alpha, at 1.0 and
    textual-inversion-only images)."""
    settings = settings or QualitySettings()
    teacher.eval()
    config = settings.generation
    workdir = Path(workdir or tempfile.mkdtemp(prefix="tint-eval-"))
    out: dict = {"settings": dataclasses.asdict(settings)}
    base_samples: list = []
    out["base_fidelity"] = base_fidelity(
        model, teacher, settings, progress=progress, samples=base_samples
    )

    dataset = open_dataset("glyphs", settings.split)
    backbone = GlyphBackbone(teacher)
    similarity = class_similarity(dataset, backbone, progress=progress)
    seed, n = config.seed, settings.tasks
    draws = {"random": [], "hard": []}
    for i in range(n):
        args = (dataset, settings.ways, settings.shots, settings.queries, seed)
        draws["random"].append(sample_episode(*args, i))
        draws["hard"].append(sample_episode(*args, n + i, similarity))

    fidelity = {label: {"random": [], "hard": []} for label in GENERATORS}
    vae, recon, copy, rows = [], [], {TINT: [], "real": []}, []
    episodes = [(kind, e) for kind in draws for e in draws[kind]]
    for kind, episode in bar(episodes, "episodes", progress):
        folder = workdir / "episodes" / f"{episode.index:04d}"
        task = episode_task(dataset, episode, folder / "supports", backbone.input_size)
        supports = task.supports
        specs = specialize_to(
            folder / "specialization", model, supports, config, resume=True, progress=False
        )
        images, labels = task.support_tensor(backbone.input_size)
        support_images = [images[labels == i] for i in range(len(task.classes))]
        head = task_teacher(backbone, task)
        made = {}
        for label, (generator, alpha) in GENERATORS.items():
            cfg = dataclasses.replace(
                config, generator=generator, alpha=alpha, num=settings.per_class
            )
            entries = plan_images(specs, cfg)
            made[label] = _as_tensors(render(model, specs, entries, cfg))
            truth = torch.tensor([episode.classes.index(e["class"]) for e in entries])
            right = (head.logits(made[label]).argmax(1) == truth).float().mean()
            fidelity[label][kind].append(float(right))
        if kind != "random":
            continue
        for c, real in zip(episode.classes, support_images):
            vae.append(psnr(model.decode_latents(model.encode_images(real)).cpu(), real))
            recon.append(psnr(reconstruct(model, specs[c], config).cpu(), real))
        for key, shown in ((TINT, made[TINT]), ("real", task.queries)):
            copy[key].append(_nearest_distance(backbone, shown, images))
        if len(rows) < 6:
            rows.append(_picture_row(supports[episode.classes[0]], made, settings.per_class))
    out["vae_psnr"] = sum(vae) / len(vae)
    out["reconstruction_psnr"] = sum(recon) / len(recon)
    out["novel_fidelity"] = {
        label: {kind: sum(v) / len(v) for kind, v in scores.items()}
        for label, scores in fidelity.items()
    }
    out["copy_distance"] = {k: sum(v) / len(v) for k, v in copy.items()}
    if pictures:
        _write_pictures(Path(pictures), base_samples, rows)
    return out


@torch.no_grad()
def _nearest_distance(backbone, images: torch.Tensor, supports: torch.Tensor) -> float:
    """Mean teacher-feature cosine distance from each image to its nearest support."""
    f = F.normalize(backbone.embed(images), dim=1)
    s = F.normalize(backbone.embed(supports), dim=1)
    return float((1 - (f @ s.T).max(1).values).mean())


def _picture_row(supports: list[LabelledImage], made: dict, per_class: int) -> list:
    """A class's supports, then the first five images of each generator made for it."""
    row = [im.image for im in supports]
    for label in GENERATORS:
        row += [None, *map(to_image, made[label][:per_class][:5])]
    return row


def _write_pictures(folder: Path, base_samples, rows) -> None:
    base = [
        [to_image(glyphs.benchmark_instances(glyph, 1)[0]), None, *map(to_image, made[:8])]
        for glyph, made in base_samples[:8]
    ]
    write_png(folder / "base-samples.png", grid(base, cell=48))
    write_png(folder / "novel-samples.png", grid(rows, cell=48))
