"""Training a small latent diffusion model from scratch, resumably: the VAE first, then the UNet
and text encoder on captioned images that a `draw` function supplies.

    OUT/                   a standard diffusers directory (EMA weights), usable at any checkpoint
    OUT/training/          raw weights, EMA and Adam state as safetensors, state.json

Every step's batch depends only on (seed, stage, step), so a resumed run continues exactly as an
uninterrupted one would."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from tint.batches import Draw, PooledDraw, step_generator
from tint.checkpoint import Checkpoint
from tint.diffusion.architectures import TinyArchitecture, build_tiny
from tint.diffusion.model import DiffusionModel, quiet_libraries
from tint.errors import TintError
from tint.run_folder import RunFolder
from tint.storage import write_json


@dataclass
class PretrainConfig:
    vae_steps: int = 3000
    denoiser_steps: int = 60000
    batch: int = 96  # denoiser images per step
    vae_batch: int = 32
    vae_lr: float = 1e-3
    lr: float = 1e-3  # UNet and text encoder, AdamW, after a linear warm-up
    warmup: int = 500
    kl_weight: float = 1e-4  # VAE KL term, per latent element relative to pixel MSE
    caption_dropout: float = 0.1  # "" instead of the caption, so guidance works
    ema_decay: float = 0.999  # the saved UNet and text encoder are this EMA of the weights
    checkpoint_every: int = 500  # steps
    reuse: int = 1  # each drawn image serves about this many steps (see PooledDraw)
    # Min-SNR-gamma loss weights (Hang et al., 2023): the easy low-noise steps stop dominating
    # the gradient, which speeds up training several times; 0 gives the plain mean.
    min_snr_gamma: float = 5.0
    seed: int = 0


@dataclass
class _Run:
    out: Path
    arch: TinyArchitecture
    config: PretrainConfig
    checkpoint: Checkpoint

    def save(self, stage: str, step: int, modules: dict, ema: dict, optimizer, extra: dict):
        state = {
            "stage": stage,
            "step": step,
            "arch": dataclasses.asdict(self.arch),
            "config": dataclasses.asdict(self.config),
            **extra,
        }
        everything = {**modules, **{f"{name}_ema": m for name, m in ema.items()}}
        self.checkpoint.save(state, everything, optimizer)

    def load_into(self, modules: dict, ema: dict, optimizer) -> None:
        everything = {**modules, **{f"{name}_ema": m for name, m in ema.items()}}
        self.checkpoint.load_into(everything, optimizer)


def pretrain(
    out: str | Path,
    arch: TinyArchitecture,
    config: PretrainConfig,
    draw: Draw,
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Train a model of architecture `arch` on drawn images into `out` (see module doc). With
    `resume`, continue from the last checkpoint in `out`; a larger step count extends a finished
    run. Returns the final state (stage, step, losses, time)."""
    out = Path(out)
    quiet_libraries()
    run = _Run(out, arch, config, Checkpoint(out / "training"))
    folder = RunFolder(out, None, resume)
    folder.check()
    state = run.checkpoint.state() if resume else None
    if resume and state is None:
        raise TintError(f"{out}: no checkpoint to resume (training/state.json is missing)")
    if state and state["arch"] != json.loads(json.dumps(dataclasses.asdict(arch))):
        raise TintError(f"{out}: was trained with another architecture; use another --out")
    with folder:
        if state is None:
            build_tiny(out, arch, seed=config.seed)
            state = {"stage": "vae", "step": 0, "seconds": 0.0, "losses": {}}
        if state["stage"] == "vae":
            state = _train_vae(run, state, draw, progress)
            # The VAE is final and published: a resume from here starts the denoiser.
            write_json(
                run.checkpoint.dir / "state.json",
                {**state, "arch": dataclasses.asdict(arch), "config": dataclasses.asdict(config)},
            )
        return _train_denoiser(run, state, draw, progress)


def _train_vae(run: _Run, state: dict, draw: Draw, progress: bool) -> dict:
    from diffusers import AutoencoderKL

    config = run.config
    vae = AutoencoderKL.from_pretrained(run.out / "vae")
    vae.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.vae_lr, weight_decay=0.0)
    if state["step"] > 0 and run.checkpoint.has_weights():
        run.load_into({"vae": vae}, {}, optimizer)  # else: the published weights, fresh Adam
    started, seconds, mse = time.perf_counter(), state.get("seconds", 0.0), float("nan")
    pool = PooledDraw(draw, config.vae_batch, config.reuse, config.seed, "vae")
    for step in tqdm(
        range(state["step"], config.vae_steps),
        initial=state["step"],
        total=config.vae_steps,
        desc="VAE",
        disable=not progress,
    ):
        x = pool(step, step_generator(config.seed, "vae", step))[0] * 2 - 1
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        loss_rec = (recon - x).pow(2).mean()
        loss = loss_rec + config.kl_weight * posterior.kl().mean() / x[0].numel()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        mse = float(loss_rec.detach())
        done = step + 1
        if done % config.checkpoint_every == 0 and done < config.vae_steps:
            elapsed = seconds + time.perf_counter() - started
            _publish(run.out, {"vae": vae})
            run.save(
                "vae",
                done,
                {"vae": vae},
                {},
                optimizer,
                {"seconds": elapsed, "losses": {"vae_mse": mse}},
            )
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        sample = draw(512, step_generator(config.seed, "vae-scale", 0))[0] * 2 - 1
        latents = vae.encode(sample).latent_dist.mean
    # Stable Diffusion's convention: latents of unit variance once multiplied by this.
    vae.register_to_config(scaling_factor=float(1 / latents.std()))
    vae.save_pretrained(run.out / "vae")
    return {
        "stage": "denoiser",
        "step": 0,
        "seconds": seconds + time.perf_counter() - started,
        "losses": {"vae_mse": mse},
    }


def _train_denoiser(run: _Run, state: dict, draw: Draw, progress: bool) -> dict:
    config = run.config
    model = DiffusionModel.load(run.out)
    modules = {"unet": model.unet, "text_encoder": model.text_encoder}
    ema = {name: copy.deepcopy(m) for name, m in modules.items()}
    params = [p for m in modules.values() for p in m.parameters()]
    for m in modules.values():
        m.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)
    warm_from = state.get("warm_from", 0)
    if state["step"] > 0 and run.checkpoint.has_weights():
        run.load_into(modules, ema, optimizer)
    elif state["step"] > 0:  # weights-only checkpoint: go on from the published EMA weights
        warm_from = state["step"]
    ema_params = [p for m in ema.values() for p in m.parameters()]
    T = model.num_train_timesteps
    started, seconds = time.perf_counter(), state.get("seconds", 0.0)
    losses = dict(state.get("losses", {}))
    recent: list[float] = []
    pool = PooledDraw(
        draw, config.batch, config.reuse, config.seed, "denoiser", prepare=model.encode_images
    )
    bar = tqdm(
        range(state["step"], config.denoiser_steps),
        initial=state["step"],
        total=config.denoiser_steps,
        desc="denoiser",
        disable=not progress,
    )
    for step in bar:
        g = step_generator(config.seed, "denoiser", step)
        z0, captions = pool(step, g)
        keep = (torch.rand(len(captions), generator=g) >= config.caption_dropout).tolist()
        captions = [c if k else "" for c, k in zip(captions, keep)]
        noise = torch.randn(z0.shape, generator=g)
        t = torch.randint(0, T, (len(z0),), generator=g)
        pred = model.unet(
            model.add_noise(z0, noise, t), t, encoder_hidden_states=model.encode_text(captions)
        ).sample
        per_sample = (pred - model.training_target(z0, noise, t)).pow(2).mean(dim=(1, 2, 3))
        loss = (per_sample * _loss_weights(model, t, config.min_snr_gamma)).mean()
        for group in optimizer.param_groups:
            group["lr"] = config.lr * min(1.0, (step + 1 - warm_from) / max(1, config.warmup))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            # The usual warm-up of the decay, so short runs are not dominated by the init.
            decay = min(config.ema_decay, (1 + step) / (10 + step))
            torch._foreach_lerp_(ema_params, params, 1 - decay)
        recent = (recent + [float(loss.detach())])[-200:]
        bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")
        done = step + 1
        losses["denoiser"] = sum(recent) / len(recent)
        if done % config.checkpoint_every == 0 or done == config.denoiser_steps:
            elapsed = seconds + time.perf_counter() - started
            _publish(run.out, ema)
            run.save(
                "denoiser",
                done,
                modules,
                ema,
                optimizer,
                {"seconds": elapsed, "losses": losses, "warm_from": warm_from},
            )
    final = run.checkpoint.state() or state
    return final


def _loss_weights(model: DiffusionModel, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma weights for each sample's loss at timestep t (ones when gamma is 0)."""
    if gamma <= 0:
        return torch.ones_like(t, dtype=torch.float32)
    snr = model.alphas_cumprod[t] / (1 - model.alphas_cumprod[t])
    clipped = snr.clamp(max=gamma)
    return clipped / (snr + 1) if model.prediction_type == "v_prediction" else clipped / snr


def _publish(out: Path, modules: dict) -> None:
    """Write modules as the directory's components (what users load; the EMA weights for the
    UNet and text encoder), each component whole or not at all."""
    for name, module in modules.items():
        scratch, old = out / f".{name}.partial", out / f".{name}.old"
        shutil.rmtree(scratch, ignore_errors=True)
        module.save_pretrained(scratch)
        (out / name).rename(old)
        scratch.rename(out / name)
        shutil.rmtree(old)
