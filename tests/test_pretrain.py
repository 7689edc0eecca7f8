"""Pretraining from scratch: a standard diffusers directory, resumable exactly."""

import dataclasses

import pytest
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image
from safetensors.torch import load_file

from tint.diffusion.architectures import UpscalerArchitecture, build_tiny
from tint.diffusion.model import DiffusionModel
from tint.errors import TintError
from tint.train.diffusion import (
    DiffusionTraining,
    UpscalerTraining,
    pretrain,
    pretrain_upscaler,
    start_from,
    stretch_latents,
)
from tint.train.trainer import TrainConfig

from . import shapes
from .conftest import BASE, TINY

CONFIG = DiffusionTraining(
    vae=TrainConfig(steps=3, batch=32, lr=1e-3, checkpoint_every=2),
    denoiser=TrainConfig(steps=4, batch=4, lr=1e-3, warmup=2, ema_decay=0.999, checkpoint_every=2),
    reuse=2,
)


def _longer(steps: int) -> DiffusionTraining:
    return dataclasses.replace(CONFIG, denoiser=dataclasses.replace(CONFIG.denoiser, steps=steps))


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
    half = _longer(2)
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
    longer = _longer(5)
    state = pretrain(tmp_path / "m", TINY, longer, _draw, resume=True, progress=False)
    assert state["step"] == 5 and state["warm_from"] == 4
    after = load_file(str(tmp_path / "m" / "unet" / "diffusion_pytorch_model.safetensors"))
    gap = max((after[k] - before[k]).abs().max() for k in before)
    assert 0 < gap < 0.01


def test_a_model_started_from_another_has_its_denoiser_and_shared_word_embeddings(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    pretrain(first, TINY, CONFIG, _draw, progress=False)
    build_tiny(second, dataclasses.replace(TINY, words=["zebra", *TINY.words[1:]]))
    start_from(second, first)
    a, b = DiffusionModel.load(first), DiffusionModel.load(second)
    for k, v in a.unet.state_dict().items():
        assert torch.equal(v, b.unet.state_dict()[k]), k
    vocab_a, vocab_b = a.tokenizer.get_vocab(), b.tokenizer.get_vocab()
    table_a = a.text_encoder.get_input_embeddings().weight
    table_b = b.text_encoder.get_input_embeddings().weight
    for word in TINY.words[1:]:
        assert torch.equal(table_a[vocab_a[word + "</w>"]], table_b[vocab_b[word + "</w>"]])
    assert not torch.equal(table_a[vocab_a[TINY.words[0] + "</w>"]], table_b[vocab_b["zebra</w>"]])
    with pytest.raises(TintError, match="not a Stable Diffusion model directory"):
        pretrain(tmp_path / "third", TINY, CONFIG, _draw, progress=False, init=tmp_path)
    assert not (tmp_path / "third").exists()


@pytest.mark.e2e
def test_the_shipped_models_records_still_resume(tmp_path):
    """The shipped models keep only their training record (state.json): `--resume` on a copy
    goes on from the published weights, one step here, with a re-warmed optimiser."""
    import json
    import shutil

    from tint.cli import main
    from tint.commands import world

    teacher = shutil.copytree(world.DEFAULT_TEACHER, tmp_path / "teacher")
    shipped = json.loads((teacher / "training" / "state.json").read_text())
    argv = ["pretrain", "teacher", "--out", str(teacher), "--resume", "--quiet"]
    assert main([*argv, "--train-steps", str(shipped["step"] + 1)]) == 0
    state = json.loads((teacher / "training" / "state.json").read_text())
    assert (state["step"], state["warm_from"]) == (shipped["step"] + 1, shipped["step"])
    # One small step from the shipped model keeps it near its score.
    assert state["held_out_accuracy"] > shipped["held_out_accuracy"] - 0.05

    model = shutil.copytree(world.DEFAULT_MODEL, tmp_path / "diffusion")
    step = json.loads((model / "training" / "state.json").read_text())["step"]
    argv = ["pretrain", "diffusion", "--out", str(model), "--resume", "--quiet"]
    argv += ["--denoiser-steps", str(step + 1), "--denoiser-batch", "4", "--reuse", "1"]
    assert main(argv) == 0
    state = json.loads((model / "training" / "state.json").read_text())
    assert (state["stage"], state["step"], state["warm_from"]) == ("denoiser", step + 1, step)


UPSCALER = UpscalerArchitecture(vae_channels=(8, 16), unet_channels=(16, 32), max_noise_level=50)
UPSCALER_TRAINING = UpscalerTraining(
    vae=TrainConfig(steps=2, batch=8, lr=1e-3, checkpoint_every=2),
    denoiser=TrainConfig(steps=3, batch=4, lr=1e-3, ema_decay=0.999, checkpoint_every=2),
    reuse=2,
)


def test_an_upscaler_trains_resumes_and_doubles_a_small_image(tmp_path, model_dir):
    """The upscaler's VAE latents are stretched to the pipeline's fixed scale (0.08333) without
    changing what it decodes; the folder is a stock StableDiffusionUpscalePipeline that makes a
    16 px image 32 px; a resumed run ends where an uninterrupted one does."""
    from diffusers import StableDiffusionUpscalePipeline

    straight = tmp_path / "straight"
    state = pretrain_upscaler(
        straight, UPSCALER, UPSCALER_TRAINING, _draw, model_dir, progress=False
    )
    assert (state["stage"], state["step"]) == ("denoiser", 3)
    half = dataclasses.replace(
        UPSCALER_TRAINING, denoiser=dataclasses.replace(UPSCALER_TRAINING.denoiser, steps=2)
    )
    pretrain_upscaler(tmp_path / "resumed", UPSCALER, half, _draw, model_dir, progress=False)
    pretrain_upscaler(
        tmp_path / "resumed",
        UPSCALER,
        UPSCALER_TRAINING,
        _draw,
        model_dir,
        resume=True,
        progress=False,
    )
    a, b = _weights(straight), _weights(tmp_path / "resumed")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)

    pipe = StableDiffusionUpscalePipeline.from_pretrained(straight, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.vae.config.scaling_factor == 0.08333
    x = _draw(64, torch.Generator().manual_seed(1))[0] * 2 - 1
    with torch.no_grad():
        latents = pipe.vae.encode(x).latent_dist.mean * pipe.vae.config.scaling_factor
    assert 0.5 < float(latents.std()) < 2  # the scale the UNet was trained at, not 0.08
    small = Image.new("RGB", (16, 16), (200, 30, 30))
    out = pipe(prompt="", image=small, num_inference_steps=2, guidance_scale=1.0).images[0]
    assert out.size == (32, 32)


def test_stretching_the_latents_changes_their_scale_not_the_decoding():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=4,
    )
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        before = vae.encode(x).latent_dist
        decoded = vae.decode(before.mean).sample
        stretch_latents(vae, 12.0)
        after = vae.encode(x).latent_dist
        torch.testing.assert_close(after.mean, 12 * before.mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(after.std, 12 * before.std, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(vae.decode(after.mean).sample, decoded, rtol=1e-4, atol=1e-5)


def test_every_shipped_model_has_its_card_and_all_weigh_under_40_mb():
    from tint.commands import world

    models = [p for p in world.ASSETS.iterdir() if p.is_dir()]
    assert {p.name for p in models} >= {"glyph-diffusion", "glyph-teacher", "glyph-upscaler"}
    for folder in models:
        assert (folder / "MODEL_CARD.md").is_file(), folder
        assert (folder / "training" / "state.json").is_file(), folder
    # The published weights; training/ keeps its exact checkpoints locally (.gitignore).
    shipped = [f for f in world.ASSETS.rglob("*.safetensors") if f.parent.name != "training"]
    assert sum(f.stat().st_size for f in shipped) < 40e6
