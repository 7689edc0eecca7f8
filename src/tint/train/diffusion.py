"""Pretraining a small latent diffusion model from scratch: the VAE first, then the UNet and text
encoder on captioned images that a `draw` function supplies, both with `tint.train.trainer`.

    OUT/                 a standard diffusers directory (EMA weights), usable at any checkpoint
    OUT/training/        raw weights, EMA and Adam state as safetensors, state.json

Every step's batch depends only on (seed, stage, step), so a resumed run continues exactly as an
uninterrupted one would."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from tint.config import group, setting
from tint.data.draws import Draw, PooledDraw
from tint.diffusion.architectures import (
    UPSCALER_LATENT_SCALE,
    TinyArchitecture,
    UpscalerArchitecture,
    build_tiny,
    build_upscaler,
)
from tint.diffusion.model import DiffusionModel, check_model_dir
from tint.errors import TintError
from tint.io import seeds
from tint.io.pretrained import quiet_libraries
from tint.io.run_folder import replace_folder
from tint.io.storage import write_json
from tint.train.trainer import TrainConfig, train, training_folder


def _kl_weight():
    return setting(1e-4, "the VAE's KL term, per latent element, against the pixel MSE", minimum=0)


def _reuse(default: int):
    return setting(default, "steps each drawn image serves (see PooledDraw)", minimum=1)


def _min_snr_gamma():
    # Min-SNR-gamma loss weights (Hang et al., 2023): the easy low-noise steps stop dominating
    # the gradient, which speeds up training several times; 0 gives the plain mean.
    return setting(5.0, "min-SNR-gamma loss weights (0: the plain mean)", minimum=0)


@dataclass
class DiffusionTraining:
    vae: TrainConfig = group(
        TrainConfig,
        "the VAE, first",
        factory=lambda: TrainConfig(steps=3000, batch=32, lr=1e-3, checkpoint_every=500),
    )
    denoiser: TrainConfig = group(
        TrainConfig,
        "the UNet and text encoder, on the finished VAE's latents",
        factory=lambda: TrainConfig(
            steps=60000, batch=96, lr=1e-3, warmup=500, ema_decay=0.999, checkpoint_every=500
        ),
    )
    kl_weight: float = _kl_weight()
    caption_dropout: float = setting(
        0.1, 'share of captions replaced by "", so that guidance works', minimum=0, maximum=1
    )
    reuse: int = _reuse(1)
    min_snr_gamma: float = _min_snr_gamma()


@dataclass
class UpscalerTraining:
    vae: TrainConfig = group(
        TrainConfig,
        "the VAE, first",
        factory=lambda: TrainConfig(steps=1000, batch=32, lr=1e-3, checkpoint_every=250),
    )
    denoiser: TrainConfig = group(
        TrainConfig,
        "the UNet, on the finished VAE's latents beside the small images",
        factory=lambda: TrainConfig(
            steps=3000, batch=64, lr=1e-3, warmup=200, ema_decay=0.999, checkpoint_every=250
        ),
    )
    kl_weight: float = _kl_weight()
    reuse: int = _reuse(4)
    min_snr_gamma: float = _min_snr_gamma()


def pretrain(
    out: str | Path,
    arch: TinyArchitecture,
    config: DiffusionTraining,
    draw: Draw,
    *,
    resume: bool = False,
    progress: bool = True,
    init: str | Path | None = None,
) -> dict:
    """Train a model of architecture `arch` on drawn images into `out` (see module doc). With
    `resume`, continue from the last checkpoint in `out`; more steps extend a finished run.
    A new run may start its UNet and text encoder from `init`, a model of the same architecture
    (see `start_from`); the VAE is always trained anew. Returns the final state (stage, step,
    losses, time)."""

    def build(out: Path) -> None:
        build_tiny(out, arch, seed=config.vae.seed)
        if init is not None:
            start_from(out, init)

    return _staged(
        out,
        arch,
        config,
        draw,
        build,
        _train_denoiser,
        {"init": None if init is None else str(check_model_dir(init))},
        resume=resume,
        progress=progress,
    )


def pretrain_upscaler(
    out: str | Path,
    arch: UpscalerArchitecture,
    config: UpscalerTraining,
    draw: Draw,
    parts: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Train a StableDiffusionUpscalePipeline of architecture `arch` into `out`: its VAE on
    drawn images, then its UNet to draw their latents from the images made small (by
    antialiased bicubic resizing, as small photographs are), the small image noised to a random
    level as the pipeline's `noise_level` does. Text encoder, tokenizer and scheduler come from
    the diffusion model `parts`. Resumes and extends as `pretrain` does."""
    return _staged(
        out,
        arch,
        config,
        draw,
        lambda out: build_upscaler(out, arch, check_model_dir(parts), seed=config.vae.seed),
        _train_upscaler_unet,
        {"parts": str(parts)},
        resume=resume,
        progress=progress,
        latent_scale=UPSCALER_LATENT_SCALE,
    )


def _staged(
    out, arch, config, draw, build, denoise, first: dict, *, resume, progress, latent_scale=None
) -> dict:
    """A run in two stages, checkpointed in `out`: a new run builds the model (`build(out)`);
    then its VAE is trained, then `denoise` trains the rest. `first` is recorded with the run
    (what it started from); a resumed run keeps what it recorded."""
    out = Path(out)
    quiet_libraries()
    folder, checkpoint, state = training_folder(out, resume)
    if state and state["arch"] != json.loads(json.dumps(dataclasses.asdict(arch))):
        raise TintError(f"{out}: was trained with another architecture; use another --out")
    record = {"arch": dataclasses.asdict(arch)}
    record.update(first if state is None else {k: state.get(k) for k in first})
    with folder:
        if state is None:
            build(out)
            state = {"stage": "vae", "step": 0, "seconds": 0.0, "losses": {}}
        if state["stage"] == "vae":
            state = _train_vae(out, checkpoint, config, draw, record, progress, latent_scale)
            # The VAE is final and published: a resume from here starts the denoiser.
            write_json(checkpoint.dir / "state.json", {**state, **record})
        return denoise(out, checkpoint, config, draw, state, record, progress)


def start_from(out: Path, init: str | Path) -> None:
    """Give the new model in `out` the UNet and text encoder of the model in `init`: every
    weight, except that each token's embedding comes from `init` only where its tokenizer has
    that token (the class words of another world's base split do not carry over)."""
    mine, theirs = DiffusionModel.load(out), DiffusionModel.load(init)
    try:
        mine.unet.load_state_dict(theirs.unet.state_dict())
        table = theirs.text_encoder.get_input_embeddings().weight
        weights = {
            k: v
            for k, v in theirs.text_encoder.state_dict().items()
            if not k.endswith("token_embedding.weight")
        }
        mine.text_encoder.load_state_dict(weights, strict=False)
    except RuntimeError as e:
        detail = str(e).splitlines()[0]
        raise TintError(f"{init}: not a model of this architecture ({detail})") from None
    vocabulary = theirs.tokenizer.get_vocab()
    embedding = mine.text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        for token, index in mine.tokenizer.get_vocab().items():
            if token in vocabulary:
                embedding[index] = table[vocabulary[token]]
    mine.unet.save_pretrained(out / "unet")
    mine.text_encoder.save_pretrained(out / "text_encoder")


def _train_vae(
    out, checkpoint, config, draw, record, progress, latent_scale: float | None = None
) -> dict:
    """Train out/vae; then set its scaling factor so that scaled latents have unit variance, or,
    where the factor is fixed (`latent_scale`), stretch its latent space to fit it."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(out / "vae")
    vae.requires_grad_(True)
    pool = PooledDraw(draw, config.vae.batch, config.reuse, config.vae.seed, "vae")
    mse = {}

    def step(index: int, g: torch.Generator) -> torch.Tensor:
        x = pool(index, g)[0] * 2 - 1
        posterior = vae.encode(x).latent_dist
        reconstruction = (vae.decode(posterior.sample()).sample - x).pow(2).mean()
        mse["vae_mse"] = float(reconstruction.detach())
        return reconstruction + config.kl_weight * posterior.kl().mean() / x[0].numel()

    state = train(
        step,
        {"vae": vae},
        config.vae,
        "vae",
        checkpoint=checkpoint,
        publish=lambda modules: _publish(out, modules),
        record=lambda _: {"stage": "vae", "losses": dict(mse), **record},
        window=1,
        progress=progress,
        desc="VAE",
    )
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        sample = draw(512, seeds.generator(config.vae.seed, "vae-scale", 0))[0] * 2 - 1
        std = float(vae.encode(sample).latent_dist.mean.std())
    # Stable Diffusion's convention: latents of unit variance once multiplied by this.
    if latent_scale is None:
        vae.register_to_config(scaling_factor=1 / std)
    else:
        stretch_latents(vae, 1 / (std * latent_scale))
        vae.register_to_config(scaling_factor=latent_scale)
    vae.save_pretrained(out / "vae")
    return {"stage": "denoiser", "step": 0, "seconds": state["seconds"], "losses": dict(mse)}


@torch.no_grad()
def stretch_latents(vae, c: float) -> None:
    """Make the VAE's latents c times larger, exactly: the encoder's means times c (its log
    variances plus 2 ln c), and the decoder's first step divided by c."""
    half = vae.config.latent_channels
    vae.quant_conv.weight[:half] *= c
    vae.quant_conv.bias[:half] *= c
    vae.quant_conv.bias[half:] += 2 * math.log(c)
    vae.post_quant_conv.weight /= c


def _train_denoiser(out, checkpoint, config: DiffusionTraining, draw, state, record, progress):
    model = DiffusionModel.load(out)
    modules = {"unet": model.unet, "text_encoder": model.text_encoder}
    for m in modules.values():
        m.requires_grad_(True)
    T = model.num_train_timesteps
    pool = PooledDraw(
        draw,
        config.denoiser.batch,
        config.reuse,
        config.denoiser.seed,
        "denoiser",
        prepare=model.encode_images,
    )

    def step(index: int, g: torch.Generator) -> torch.Tensor:
        z0, captions = pool(index, g)
        keep = (torch.rand(len(captions), generator=g) >= config.caption_dropout).tolist()
        captions = [c if k else "" for c, k in zip(captions, keep)]
        noise = torch.randn(z0.shape, generator=g)
        t = torch.randint(0, T, (len(z0),), generator=g)
        pred = model.unet(
            model.add_noise(z0, noise, t), t, encoder_hidden_states=model.encode_text(captions)
        ).sample
        per_sample = (pred - model.training_target(z0, noise, t)).pow(2).mean(dim=(1, 2, 3))
        v = model.prediction_type == "v_prediction"
        return (per_sample * _loss_weights(model.alphas_cumprod, v, t, config.min_snr_gamma)).mean()

    losses = dict(state.get("losses", {}))
    result = train(
        step,
        modules,
        config.denoiser,
        "denoiser",
        checkpoint=checkpoint,
        publish=lambda averaged: _publish(out, averaged),
        record=lambda _: {"stage": "denoiser", "losses": losses, **record},
        window=200,
        progress=progress,
        desc="denoiser",
    )
    losses["denoiser"] = result["loss"]
    return {**result, "losses": losses}


def _train_upscaler_unet(out, checkpoint, config, draw, state, record, progress):
    from diffusers import StableDiffusionUpscalePipeline

    pipe = StableDiffusionUpscalePipeline.from_pretrained(out, local_files_only=True)
    unet, vae, noise, small_noise = pipe.unet, pipe.vae, pipe.scheduler, pipe.low_res_scheduler
    unet.requires_grad_(True)
    with torch.no_grad():
        empty = pipe.encode_prompt("", "cpu", 1, False)[0]
    factor = 2 ** (len(vae.config.block_out_channels) - 1)

    @torch.no_grad()
    def prepare(images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> their scaled latents beside the small image, in [-1, 1]."""
        latents = vae.encode(images * 2 - 1).latent_dist.mean * vae.config.scaling_factor
        small = F.interpolate(images, scale_factor=1 / factor, mode="bicubic", antialias=True)
        return torch.cat([latents, small.clamp(0, 1) * 2 - 1], dim=1)

    pool = PooledDraw(
        draw, config.denoiser.batch, config.reuse, config.denoiser.seed, "denoiser", prepare
    )
    channels = vae.config.latent_channels
    T, levels = noise.config.num_train_timesteps, pipe.config.max_noise_level + 1
    alphas = noise.alphas_cumprod
    v = noise.config.prediction_type == "v_prediction"

    def step(index: int, g: torch.Generator) -> torch.Tensor:
        items = pool(index, g)[0]
        z0, small = items[:, :channels], items[:, channels:]
        level = torch.randint(0, levels, (len(z0),), generator=g)
        small = small_noise.add_noise(small, torch.randn(small.shape, generator=g), level)
        eps, t = torch.randn(z0.shape, generator=g), torch.randint(0, T, (len(z0),), generator=g)
        zt = noise.add_noise(z0, eps, t)
        pred = unet(
            torch.cat([zt, small], dim=1),
            t,
            encoder_hidden_states=empty.expand(len(z0), -1, -1),
            class_labels=level,
        ).sample
        target = noise.get_velocity(z0, eps, t) if v else eps
        per_sample = (pred - target).pow(2).mean(dim=(1, 2, 3))
        return (per_sample * _loss_weights(alphas, v, t, config.min_snr_gamma)).mean()

    losses = dict(state.get("losses", {}))
    result = train(
        step,
        {"unet": unet},
        config.denoiser,
        "denoiser",
        checkpoint=checkpoint,
        publish=lambda averaged: _publish(out, averaged),
        record=lambda _: {"stage": "denoiser", "losses": losses, **record},
        window=200,
        progress=progress,
        desc="upscaler UNet",
    )
    losses["denoiser"] = result["loss"]
    return {**result, "losses": losses}


def _loss_weights(
    alphas_cumprod: torch.Tensor, v_prediction: bool, t: torch.Tensor, gamma: float
) -> torch.Tensor:
    """Min-SNR-gamma weights for each sample's loss at timestep t (ones when gamma is 0)."""
    if gamma <= 0:
        return torch.ones_like(t, dtype=torch.float32)
    snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
    clipped = snr.clamp(max=gamma)
    return clipped / (snr + 1) if v_prediction else clipped / snr


def _publish(out: Path, modules: dict) -> None:
    """Write modules as the directory's components (what users load; the EMA weights for the
    UNet and text encoder), each component whole or not at all."""
    for name, module in modules.items():
        scratch = out / f".{name}.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        module.save_pretrained(scratch)
        replace_folder(scratch, out / name)
