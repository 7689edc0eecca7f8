"""The default world: the glyph benchmark and the recipes that train its models on the base
classes only. The trained models ship in tint/assets and are every command's defaults."""

from __future__ import annotations

from pathlib import Path

import torch

from tint.data import glyphs
from tint.diffusion.architectures import TinyArchitecture
from tint.diffusion.training import PretrainConfig

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
        words=["a", "drawing", "of", "photo", "object", *(g.word for g in glyphs.split("base"))],
    )


DIFFUSION_TRAINING = PretrainConfig(
    vae_steps=1000,
    denoiser_steps=60000,
    batch=96,
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
