"""TINT in memory: specialise a model to classes (textual inversion, then null-text inversion of
each support) and render images from the specialisations. Nothing here touches the disk;
`tint.diffusion.pipeline` adds resuming from disk and the manifest.

Each stage takes `reference`: False (the default) batches all classes of a call into one
textual-inversion loop, all supports into one null-text inversion and many images into one
sampling batch; True does the same work the way the original code does it, one class, one
support and one image at a time. `tint speed` times both ways through these very functions."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import Counter
from dataclasses import dataclass

import torch

from tint.config import SettingError, group, setting
from tint.data.images import LabelledImage, resize, to_image, to_tensor
from tint.diffusion import ddim, null_text, textual_inversion
from tint.diffusion.lora import LoraConfig
from tint.diffusion.model import DiffusionModel
from tint.diffusion.sampler import blend_noise, blend_nulls, slerp
from tint.diffusion.specialization import Specialization, TokenEmbedding
from tint.diffusion.upscale import RESIZE, enlarged
from tint.io import seeds
from tint.io.hardware import PRECISIONS, autocast, resolved_precision

GENERATORS = ("tint", "ti", "lora")
# The settings that draw something for each image (see `draw`): no part of a specialisation.
DRAWN_PER_IMAGE = (
    "random_alpha",
    "alpha_range",
    "support_mix",
    "guidance_range",
    "templates",
    "boundary",
)
# The paper's textual inversion, and the default: fewer, larger-batch steps (README, "Presets").
PRESETS = {
    "fast": textual_inversion.TextualInversionConfig(),
    "reference": textual_inversion.TextualInversionConfig(steps=5000, batch=1, lr=1e-3),
}


@dataclass
class GenerateConfig:
    num: int = setting(10, "images per class", minimum=1)
    generator: str = setting(
        "tint",
        "tint: from each support's inversion; ti: textual inversion only, from fresh noise; "
        "lora: as ti, through a UNet with adapters trained on the supports (peft)",
        choices=GENERATORS,
    )
    alpha: float = setting(
        0.5, "noise blend: 0 reproduces a support, 1 is fresh noise", minimum=0, maximum=1
    )
    random_alpha: bool = setting(False, "draw alpha uniformly from [0, 1] for each image")
    alpha_range: tuple[float, float] | None = setting(
        None, "draw alpha for each image uniformly from LO,HI", minimum=0, maximum=1
    )
    support_mix: float | None = setting(
        None,
        "blend each image's support with another support of its class, the other's share drawn "
        "from [0, MIX] for each image (slerp of the inverted latents, mean of the null-text "
        "embeddings); a class of one support is left as it is",
        minimum=0,
        maximum=1,
    )
    guidance_range: tuple[float, float] | None = setting(
        None, "draw the guidance of each image uniformly from LO,HI", minimum=0
    )
    templates: list[str] | None = setting(
        None,
        "prompt templates ({} for the class token) drawn from for each image, beside "
        "ti.template, the one the token was learnt with",
    )
    boundary: float | None = setting(
        None,
        "move each image's prompt embedding towards its class's partner class's (the partners "
        "are given: the boundary source's most confusable class) by a share drawn from [0, "
        "BOUNDARY]",
        minimum=0,
        maximum=1,
    )
    null_blend: float = setting(
        0.5,
        "share of the way from the support's null-text embeddings to the empty prompt's, "
        "times alpha: 0 keeps them at any alpha (the paper's rule), 1 reaches the empty prompt "
        "at alpha 1",
        minimum=0,
        maximum=1,
    )
    ddim_steps: int = setting(
        25, "DDIM steps, of null-text inversion and sampling alike", minimum=1
    )
    guidance: float = setting(7.5, "classifier-free guidance scale", minimum=0)
    seed: int = setting(0, "random seed")
    resolution: tuple[int, int] | None = setting(
        None,
        "H W the model works at; supports are resized to it, images back to their support's "
        "size (default: the model's native size)",
        minimum=1,
    )
    batch: int = setting(16, "images per generation batch", minimum=1)
    upscale: str = setting(
        RESIZE,
        "supports smaller than the working size, before inversion: resize (antialiased "
        "bilinear), bicubic, or a diffusers upscaler's folder or hub id "
        "(StableDiffusionUpscalePipeline, latent upscaler)",
    )
    upscale_steps: int = setting(20, "the upscaler's denoising steps", minimum=1)
    precision: str = setting(
        "auto",
        "the arithmetic of textual inversion, null-text inversion and generation (UNet, text "
        "encoder, VAE): bfloat16 autocast or float32; auto is bfloat16 where the hardware has "
        "fast bfloat16 (a GPU that supports it; on a CPU with AMX or AVX512-BF16 kernels in "
        "use, for generation only) and float32 elsewhere; losses, optimiser state and latents "
        "stay float32",
        choices=PRECISIONS,
    )
    classes_per_shard: int = setting(
        8,
        "classes specialised together in one batch and rendered together; the unit of work "
        "spread over --ray's workers",
        minimum=1,
    )
    ti: textual_inversion.TextualInversionConfig = group(
        textual_inversion.TextualInversionConfig, "textual inversion (the fast preset's)"
    )
    null_text: null_text.NullTextConfig = group(null_text.NullTextConfig, "null-text inversion")
    lora: LoraConfig = group(LoraConfig, "the lora generator's adapters")

    def validate(self) -> None:
        if "{}" not in self.ti.template:
            raise SettingError(
                "ti.template", f"must contain {{}} for the class token: {self.ti.template!r}"
            )
        for template in self.templates or []:
            if "{}" not in template:
                raise SettingError(
                    "templates", f"must contain {{}} for the class token: {template!r}"
                )
        for name in ("alpha_range", "guidance_range"):
            low, high = getattr(self, name) or (0, 0)
            if low > high:
                raise SettingError(name, f"{low},{high}: the first must not be above the second")


def class_token(name: str, taken: set[str]) -> str:
    """A new token for a class: '<name>' with the name lower-cased and spaces as dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "class"
    token, n = f"<{slug}>", 1
    while token in taken:
        n += 1
        token = f"<{slug}-{n}>"
    taken.add(token)
    return token


def class_tokens(model: DiffusionModel, names) -> dict[str, str]:
    """One new token per class. Tokens an earlier call added are not taken: a class keeps its
    token from call to call."""
    vocab = model.tokenizer
    taken = set(vocab.get_vocab()) - set(vocab.get_added_vocab()) | set(vocab.all_special_tokens)
    return {name: class_token(name, taken) for name in names}


def working_size(model: DiffusionModel, config: GenerateConfig) -> tuple[int, int]:
    size = config.resolution or (model.native_resolution, model.native_resolution)
    model.check_resolution(size)
    return size


def encode_supports(
    model, images: list[LabelledImage], size, config: GenerateConfig
) -> torch.Tensor:
    """Supports (small ones made larger as `config.upscale` says) to (K, C, h, w) latents at
    the working size."""
    made = enlarged(images, size, config.upscale, config.upscale_steps, config.seed)
    x = torch.stack([to_tensor(image, size) for image in made])
    return torch.cat([model.encode_images(chunk) for chunk in x.split(16)])


def _latents(model, classes: dict[str, list[LabelledImage]], config) -> dict[str, torch.Tensor]:
    size = working_size(model, config)
    return {n: encode_supports(model, images, size, config) for n, images in classes.items()}


def stage_settings(model, images: list[LabelledImage], token: str, config: GenerateConfig):
    """What each stage of a class's specialisation depends on: a saved stage is reused only
    where these are equal. Returns (textual inversion's, null-text inversion's)."""
    first = {
        "model": model.fingerprint,
        "supports": [[im.path.name, _digest(im)] for im in images],
        "resolution": list(working_size(model, config)),
        "seed": config.seed,
        "token": token,
        "textual_inversion": dataclasses.asdict(config.ti),
        "precision": arithmetic(model, config, stage="inversion"),
    }
    if config.upscale != RESIZE:  # what small supports were made larger with
        first["upscale"] = [config.upscale, config.upscale_steps]
    second = {
        **first,
        "steps": config.ddim_steps,
        "null_text": {**dataclasses.asdict(config.null_text), "guidance": config.guidance},
    }
    return first, second


def arithmetic(
    model, config: GenerateConfig, reference: bool = False, stage: str = "generation"
) -> str:
    """What the diffusion model computes in for `config`'s `stage` ("generation" or
    "inversion") on its device: "bfloat16" or "float32" (always float32 the reference way, as
    the original code did). "auto" leaves the inversions in float32 on a CPU: their small
    batches and backward passes ran slower in bfloat16 on an AVX512-BF16 CPU
    (docs/PERFORMANCE.md)."""
    on_cpu = model.device.type == "cpu"
    if reference or (config.precision == "auto" and stage == "inversion" and on_cpu):
        return "float32"
    return resolved_precision(config.precision, model.device)


def _digest(image: LabelledImage) -> str:
    """The support's pixels, so that a saved stage is reused for the same image only."""
    w, h = image.size
    return hashlib.sha256(f"{w}x{h}".encode() + image.image.tobytes()).hexdigest()[:16]


def learn_tokens(
    model: DiffusionModel,
    classes: dict[str, list[LabelledImage]],
    tokens: dict[str, str],
    config: GenerateConfig,
    latents: dict[str, torch.Tensor] | None = None,
    *,
    reference: bool = False,
    progress: bool = True,
) -> dict[str, TokenEmbedding]:
    """Textual inversion of every class given, all in one batched loop (or, `reference`, one
    class after another). The tokens are installed in the model."""
    latents, names = latents or _latents(model, classes, config), list(classes)
    with autocast(model.device, arithmetic(model, config, reference, "inversion")):
        learned = _learn(model, classes, tokens, config, latents, reference, progress)
    return {
        n: TokenEmbedding(
            tokens[n],
            config.ti.template.format(tokens[n]),
            vector,
            stage_settings(model, classes[n], tokens[n], config)[0],
        )
        for n, vector in zip(names, learned)
    }


def _learn(model, classes, tokens, config, latents, reference, progress) -> torch.Tensor:
    names = list(classes)
    if reference:
        return torch.cat(
            [
                textual_inversion.train(
                    model, [tokens[n]], [latents[n]], config.ti, config.seed, progress=False
                )
                for n in names
            ]
        )
    return textual_inversion.train(
        model,
        [tokens[n] for n in names],
        [latents[n] for n in names],
        config.ti,
        config.seed,
        progress=progress,
    )


def invert_supports(
    model: DiffusionModel,
    classes: dict[str, list[LabelledImage]],
    embeddings: dict[str, TokenEmbedding],
    config: GenerateConfig,
    latents: dict[str, torch.Tensor] | None = None,
    *,
    reference: bool = False,
    progress: bool = True,
) -> dict[str, Specialization]:
    """Null-text inversion of every support of every class given, as one batch (or,
    `reference`, one support after another). The classes' tokens must be installed."""
    latents, names = latents or _latents(model, classes, config), list(classes)
    z0 = torch.cat([latents[n] for n in names])
    counts = [len(latents[n]) for n in names]
    nt, steps = config.null_text, config.ddim_steps
    with autocast(model.device, arithmetic(model, config, reference, "inversion")):
        with torch.no_grad():
            prompts = model.encode_text([embeddings[n].prompt for n in names])
        cond = prompts.repeat_interleave(torch.tensor(counts, device=model.device), 0)
        if reference:
            parts = [
                null_text.invert(model, z0[i : i + 1], cond[i : i + 1], steps, nt, config.guidance)
                for i in range(len(z0))
            ]
            zT = torch.cat([p.latents_T for p in parts])
            nulls = torch.cat([p.null_embeddings for p in parts], 1)
        else:
            inverted = null_text.invert(
                model, z0, cond, steps, nt, config.guidance, progress=progress
            )
            zT, nulls = inverted.latents_T, inverted.null_embeddings
    specs = {}
    for n, z, e in zip(names, zT.split(counts), nulls.split(counts, 1)):
        specs[n] = Specialization(
            name=n,
            token_embedding=embeddings[n],
            supports=[im.path.name for im in classes[n]],
            support_sizes=[im.size for im in classes[n]],
            latents_T=z.cpu(),
            null_embeddings=e.transpose(0, 1).contiguous().cpu(),
            settings=stage_settings(model, classes[n], embeddings[n].token, config)[1],
        )
    return specs


def specialize(
    model: DiffusionModel,
    classes: dict[str, list[LabelledImage]],
    config: GenerateConfig,
    *,
    reference: bool = False,
    progress: bool = True,
) -> dict[str, Specialization]:
    """TINT-specialise `model` to every class: textual inversion, then null-text inversion."""
    config.validate()
    latents = _latents(model, classes, config)
    tokens = class_tokens(model, classes)
    embeddings = learn_tokens(
        model, classes, tokens, config, latents, reference=reference, progress=progress
    )
    return invert_supports(
        model, classes, embeddings, config, latents, reference=reference, progress=progress
    )


@dataclass
class ImageDraw:
    """What one image is made from; a function of (seed, class) alone. Draws that a setting
    turns on come after the others, so that an image made without it is the same as before."""

    support: int  # index of the support whose inversion it starts from
    alpha: float
    noise: torch.Tensor  # (C, h, w)
    other: int | None = None  # support_mix: the second support, and its share
    mix: float = 0.0
    guidance: float | None = None  # guidance_range: this image's guidance
    template: str | None = None  # templates: this image's prompt template
    toward: float = 0.0  # boundary: the share of the way to the partner class's prompt


def draw(seed: int, spec: Specialization, config: GenerateConfig) -> ImageDraw:
    g = torch.Generator().manual_seed(seed)

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=g))

    k = int(torch.randint(len(spec.supports), (1,), generator=g))
    alpha = config.alpha
    if config.random_alpha or config.alpha_range:
        alpha = uniform(*(config.alpha_range or (0.0, 1.0)))
    d = ImageDraw(k, alpha, torch.randn(spec.latents_T.shape[1:], generator=g))
    if config.support_mix is not None and len(spec.supports) > 1:
        d.other = (k + 1 + int(torch.randint(len(spec.supports) - 1, (1,), generator=g))) % len(
            spec.supports
        )
        d.mix = uniform(0.0, config.support_mix)
    if config.guidance_range is not None:
        d.guidance = uniform(*config.guidance_range)
    if config.templates is not None:
        choices = [config.ti.template, *config.templates]
        d.template = choices[int(torch.randint(len(choices), (1,), generator=g))]
    if config.boundary is not None:
        d.toward = uniform(0.0, config.boundary)
    return d


def plan_images(
    specs: dict[str, Specialization],
    config: GenerateConfig,
    partners: dict[str, str] | None = None,
) -> list[dict]:
    """Manifest entries for every image: its path, class, source support, alpha and seed (and
    what the settings that vary an image drew for it). Image i of class c has the seed (seed, c,
    i): the same in any batch, run or process. With `config.boundary`, `partners` names each
    class's partner class."""
    if config.boundary is not None and partners is None:
        raise SettingError("boundary", "needs a partner for each class (the boundary source)")
    entries = []
    for name, spec in specs.items():
        for i in range(config.num):
            seed = seeds.seed_of(config.seed, name, i, width=4)
            d = draw(seed, spec, config)
            tint = config.generator == "tint"
            entry = {
                "path": f"images/{name}/{i:05d}.png",
                "class": name,
                "support": spec.supports[d.support] if tint else None,
                "alpha": d.alpha if tint else None,
                "seed": seed,
            }
            if tint and d.other is not None:
                entry |= {"mixed_with": spec.supports[d.other], "mix": d.mix}
            if d.guidance is not None:
                entry["guidance"] = d.guidance
            if d.template is not None:
                entry["prompt"] = prompt(spec, d)
            if config.boundary is not None:
                entry |= {"partner": partners[name], "toward": d.toward}
            entries.append(entry)
    return entries


def prompt(spec: Specialization, d: ImageDraw) -> str:
    """An image's prompt: its template (see `templates`) with the class's token, or the class's
    own prompt."""
    if d.template is None:
        return spec.token_embedding.prompt
    return d.template.format(spec.token_embedding.token)


@torch.no_grad()
def render(
    model: DiffusionModel,
    specs: dict[str, Specialization],
    entries: list[dict],
    config: GenerateConfig,
    *,
    reference: bool = False,
) -> list:
    """Generate the images of `entries` (from `plan_images`) as one batch (or, `reference`, one
    at a time); returns PIL images, each at the size of its support (for "ti", the class's most
    common support size; "lora" renders as "ti" does, `model` carrying the adapters)."""
    if reference and len(entries) > 1:
        return [
            image for e in entries for image in render(model, specs, [e], config, reference=True)
        ]
    draws = [draw(e["seed"], specs[e["class"]], config) for e in entries]
    specs_of = [specs[e["class"]] for e in entries]
    noise = torch.stack([d.noise for d in draws]).to(model.device)
    with autocast(model.device, arithmetic(model, config, reference)):
        cond = model.encode_text([prompt(s, d) for s, d in zip(specs_of, draws)])
        if config.boundary is not None:  # each prompt moved towards its partner class's
            partner = model.encode_text(
                [prompt(specs[e["partner"]], d) for e, d in zip(entries, draws)]
            )
            toward = torch.tensor([d.toward for d in draws]).to(cond).reshape(-1, 1, 1)
            cond = cond + toward * (partner - cond)
        if config.generator == "tint":
            zT = torch.stack([s.latents_T[d.support] for s, d in zip(specs_of, draws)])
            nulls = torch.stack([s.null_embeddings[d.support] for s, d in zip(specs_of, draws)], 1)
            if config.support_mix is not None:  # a second support's share, where a class has one
                other = [d.support if d.other is None else d.other for d in draws]
                mix = torch.tensor([d.mix for d in draws])
                zT = slerp(zT, torch.stack([s.latents_T[k] for s, k in zip(specs_of, other)]), mix)
                second = torch.stack([s.null_embeddings[k] for s, k in zip(specs_of, other)], 1)
                nulls = nulls + mix.reshape(1, -1, 1, 1) * (second - nulls)
            alpha = torch.tensor([d.alpha for d in draws])
            z = blend_noise(zT.to(model.device), noise, alpha)
            empty = model.encode_text([""])
            uncond = blend_nulls(nulls.to(model.device), empty, config.null_blend * alpha)
            sizes = [s.support_sizes[d.support] for s, d in zip(specs_of, draws)]
        else:
            z = noise
            uncond = model.encode_text([""]).expand(len(entries), -1, -1)
            sizes = [Counter(s.support_sizes).most_common(1)[0][0] for s in specs_of]
        guidance = config.guidance
        if config.guidance_range is not None:
            guidance = torch.tensor([d.guidance for d in draws]).to(z).reshape(-1, 1, 1, 1)
        z0 = ddim.sample(model, z, cond, uncond, config.ddim_steps, guidance)
        pixels = model.decode_latents(z0)
    return [to_image(resize(x[None], (h, w))[0]) for x, (w, h) in zip(pixels, sizes)]


@torch.no_grad()
def reconstruct(model: DiffusionModel, spec: Specialization, config: GenerateConfig):
    """Every support of a class regenerated at alpha 0 from its inverted latent and null-text
    embeddings: (K, 3, H, W) in [0, 1] at the working size."""
    nulls = spec.null_embeddings.transpose(0, 1).to(model.device)  # (N, K, L, D)
    with autocast(model.device, arithmetic(model, config)):
        prompt = model.encode_text([spec.token_embedding.prompt] * len(spec.supports))
        z0 = ddim.sample(
            model,
            spec.latents_T.to(model.device),
            prompt,
            nulls,
            config.ddim_steps,
            config.guidance,
        )
        return model.decode_latents(z0)
