"""The default world: the glyph benchmark and the recipes that train its models on the base
classes only. The trained models ship in tint/assets and are every command's defaults."""

from __future__ import annotations

from pathlib import Path

import torch

from tint.data import glyphs
from tint.diffusion.architectures import TinyArchitecture
from tint.diffusion.training import PretrainConfig
from tint.models.classifier_training import ClassifierTraining
from tint.models.resnet import ResNetConfig
from tint.models.students import StudentConfig, check_arch

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_MODEL = ASSETS / "glyph-diffusion"
DEFAULT_TEACHER = ASSETS / "glyph-teacher"


def diffusion_architecture() -> TinyArchitecture:
    """32x32x3 images, 8x8x4 latents; one word per base class in the tokenizer."""
    return TinyArchitecture(
        image_size=glyphs.SIZE,
        vae_channels=(32, 64, 64),
        unet_channels=(64, 128),
        attention_head_dim=8,
        text_width=128,
        text_layers=3,
        text_heads=4,
        max_prompt_tokens=16,
        # Class words first: BPE merges rank in this order, so each class word stays one token.
        words=[*(g.word for g in glyphs.split("base")), "a", "drawing", "of", "photo", "object"],
    )


DIFFUSION_TRAINING = PretrainConfig(
    vae_steps=1500,
    denoiser_steps=60000,
    batch=96,
    vae_batch=32,
    vae_lr=1e-3,
    lr=1e-3,
    warmup=500,
    caption_dropout=0.1,
    ema_decay=0.999,
    checkpoint_every=250,
    reuse=4,
)


def draw_base(n: int, generator: torch.Generator) -> tuple[torch.Tensor, list[str]]:
    """Fresh random instances of random base classes, captioned "a drawing of a <word>"."""
    base = glyphs.split("base")
    picks = torch.randint(len(base), (n,), generator=generator).tolist()
    chosen = [base[i] for i in picks]
    return glyphs.render(chosen, generator), [glyphs.caption(g) for g in chosen]


def teacher_network() -> ResNetConfig:
    """The base teacher: a pre-activation ResNet (32-64-128, two blocks each, 0.7M weights)
    over the base classes; its pooled features stand in for a foundation model's."""
    return ResNetConfig(
        widths=(32, 64, 128),
        blocks=(2, 2, 2),
        num_classes=len(glyphs.split("base")),
        classes=[g.name for g in glyphs.split("base")],
        input_size=(glyphs.SIZE, glyphs.SIZE),
    )


TEACHER_TRAINING = ClassifierTraining(steps=8000, batch=64, lr=2e-3, reuse=4)


def student_network(arch: str, width: float = 1.0) -> StudentConfig:
    """A student over the base classes, to be pre-trained and then distilled from."""
    check_arch(arch)
    return StudentConfig(
        arch=arch,
        width=width,
        classes=[g.name for g in glyphs.split("base")],
        input_size=(glyphs.SIZE, glyphs.SIZE),
    )


STUDENT_TRAINING = ClassifierTraining(steps=3000, batch=64, lr=2e-3, reuse=4)


def draw_base_labelled(n: int, generator: torch.Generator) -> tuple[torch.Tensor, list[int]]:
    """Fresh random instances of random base classes with their class indices."""
    base = glyphs.split("base")
    picks = torch.randint(len(base), (n,), generator=generator).tolist()
    return glyphs.render([base[i] for i in picks], generator), picks


def base_held_out(per_class: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The benchmark's first instances of every base class (never drawn in training, which
    renders fresh random ones), with their class indices."""
    base = glyphs.split("base")
    images = torch.cat([glyphs.benchmark_instances(g, per_class) for g in base])
    return images, torch.arange(len(base)).repeat_interleave(per_class)
