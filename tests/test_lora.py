"""The lora generator: adapters trained on the supports, kept with the specialisation, on a copy
of the UNet, and images through them."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest
import torch

from tint.cli import main
from tint.data.images import load_class_folders
from tint.diffusion import lora
from tint.diffusion.generation import GenerateConfig, encode_supports, working_size
from tint.diffusion.pipeline import specialize_to
from tint.io.stages import recording

CONFIG = GenerateConfig(ddim_steps=4, precision="float32")
CONFIG.ti.steps = 4
CONFIG.lora.steps, CONFIG.lora.lr = 30, 1e-2


def denoising_error(model, latents, prompts, draws=8):
    """The mean denoising error on `latents` at `draws` fixed noises and timesteps each."""
    latents, prompts = latents.repeat(draws, 1, 1, 1), prompts * draws
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(latents.shape, generator=g)
    t = torch.randint(0, model.num_train_timesteps, (len(latents),), generator=g)
    with torch.no_grad():
        text = model.encode_text(prompts)
        pred = model.predict_noise(model.add_noise(latents, noise, t), t, text)
    return float((pred - noise).pow(2).mean())


def unet_output(model):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, model.unet.config.in_channels, 4, 4, generator=g)
    with torch.no_grad():
        return model.predict_noise(z, torch.tensor([10, 500]), model.encode_text(["a", "b"]))


@pytest.fixture
def specialised(model, supports, tmp_path):
    classes = load_class_folders(supports)
    specs = specialize_to(tmp_path / "spec", model, classes, CONFIG, progress=False)
    size = working_size(model, CONFIG)
    latents = {n: encode_supports(model, c, size, CONFIG) for n, c in classes.items()}
    return classes, specs, latents


def test_the_adapters_fit_the_supports_and_leave_the_model_as_it_was(model, specialised, tmp_path):
    classes, specs, latents = specialised
    before = unet_output(model)
    adapted = lora.specialized(
        tmp_path / "spec", model, classes, specs, lambda: latents, CONFIG, progress=False
    )
    z = torch.cat(list(latents.values()))
    prompts = [specs[n].token_embedding.prompt for n in latents for _ in latents[n]]
    # the tiny model's error is mostly that of noise it cannot predict: 30 steps take ~2% off
    assert denoising_error(adapted, z, prompts) < 0.995 * denoising_error(model, z, prompts)
    assert torch.equal(unet_output(model), before)
    assert not lora.adapters(model) and lora.adapters(adapted)


def test_saved_adapters_are_found_again_and_other_settings_train_anew(model, specialised, tmp_path):
    classes, specs, latents = specialised
    args = (tmp_path / "spec", model, classes, specs, lambda: latents)
    trained = lora.specialized(*args, CONFIG, progress=False)
    with recording() as seconds:
        again = lora.specialized(*args, CONFIG, resume=True, progress=False)
    assert "lora" not in seconds
    assert torch.equal(unet_output(again), unet_output(trained))
    other = dataclasses.replace(CONFIG, lora=dataclasses.replace(CONFIG.lora, rank=2))
    with recording() as seconds:
        lora.specialized(*args, other, resume=True, progress=False)
    assert "lora" in seconds


def test_tint_generate_with_the_lora_generator(model_dir, supports, tmp_path, capsys):
    flags = ["--ti-steps", "4", "--ddim-steps", "4", "--num", "2", "--precision", "float32"]
    outs = {}
    for generator in ("ti", "lora"):
        out = tmp_path / generator
        argv = ["generate", str(supports), "--out", str(out), "--model", str(model_dir)]
        assert main([*argv, *flags, "--generator", generator, "--lora-steps", "30", "--quiet"]) == 0
        outs[generator] = out
    manifest = json.loads((outs["lora"] / "manifest.json").read_text())
    assert len(manifest["images"]) == 2 * len(list(supports.iterdir()))
    assert all(e["support"] is None for e in manifest["images"])
    assert len(list((outs["lora"] / "specialization").glob("lora-*/adapter.safetensors"))) == 1
    # the same draws as textual inversion's, through other weights: other images
    for entry in manifest["images"]:
        assert (outs["lora"] / entry["path"]).read_bytes() != (
            outs["ti"] / entry["path"]
        ).read_bytes()


def test_without_peft_the_lora_generator_says_how_to_install_it(model, monkeypatch):
    from tint.errors import TintError

    monkeypatch.setitem(sys.modules, "peft", None)  # what an environment without it imports
    with pytest.raises(TintError, match=r"pip install 'tint\[lora\]'"):
        lora.with_adapters(model, CONFIG.lora, seed=0)
