"""Pretraining from scratch: a standard diffusers directory, resumable exactly."""

import dataclasses

import pytest
import torch
from diffusers import StableDiffusionPipeline
from safetensors.torch import load_file

from tint.data import shapes
from tint.diffusion.training import PretrainConfig, pretrain
from tint.errors import TintError

from .conftest import BASE, TINY

CONFIG = PretrainConfig(
    vae_steps=3, denoiser_steps=4, batch=4, warmup=2, checkpoint_every=2, reuse=2
)


def _draw(n, g):
    return shapes.draw(n, g, BASE, size=TINY.image_size)


def _weights(out):
    """Raw weights of the checkpoint, and the published EMA UNet and VAE."""
    files = {
        "raw": out / "training" / "unet.safetensors",
        "ema": out / "unet" / "diffusion_pytorch_model.safetensors",
        "vae": out / "vae" / "diffusion_pytorch_model.safetensors",
    }
    return {f"{kind}.{k}": v for kind, f in files.items() for k, v in load_file(str(f)).items()}


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    straight = pretrain(tmp_path / "straight", TINY, CONFIG, _draw, progress=False)
    assert straight["step"] == 4 and straight["stage"] == "denoiser"
    half = dataclasses.replace(CONFIG, denoiser_steps=2)
    pretrain(tmp_path / "resumed", TINY, half, _draw, progress=False)
    resumed = pretrain(tmp_path / "resumed", TINY, CONFIG, _draw, resume=True, progress=False)
    assert resumed["step"] == 4
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_the_result_loads_in_a_stock_pipeline_and_generates(tmp_path):
    pretrain(tmp_path / "m", TINY, CONFIG, _draw, progress=False)
    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "m", local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    images = pipe(
        "a photo of a red disc", num_inference_steps=3, height=16, width=16, output_type="np"
    ).images
    assert images.shape == (1, 16, 16, 3)
    assert pipe.vae.config.scaling_factor != 0.18215  # set from the trained VAE's latents


def test_resume_needs_a_checkpoint_and_a_new_run_an_empty_folder(tmp_path):
    with pytest.raises(TintError, match="no checkpoint"):
        pretrain(tmp_path / "none", TINY, CONFIG, _draw, resume=True, progress=False)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    with pytest.raises(TintError, match="not empty"):
        pretrain(tmp_path / "used", TINY, CONFIG, _draw, progress=False)


def test_a_checkpoint_without_weights_goes_on_from_the_published_model(tmp_path):
    pretrain(tmp_path / "m", TINY, CONFIG, _draw, progress=False)
    before = load_file(str(tmp_path / "m" / "unet" / "diffusion_pytorch_model.safetensors"))
    for f in (tmp_path / "m" / "training").glob("*.safetensors"):
        f.unlink()  # what a fresh clone of the repository has
    longer = dataclasses.replace(CONFIG, denoiser_steps=5)
    state = pretrain(tmp_path / "m", TINY, longer, _draw, resume=True, progress=False)
    assert state["step"] == 5 and state["warm_from"] == 4
    after = load_file(str(tmp_path / "m" / "unet" / "diffusion_pytorch_model.safetensors"))
    gap = max((after[k] - before[k]).abs().max() for k in before)
    assert 0 < gap < 0.01
