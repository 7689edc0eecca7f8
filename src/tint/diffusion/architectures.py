"""Building Stable-Diffusion-format models from scratch, saved as standard diffusers directories:
small ones with their own word-level CLIP tokenizer (for tests and the default world)."""

from __future__ import annotations

import json
import string
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from tint.config import setting

# CLIP's byte-level BPE sees a word as its characters, the last one marked with "</w>".
_SYMBOLS = string.ascii_lowercase + string.digits


@dataclass
class TinyArchitecture:
    image_size: int = setting(32, "pixels, square", minimum=8)
    vae_channels: tuple[int, ...] = setting(
        (32, 64, 64), "VAE channels per level; each level after the first halves", minimum=1
    )
    latent_channels: int = setting(4, "channels of a latent", minimum=1)
    unet_channels: tuple[int, ...] = setting((64, 128), "UNet channels per level", minimum=1)
    attention_head_dim: int = setting(8, "channels per attention head", minimum=1)
    text_width: int = setting(128, "the text encoder's width", minimum=1)
    text_layers: int = setting(3, "the text encoder's layers", minimum=1)
    text_heads: int = setting(4, "the text encoder's attention heads", minimum=1)
    max_prompt_tokens: int = setting(16, "tokens of a prompt", minimum=2)
    words: list[str] = setting(
        factory=lambda: ["a", "photo", "drawing", "of", "object"],
        help="the tokenizer's words, each one token (listed first, first merged)",
    )


def write_tokenizer(directory: Path, words: list[str], max_length: int):
    """A CLIP tokenizer whose vocabulary is the alphabet plus `words`, built by merging each word
    left to right. Merges rank in the order of `words`: a word may split into several tokens if
    an earlier word's merge takes precedence, so list the words that must stay whole first."""
    from transformers import CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in _SYMBOLS:
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    merges = []
    for word in dict.fromkeys(w.lower() for w in words):
        if not word or set(word) - set(_SYMBOLS):
            raise ValueError(f"tokenizer words are lower-case letters and digits: {word!r}")
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        current = pieces[0]
        for piece in pieces[1:]:
            if current + piece not in vocab:
                merges.append(f"{current} {piece}")
                vocab[current + piece] = len(vocab)
            current += piece
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer(
        str(directory / "vocab.json"), str(directory / "merges.txt"), model_max_length=max_length
    )
    tokenizer.save_pretrained(directory)
    return tokenizer


def sd_scheduler():
    """Stable Diffusion 1.5's noise schedule (scaled linear betas) with DDIM's trailing spacing."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        timestep_spacing="trailing",
    )


def _vae(channels: tuple[int, ...], latent_channels: int, **config):
    """A small randomly initialised AutoencoderKL: one block per level, each level after the
    first halving the side."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=channels,
        down_block_types=("DownEncoderBlock2D",) * len(channels),
        up_block_types=("UpDecoderBlock2D",) * len(channels),
        latent_channels=latent_channels,
        layers_per_block=1,
        norm_num_groups=min(32, min(channels) // 2),
        **config,
    )


def build_tiny(directory: str | Path, arch: TinyArchitecture, seed: int = 0) -> Path:
    """Write a randomly initialised SD-format model of architecture `arch` to `directory`."""
    from diffusers import (
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    directory = Path(directory)
    torch.manual_seed(seed)
    tokenizer = write_tokenizer(directory / "tokenizer", arch.words, arch.max_prompt_tokens)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=arch.text_width,
            intermediate_size=4 * arch.text_width,
            num_attention_heads=arch.text_heads,
            num_hidden_layers=arch.text_layers,
            max_position_embeddings=arch.max_prompt_tokens,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    halvings = len(arch.vae_channels) - 1
    vae = _vae(arch.vae_channels, arch.latent_channels, sample_size=arch.image_size)
    levels = len(arch.unet_channels)
    unet = UNet2DConditionModel(
        sample_size=arch.image_size // 2**halvings,
        in_channels=arch.latent_channels,
        out_channels=arch.latent_channels,
        block_out_channels=arch.unet_channels,
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D",) * levels,
        up_block_types=("CrossAttnUpBlock2D",) * levels,
        cross_attention_dim=arch.text_width,
        attention_head_dim=arch.attention_head_dim,
        norm_num_groups=min(32, min(arch.unet_channels) // 2),
    )
    scheduler = sd_scheduler()
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(directory)
    (directory / "architecture.json").write_text(json.dumps(asdict(arch), indent=2))
    return directory


@dataclass
class UpscalerArchitecture:
    vae_channels: tuple[int, ...] = setting(
        (32, 64),
        "VAE channels per level; each level after the first doubles the side it upscales by",
        minimum=1,
    )
    latent_channels: int = setting(4, "channels of a latent", minimum=1)
    unet_channels: tuple[int, ...] = setting((32, 64), "UNet channels per level", minimum=1)
    attention_head_dim: int = setting(8, "channels per attention head", minimum=1)
    max_noise_level: int = setting(
        350,
        "the most noise put on the small image, in training and as the pipeline allows",
        minimum=0,
    )


# StableDiffusionUpscalePipeline decodes latents divided by this, whatever the VAE's config says.
UPSCALER_LATENT_SCALE = 0.08333


def build_upscaler(
    directory: str | Path, arch: UpscalerArchitecture, parts: str | Path, seed: int = 0
) -> Path:
    """Write a randomly initialised StableDiffusionUpscalePipeline of architecture `arch` to
    `directory`: the UNet sees the latents beside the small image, at its size, and the VAE
    decodes them to a side 2**(levels - 1) times larger. Its text encoder, tokenizer and
    scheduler are those of the diffusion model in `parts` (it is prompted with "")."""
    from diffusers import (
        DDPMScheduler,
        StableDiffusionPipeline,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )

    directory = Path(directory)
    source = StableDiffusionPipeline.from_pretrained(parts, local_files_only=True)
    torch.manual_seed(seed)
    vae = _vae(arch.vae_channels, arch.latent_channels, scaling_factor=UPSCALER_LATENT_SCALE)
    levels = len(arch.unet_channels)
    unet = UNet2DConditionModel(
        in_channels=arch.latent_channels + 3,
        out_channels=arch.latent_channels,
        block_out_channels=arch.unet_channels,
        layers_per_block=1,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",),
        cross_attention_dim=source.text_encoder.config.hidden_size,
        attention_head_dim=arch.attention_head_dim,
        norm_num_groups=min(32, min(arch.unet_channels) // 2),
        num_class_embeds=arch.max_noise_level + 1,  # the small image's noise level
    )
    pipe = StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=source.text_encoder,
        tokenizer=source.tokenizer,
        unet=unet,
        low_res_scheduler=DDPMScheduler(),
        scheduler=source.scheduler,
        max_noise_level=arch.max_noise_level,
    )
    pipe.save_pretrained(directory)
    (directory / "architecture.json").write_text(json.dumps(asdict(arch), indent=2))
    return directory
