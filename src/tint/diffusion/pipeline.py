"""The TINT pipeline: specialise a model to each class of a support folder, then generate.

    OUT/specialization/<class>/...   see tint.diffusion.specialization
    OUT/images/<class>/00000.png     each at the size of the support it came from
    OUT/manifest.json                {"images": [{"path", "class", "support", "alpha", "seed"}]}
    OUT/run.json                     the settings of the run, checked by --resume

Finished work is found on disk and reused when `resume` is set; each image depends only on
(seed, class, index), so a resumed or re-batched run makes the same images."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from tint.data.images import LabelledImage, load_class_folders, resize, to_image, to_tensor
from tint.diffusion import ddim, null_text, textual_inversion
from tint.diffusion.memory import FittingBatch
from tint.diffusion.model import DiffusionModel
from tint.diffusion.sampler import blend_noise
from tint.diffusion.specialization import Specialization, TokenEmbedding
from tint.errors import TintError
from tint.run_folder import RunFolder
from tint.storage import read_json_object, write_json, write_png

GENERATORS = ("tint", "ti")

# The paper's settings, and the default: fewer, larger-batch steps (README, "Presets").
PRESETS = {
    "reference": {"ti_steps": 5000, "ti_batch": 1, "ti_lr": 1e-3, "steps": 25},
    "fast": {"ti_steps": 300, "ti_batch": 4, "ti_lr": 5e-3, "steps": 25},
}


@dataclass
class GenerateConfig:
    num: int = 10  # images per class
    generator: str = "tint"  # "tint", or "ti" (textual inversion only, fresh noise)
    alpha: float = 0.5  # TINT noise blend: 0 reproduces the support, 1 is fresh noise
    random_alpha: bool = False  # draw alpha ~ U(0, 1) per image instead
    steps: int = 25  # DDIM steps, for null-text inversion and sampling alike
    guidance: float = 7.5  # classifier-free guidance scale
    seed: int = 0
    resolution: tuple[int, int] | None = None  # (H, W) the model works at; None: its native one
    batch: int = 16  # images per generation batch
    textual_inversion: textual_inversion.TextualInversionConfig = field(
        default_factory=textual_inversion.TextualInversionConfig
    )
    null_text: null_text.NullTextConfig = field(default_factory=null_text.NullTextConfig)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> GenerateConfig:
        """A config from a preset; `overrides` may name any field or ti_steps/ti_batch/ti_lr."""
        if name not in PRESETS:
            raise TintError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
        values = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
        ti = textual_inversion.TextualInversionConfig(
            steps=values.pop("ti_steps"), lr=values.pop("ti_lr"), batch=values.pop("ti_batch")
        )
        for key in ("min_timestep", "template", "init_word"):
            if key in values:
                setattr(ti, key, values.pop(key))
        config = cls(textual_inversion=ti, **values)
        config.null_text.guidance = config.guidance
        return config

    def validate(self) -> None:
        ti = self.textual_inversion
        positive = {
            "--num": self.num,
            "--steps": self.steps,
            "--batch": self.batch,
            "--ti-steps": ti.steps,
            "--ti-batch": ti.batch,
        }
        for flag, value in positive.items():
            if value < 1:
                raise TintError(f"{flag} must be at least 1, got {value}")
        if not ti.lr > 0:
            raise TintError(f"--ti-lr must be positive, got {ti.lr}")
        if not 0 <= self.alpha <= 1:
            raise TintError(f"--alpha must be in [0, 1], got {self.alpha}")
        if self.guidance < 0:
            raise TintError(f"--cfg must not be negative, got {self.guidance}")
        if self.generator not in GENERATORS:
            raise TintError(f"--generator must be one of {', '.join(GENERATORS)}")
        if "{}" not in ti.template:
            raise TintError(f"--template must contain {{}} for the class token: {ti.template!r}")


def class_token(name: str, taken: set[str]) -> str:
    """A new token for a class: '<name>' with the name lower-cased and spaces as dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "class"
    token, n = f"<{slug}>", 1
    while token in taken:
        n += 1
        token = f"<{slug}-{n}>"
    taken.add(token)
    return token


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _image_seed(seed: int, name: str, index: int) -> int:
    digest = hashlib.sha256(f"{seed}/{name}/{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") >> 1


def _working_size(model: DiffusionModel, config: GenerateConfig) -> tuple[int, int]:
    size = config.resolution or (model.native_resolution, model.native_resolution)
    model.check_resolution(size)
    return size


def _encode_supports(model, images: list[LabelledImage], size) -> torch.Tensor:
    """Supports (small ones upsampled) to (K, C, h, w) latents at the working size."""
    x = torch.stack([to_tensor(im.image, size) for im in images])
    return torch.cat([model.encode_images(chunk) for chunk in x.split(16)])


def specialize(
    model: DiffusionModel,
    classes: dict[str, list[LabelledImage]],
    config: GenerateConfig,
    directory: str | Path,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Specialization]:
    """TINT-specialise `model` to every class; saved under directory/<class>. With `resume`,
    stages already on disk with the same settings are loaded instead of recomputed."""
    directory = Path(directory)
    size = _working_size(model, config)
    # Tokens an earlier call added are not taken: a class keeps its token from call to call.
    vocab = model.tokenizer
    taken = set(vocab.get_vocab()) - set(vocab.get_added_vocab()) | set(vocab.all_special_tokens)
    tokens = {name: class_token(name, taken) for name in classes}
    ti = config.textual_inversion
    stage_one, stage_two, loaded, embeddings = {}, {}, {}, {}
    for name, images in classes.items():
        stage_one[name] = {
            "model": model.fingerprint,
            "supports": [[im.path.name, _file_digest(im.path)] for im in images],
            "resolution": list(size),
            "seed": config.seed,
            "token": tokens[name],
            "textual_inversion": dataclasses.asdict(ti),
        }
        stage_two[name] = {
            **stage_one[name],
            "steps": config.steps,
            "null_text": dataclasses.asdict(config.null_text),
        }
        folder = directory / name
        if resume and Specialization.exists(folder):
            spec = Specialization.load(folder)
            if spec.settings == stage_two[name]:
                loaded[name] = spec
                continue
        if resume and (folder / "textual_inversion.json").is_file():
            emb = TokenEmbedding.load(folder)
            if emb.settings == stage_one[name]:
                embeddings[name] = emb
    embeddings.update({n: s.token_embedding for n, s in loaded.items()})
    to_train = _group(directory, "textual-inversion", classes, embeddings)
    to_invert = _group(directory, "null-text", classes, loaded)
    latents = {
        name: _encode_supports(model, classes[name], size)
        for name in tqdm(
            dict.fromkeys(to_train + to_invert),
            desc="encoding supports",
            disable=not progress,
            leave=False,
        )
    }
    if to_train:
        learned = textual_inversion.train(
            model,
            [tokens[n] for n in to_train],
            [latents[n] for n in to_train],
            ti,
            config.seed,
            progress,
        )
        for name, vector in zip(to_train, learned):
            if name not in embeddings:
                prompt = ti.template.format(tokens[name])
                embeddings[name] = TokenEmbedding(tokens[name], prompt, vector, stage_one[name])
                embeddings[name].save(directory / name)
        _group_done(directory, "textual-inversion")
    done = [embeddings[n] for n in classes]
    textual_inversion.set_embeddings(
        model, [e.token for e in done], torch.stack([e.embedding for e in done])
    )

    if to_invert:
        z0 = torch.cat([latents[n] for n in to_invert])
        with torch.no_grad():
            prompts = model.encode_text([embeddings[n].prompt for n in to_invert])
        counts = [len(latents[n]) for n in to_invert]
        cond = prompts.repeat_interleave(torch.tensor(counts, device=model.device), 0)
        result = null_text.invert(model, z0, cond, config.steps, config.null_text, progress)
        for name, zT, nulls in zip(
            to_invert, result.latents_T.split(counts), result.null_embeddings.split(counts, 1)
        ):
            if name in loaded:
                continue
            loaded[name] = Specialization(
                name=name,
                token_embedding=embeddings[name],
                supports=[im.path.name for im in classes[name]],
                support_sizes=[im.size for im in classes[name]],
                latents_T=zT.cpu(),
                null_embeddings=nulls.transpose(0, 1).contiguous().cpu(),
                settings=stage_two[name],
            )
            loaded[name].save(directory / name)
        _group_done(directory, "null-text")
    return {name: loaded[name] for name in classes}


def _group(directory: Path, stage: str, classes: dict, done: dict) -> list[str]:
    """The classes a batched stage computes together: those not `done`, or, if a run was killed
    while saving this stage's results class by class, the whole group that run computed. A
    batch's rounding depends on what is in it, so computing the same group again gives every
    class the numbers an uninterrupted run gives it. The group is recorded until it is saved."""
    record = directory / f".{stage}-group.json"
    needed = [n for n in classes if n not in done]
    if not needed:
        return []
    if record.is_file():
        group = read_json_object(record, "group record").get("classes")
        if isinstance(group, list) and set(needed) <= set(group) <= set(classes):
            return group
    write_json(record, {"classes": needed})
    return needed


def _group_done(directory: Path, stage: str) -> None:
    (directory / f".{stage}-group.json").unlink(missing_ok=True)


@dataclass
class ImageDraw:
    """What one image is made from; a function of (seed, class) alone."""

    support: int  # index of the support whose inversion it starts from
    alpha: float
    noise: torch.Tensor  # (C, h, w)


def draw(seed: int, spec: Specialization, config: GenerateConfig) -> ImageDraw:
    g = torch.Generator().manual_seed(seed)
    k = int(torch.randint(len(spec.supports), (1,), generator=g))
    alpha = float(torch.rand((), generator=g)) if config.random_alpha else config.alpha
    return ImageDraw(k, alpha, torch.randn(spec.latents_T.shape[1:], generator=g))


def plan_images(specs: dict[str, Specialization], config: GenerateConfig) -> list[dict]:
    """Manifest entries for every image: its path, class, source support, alpha and seed."""
    entries = []
    for name, spec in specs.items():
        for i in range(config.num):
            seed = _image_seed(config.seed, name, i)
            d = draw(seed, spec, config)
            tint = config.generator == "tint"
            entries.append(
                {
                    "path": f"images/{name}/{i:05d}.png",
                    "class": name,
                    "support": spec.supports[d.support] if tint else None,
                    "alpha": d.alpha if tint else None,
                    "seed": seed,
                }
            )
    return entries


@torch.no_grad()
def render(
    model: DiffusionModel,
    specs: dict[str, Specialization],
    entries: list[dict],
    config: GenerateConfig,
) -> list:
    """Generate the images of `entries` (from `plan_images`) as one batch; returns PIL images,
    each at the size of its support (for "ti", the class's most common support size)."""
    draws = [draw(e["seed"], specs[e["class"]], config) for e in entries]
    specs_of = [specs[e["class"]] for e in entries]
    noise = torch.stack([d.noise for d in draws]).to(model.device)
    cond = model.encode_text([s.token_embedding.prompt for s in specs_of])
    if config.generator == "tint":
        zT = torch.stack([s.latents_T[d.support] for s, d in zip(specs_of, draws)])
        z = blend_noise(zT.to(model.device), noise, torch.tensor([d.alpha for d in draws]))
        uncond = torch.stack([s.null_embeddings[d.support] for s, d in zip(specs_of, draws)], 1).to(
            model.device
        )  # (N, B, L, D)
        sizes = [s.support_sizes[d.support] for s, d in zip(specs_of, draws)]
    else:
        z = noise
        uncond = model.encode_text([""]).expand(len(entries), -1, -1)
        sizes = [Counter(s.support_sizes).most_common(1)[0][0] for s in specs_of]
    z0 = ddim.sample(model, z, cond, uncond, config.steps, config.guidance)
    pixels = model.decode_latents(z0)
    return [to_image(resize(x[None], (h, w))[0]) for x, (w, h) in zip(pixels, sizes)]


@torch.no_grad()
def reconstruct(model: DiffusionModel, spec: Specialization, config: GenerateConfig):
    """Every support of a class regenerated at alpha 0 from its inverted latent and null-text
    embeddings: (K, 3, H, W) in [0, 1] at the working size."""
    prompt = model.encode_text([spec.token_embedding.prompt] * len(spec.supports))
    nulls = spec.null_embeddings.transpose(0, 1).to(model.device)  # (N, K, L, D)
    z0 = ddim.sample(
        model, spec.latents_T.to(model.device), prompt, nulls, config.steps, config.guidance
    )
    return model.decode_latents(z0)


def generate(
    support_dir: str | Path | dict[str, list[LabelledImage]],
    out: str | Path,
    model: DiffusionModel,
    config: GenerateConfig,
    resume: bool = False,
    progress: bool = True,
    specialization_dir: str | Path | None = None,
) -> dict:
    """Specialise to every class of `support_dir` (a class-folder tree, or its classes already
    read) and write `config.num` images per class to `out`; returns the manifest. All input is
    checked before anything is written. Specialisations go to `specialization_dir` (default
    OUT/specialization): runs that share one reuse each other's finished work."""
    config.validate()
    out = Path(out)
    classes = support_dir if isinstance(support_dir, dict) else load_class_folders(support_dir)
    _working_size(model, config)
    run = {
        "model": model.fingerprint["path"],
        "generator": config.generator,
        "alpha": None if config.random_alpha else config.alpha,
        "random_alpha": config.random_alpha,
        "seed": config.seed,
        "steps": config.steps,
        "guidance": config.guidance,
    }
    with RunFolder(out, run, resume):
        specialization_dir = Path(specialization_dir or out / "specialization")
        specs = specialize(model, classes, config, specialization_dir, resume, progress)
        entries = plan_images(specs, config)
        # Images are made in fixed batches of the plan, so a resumed run renders exactly the
        # batches an uninterrupted one does (a batch's rounding depends on what is in it).
        batches = [entries[i : i + config.batch] for i in range(0, len(entries), config.batch)]
        todo = [b for b in batches if not all((out / e["path"]).is_file() for e in b)]
        fitting = FittingBatch(config.batch, "generation")
        with tqdm(total=len(entries), desc="generating", unit="img", disable=not progress) as bar:
            bar.update(len(entries) - sum(len(b) for b in todo))
            for batch in todo:
                for part, images in fitting.slices(
                    len(batch), lambda p, b=batch: render(model, specs, b[p], config)
                ):
                    for entry, image in zip(batch[part], images):
                        if not (out / entry["path"]).is_file():
                            write_png(out / entry["path"], image)
                    bar.update(len(images))
        manifest = _manifest(specs, entries, run, config, model)
        write_json(out / "manifest.json", manifest)
    return manifest


def _manifest(specs, entries, run, config, model) -> dict:
    return {
        "images": entries,
        "classes": {
            name: {
                "token": s.token_embedding.token,
                "prompt": s.token_embedding.prompt,
                "supports": s.supports,
            }
            for name, s in specs.items()
        },
        "settings": {**run, "num": config.num, "resolution": list(_working_size(model, config))},
    }
