"""Small supports made larger before inversion: by resizing (the default), bicubic, or a diffusers
upscaler (here a tiny random one built from the test model's parts), recorded with the
specialisation."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tint.cli import main

from .conftest import TINY, write_supports


@pytest.fixture(scope="module")
def upscaler_dir(model_dir, tmp_path_factory):
    """A StableDiffusionUpscalePipeline with random weights around the test model's VAE, text
    encoder and tokenizer: it doubles the side (the VAE's factor), whatever it draws."""
    import torch
    from diffusers import (
        DDIMScheduler,
        DDPMScheduler,
        StableDiffusionPipeline,
        StableDiffusionUpscalePipeline,
        UNet2DConditionModel,
    )

    parts = StableDiffusionPipeline.from_pretrained(model_dir, local_files_only=True)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4 + 3,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(32, 64),
        norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TINY.text_width,
        attention_head_dim=8,
        num_class_embeds=1000,
    )
    pipe = StableDiffusionUpscalePipeline(
        vae=parts.vae,
        text_encoder=parts.text_encoder,
        tokenizer=parts.tokenizer,
        unet=unet,
        low_res_scheduler=DDPMScheduler(),
        scheduler=DDIMScheduler(),
    )
    out = tmp_path_factory.mktemp("upscaler") / "tiny-upscaler"
    pipe.save_pretrained(out)
    return out


def _generate(supports, out, model_dir, *flags) -> dict:
    argv = ["generate", supports, "--out", out, "--model", model_dir, "--num", "2"]
    argv += ["--ti-steps", "2", "--ddim-steps", "2", "--quiet", *flags]
    assert main([str(a) for a in argv]) == 0
    folder = out / "specialization"
    return {
        c.name: json.loads((c / "specialization.json").read_text())["settings"]
        for c in folder.iterdir()
    }


def test_an_upscaler_makes_small_supports_larger_and_is_recorded(upscaler_dir, model_dir, tmp_path):
    supports = tmp_path / "supports"
    write_supports(supports, sizes=((8, 8),))  # half the tiny model's 16 px
    resized = _generate(supports, tmp_path / "resize", model_dir)
    upscaled = _generate(
        supports, tmp_path / "up", model_dir, "--upscale", upscaler_dir, "--upscale-steps", "2"
    )
    bicubic = _generate(supports, tmp_path / "bicubic", model_dir, "--upscale", "bicubic")
    for name in resized:
        assert "upscale" not in resized[name]
        assert upscaled[name]["upscale"] == [str(upscaler_dir), 2]
        assert bicubic[name]["upscale"] == ["bicubic", 20]
    # The upscaled supports make another specialisation: other images.
    for a, b in (("resize", "up"), ("resize", "bicubic")):
        first = sorted((tmp_path / a / "images").rglob("*.png"))
        second = [tmp_path / b / p.relative_to(tmp_path / a) for p in first]
        assert any(
            Image.open(x).tobytes() != Image.open(y).tobytes() for x, y in zip(first, second)
        ), (a, b)


def test_an_upscaler_that_is_not_there_is_one_line(model_dir, tmp_path, capsys):
    supports = tmp_path / "supports"
    write_supports(supports, sizes=((8, 8),))
    argv = ["generate", str(supports), "--out", str(tmp_path / "out"), "--model", str(model_dir)]
    assert main([*argv, "--upscale", str(tmp_path / "nope"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope: no such upscaler directory" in err


def test_the_ways_back_from_small_tell_a_faithful_one_from_an_untrained_upscaler(upscaler_dir):
    """Smooth images shrunk to half their side come back nearly whole by resizing; an upscaler
    with random weights draws noise: the PSNR of what `restored` makes tells them apart."""
    import torch

    from tint.diffusion.upscale import restored
    from tint.eval.model_quality import psnr

    ramp = torch.linspace(0, 1, 32)
    images = torch.stack([ramp[None, :, None].expand(3, 32, 32), ramp.expand(3, 32, 32)])
    made = restored(images, 16, str(upscaler_dir), steps=2)
    assert made["small"].shape == (2, 3, 16, 16)
    assert {k: v.shape for k, v in made.items() if k != "small"} == dict.fromkeys(
        ("resize", "bicubic", "upscaler"), images.shape
    )
    assert psnr(made["bicubic"], images) > 30 and psnr(made["resize"], images) > 30
    assert psnr(made["upscaler"], images) < psnr(made["bicubic"], images) - 10


def test_the_shipped_glyph_upscaler_doubles_val_glyphs_it_never_saw():
    """The committed upscaler loads offline and makes 16 px val glyphs 32 px again about as close
    to the originals as bicubic resizing (its card: 22.8 against 23.8 dB over 188 glyphs)."""
    import torch

    from tint.commands import world
    from tint.data import glyphs
    from tint.diffusion.upscale import restored
    from tint.eval.model_quality import psnr

    images = torch.cat([glyphs.benchmark_instances(g, 1) for g in glyphs.split("val")[:8]])
    made = restored(images, 16, str(world.ASSETS / "glyph-upscaler"), steps=5)
    assert made["upscaler"].shape == images.shape
    assert psnr(made["upscaler"], images) > psnr(made["bicubic"], images) - 3
