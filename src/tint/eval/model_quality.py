"""The quality figures of a diffusion model and its base teacher (`tint eval-model`):

- base_fidelity: images generated from base-class prompts, classified by the base teacher (top-1
  and top-5 over the base classes).
- vae_psnr: the VAE's own round trip on real novel instances.
- reconstruction_psnr: TINT at alpha 0 (textual + null-text inversion) against each support.
- novel_fidelity: TINT (alpha 0.5 and 1.0) and textual-inversion-only images of 5 novel
  classes, classified 5-way by nearest prototype on teacher features of the 5 supports; over
  random tasks and hard ones (the 5 most similar classes under the teacher's features).
- copy_distance: teacher-feature cosine distance from each generated image to its nearest
  support, beside the same for real held-out instances.

Each novel class is specialised once, on its first `shots` benchmark instances, and shared by
every task that uses it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from tint.data import glyphs
from tint.data.images import LabelledImage, to_image, to_tensor
from tint.diffusion import ddim
from tint.diffusion.model import DiffusionModel
from tint.diffusion.pipeline import (
    GenerateConfig,
    plan_images,
    reconstruct,
    render,
    specialize,
)
from tint.models.resnet import ResNet
from tint.storage import write_png


@dataclass
class QualitySettings:
    base_classes: int = 100  # base classes prompted for base_fidelity
    per_base_class: int = 10  # images per prompted class
    novel_classes: int = 20  # for reconstruction_psnr and vae_psnr
    shots: int = 5  # supports per novel class
    tasks: int = 10  # random tasks, and as many hard tasks
    ways: int = 5
    per_class: int = 10  # generated images per class and generator, for novel_fidelity
    steps: int = 25
    guidance: float = 7.5
    seed: int = 0


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over images of 10 log10(1 / MSE), images in [0, 1]."""
    mse = (a - b).pow(2).flatten(1).mean(1).clamp(min=1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


@torch.no_grad()
def _features(teacher: ResNet, x: torch.Tensor) -> torch.Tensor:
    return F.normalize(torch.cat([teacher.features(c) for c in x.split(256)]), dim=1)


def _classify(prototypes: torch.Tensor, teacher: ResNet, images: torch.Tensor) -> torch.Tensor:
    return (_features(teacher, images) @ F.normalize(prototypes, dim=1).T).argmax(1)


@torch.no_grad()
def base_fidelity(model, teacher, settings: QualitySettings, progress=True, samples=None) -> dict:
    """The teacher's top-1/top-5 on images prompted with base classes. With `samples` (a list),
    appends (class, its images) for each prompted class."""
    base = glyphs.split("base")
    g = torch.Generator().manual_seed(settings.seed)
    chosen = sorted(torch.randperm(len(base), generator=g)[: settings.base_classes].tolist())
    labels = torch.tensor(chosen).repeat_interleave(settings.per_base_class)
    logits, made = [], []
    for batch in tqdm(labels.split(50), desc="base fidelity", disable=not progress):
        prompts = [glyphs.caption(base[i]) for i in batch.tolist()]
        z = torch.randn(
            len(batch), model.unet.config.in_channels, *_latent_size(model), generator=g
        ).to(model.device)
        cond = model.encode_text(prompts)
        empty = model.encode_text([""]).expand(len(batch), -1, -1)
        images = model.decode_latents(
            ddim.sample(model, z, cond, empty, settings.steps, settings.guidance)
        )
        logits.append(teacher(images.cpu()))
        made.append(images.cpu())
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


def _latent_size(model: DiffusionModel) -> tuple[int, int]:
    side = glyphs.SIZE // model.vae_scale_factor
    return side, side


def _render_tensor(model, specs, entries, config) -> torch.Tensor:
    """Generated images as they are written to disk (8-bit), back as a (B, 3, H, W) tensor."""
    images = render(model, specs, entries, config)
    return torch.stack([to_tensor(im, (im.size[1], im.size[0])) for im in images])


def _split_instances(glyph, shots) -> tuple[torch.Tensor, torch.Tensor]:
    """A class's benchmark instances: the first `shots` are its supports, the rest held out."""
    images = glyphs.benchmark_instances(glyph, glyphs.INSTANCES)
    return images[:shots], images[shots:]


def evaluate(
    model: DiffusionModel,
    teacher: ResNet,
    settings: QualitySettings | None = None,
    config: GenerateConfig | None = None,
    workdir=None,
    progress: bool = True,
    pictures=None,
) -> dict:
    """All quality figures as one JSON-ready dict. `config` sets the TINT specialisation (the
    fast preset by default); specialisations are kept in `workdir` and reused. With `pictures`
    (a folder), also writes base-samples.png (per base class: a real instance, then images
    prompted with its word) and novel-samples.png (per novel class: its supports, then TINT at
    alpha 0.5, TINT at 1.0 and textual-inversion-only images)."""
    import tempfile

    settings = settings or QualitySettings()
    teacher.eval()
    config = config or GenerateConfig.from_preset(
        "fast", steps=settings.steps, guidance=settings.guidance
    )
    novel = glyphs.split("novel")
    instances = {c.name: _split_instances(c, settings.shots) for c in novel}  # rendered once
    out: dict = {"settings": dataclasses.asdict(settings)}
    base_samples: list = []
    out["base_fidelity"] = base_fidelity(model, teacher, settings, progress, base_samples)

    # Which novel classes are needed: the first `novel_classes`, and those of every task.
    features = torch.stack([_features(teacher, instances[c.name][0]).mean(0) for c in novel])
    g = torch.Generator().manual_seed(settings.seed + 1)
    random_tasks = [
        torch.randperm(len(novel), generator=g)[: settings.ways].tolist()
        for _ in range(settings.tasks)
    ]
    similarity = features @ features.T
    hard_tasks = []
    for anchor in torch.randperm(len(novel), generator=g)[: settings.tasks].tolist():
        hard_tasks.append(similarity[anchor].topk(settings.ways).indices.tolist())
    needed = sorted(set(range(settings.novel_classes)).union(*random_tasks, *hard_tasks))

    workdir = Path(workdir or tempfile.mkdtemp(prefix="tint-eval-"))
    classes = {}
    for i in needed:
        folder = workdir / "supports" / novel[i].name
        supports = instances[novel[i].name][0]
        classes[novel[i].name] = []
        for k, x in enumerate(supports):
            path = folder / f"{k}.png"
            if not path.is_file():
                write_png(path, to_image(x))
            classes[novel[i].name].append(LabelledImage(path, to_image(x)))
    specs = specialize(
        model, classes, config, workdir / "specialization", resume=True, progress=progress
    )

    vae, recon, generated = [], [], {}
    for name, spec in tqdm(specs.items(), desc="generating", disable=not progress):
        glyph = next(c for c in novel if c.name == name)
        supports = instances[name][0]
        if novel.index(glyph) < settings.novel_classes:
            vae.append(psnr(model.decode_latents(model.encode_images(supports)), supports))
            images = reconstruct(model, spec, config).cpu()
            recon.append(psnr(images, supports))
        for label, gen, alpha in (
            ("tint_0.5", "tint", 0.5),
            ("tint_1.0", "tint", 1.0),
            ("ti", "ti", 0.5),
        ):
            cfg = dataclasses.replace(config, generator=gen, alpha=alpha, num=settings.per_class)
            generated[(name, label)] = _render_tensor(
                model, {name: spec}, plan_images({name: spec}, cfg), cfg
            )
    out["vae_psnr"] = sum(vae) / len(vae)
    out["reconstruction_psnr"] = sum(recon) / len(recon)

    fidelity = {}
    for label in ("tint_0.5", "tint_1.0", "ti"):
        scores = {}
        for kind, tasks in (("random", random_tasks), ("hard", hard_tasks)):
            accs = []
            for task in tasks:
                names = [novel[i].name for i in task]
                correct = total = 0
                for target, name in enumerate(names):
                    predicted = _classify(features[task], teacher, generated[(name, label)])
                    correct += int((predicted == target).sum())
                    total += len(predicted)
                accs.append(correct / total)
            scores[kind] = sum(accs) / len(accs)
        fidelity[label] = scores
    out["novel_fidelity"] = fidelity

    copy = {"tint_0.5": [], "real": []}
    for i in range(settings.novel_classes):
        supports, held_out = instances[novel[i].name]
        s = _features(teacher, supports)
        for key, images in (
            ("tint_0.5", generated[(novel[i].name, "tint_0.5")]),
            ("real", held_out),
        ):
            nearest = (_features(teacher, images) @ s.T).max(1).values
            copy[key].append(float((1 - nearest).mean()))
    out["copy_distance"] = {k: sum(v) / len(v) for k, v in copy.items()}
    if pictures:
        _write_pictures(Path(pictures), base_samples, instances, generated, novel[:6])
    return out


def _write_pictures(folder, base_samples, instances, generated, novel) -> None:
    from tint.pictures import grid

    rows = [
        [to_image(glyphs.benchmark_instances(glyph, 1)[0]), None, *map(to_image, made[:8])]
        for glyph, made in base_samples[:8]
    ]
    write_png(folder / "base-samples.png", grid(rows, cell=48))
    rows = []
    for glyph in novel:
        row = [*map(to_image, instances[glyph.name][0])]
        for label in ("tint_0.5", "tint_1.0", "ti"):
            row += [None, *map(to_image, generated[(glyph.name, label)][:5])]
        rows.append(row)
    write_png(folder / "novel-samples.png", grid(rows, cell=48))
