"""Training a small latent diffusion model from scratch: the VAE first, then the UNet and text
encoder on captioned images. Plain loops over batches that a `draw` function supplies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from tint.diffusion.architectures import TinyArchitecture, build_tiny
from tint.diffusion.model import DiffusionModel, quiet_libraries

# draw(batch_size, generator) -> (images (B, 3, H, W) in [0, 1], captions)
Draw = Callable[[int, torch.Generator], tuple[torch.Tensor, list[str]]]


def train_vae(
    vae: torch.nn.Module,
    draw: Draw,
    steps: int,
    batch: int = 64,
    lr: float = 1e-3,
    kl_weight: float = 1e-4,
    seed: int = 0,
    progress: bool = True,
) -> float:
    """Train an AutoencoderKL to reconstruct drawn images; then set its latent scaling factor so
    latents have unit variance, as Stable Diffusion does. Returns the last reconstruction MSE."""
    g = torch.Generator().manual_seed(seed)
    device = next(vae.parameters()).device
    vae.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    mse = float("nan")
    for _ in tqdm(range(steps), desc="VAE", disable=not progress):
        x = draw(batch, g)[0].to(device) * 2 - 1
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=None)).sample
        loss_rec = (recon - x).pow(2).mean()
        loss = loss_rec + kl_weight * posterior.kl().mean() / x[0].numel()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        mse = float(loss_rec.detach())
    vae.eval().requires_grad_(False)
    with torch.no_grad():
        latents = vae.encode(draw(256, g)[0].to(device) * 2 - 1).latent_dist.mean
    vae.register_to_config(scaling_factor=float(1 / latents.std()))
    return mse


def train_denoiser(
    model: DiffusionModel,
    draw: Draw,
    steps: int,
    batch: int = 64,
    lr: float = 1e-3,
    caption_dropout: float = 0.1,
    seed: int = 0,
    progress: bool = True,
) -> float:
    """Train the UNet and text encoder with the epsilon (or v) objective on VAE latents of drawn
    images. A caption is replaced by "" with probability `caption_dropout`, so that classifier-
    free guidance works. Returns the mean loss of the last 10% of steps."""
    g = torch.Generator().manual_seed(seed)
    params = [*model.unet.parameters(), *model.text_encoder.parameters()]
    for module in (model.unet, model.text_encoder):
        module.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    T = model.num_train_timesteps
    tail = []
    for step in tqdm(range(steps), desc="denoiser", disable=not progress):
        images, captions = draw(batch, g)
        keep = torch.rand(len(captions), generator=g) >= caption_dropout
        captions = [c if k else "" for c, k in zip(captions, keep.tolist())]
        z0 = model.encode_images(images)
        noise = torch.randn(z0.shape, generator=g).to(model.device)
        t = torch.randint(0, T, (len(z0),), generator=g).to(model.device)
        text = model.encode_text(captions)
        pred = model.unet(
            model.add_noise(z0, noise, t).to(model.dtype), t, encoder_hidden_states=text
        ).sample.float()
        loss = (pred - model.training_target(z0, noise, t)).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= steps - max(1, steps // 10):
            tail.append(float(loss.detach()))
    for module in (model.unet, model.text_encoder):
        module.eval().requires_grad_(False)
    return sum(tail) / len(tail)


def train_from_scratch(
    directory: str | Path,
    arch: TinyArchitecture,
    draw: Draw,
    vae_steps: int,
    denoiser_steps: int,
    batch: int = 32,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Build a model of architecture `arch` in `directory`, train its VAE then its denoiser on
    drawn images, and save it in place. Returns the final losses."""
    from diffusers import AutoencoderKL

    directory = Path(directory)
    quiet_libraries()
    build_tiny(directory, arch, seed=seed)
    vae = AutoencoderKL.from_pretrained(directory / "vae")
    vae_mse = train_vae(vae, draw, vae_steps, batch=batch, seed=seed, progress=progress)
    vae.save_pretrained(directory / "vae")
    model = DiffusionModel.load(directory)
    loss = train_denoiser(model, draw, denoiser_steps, batch=batch, seed=seed, progress=progress)
    model.unet.save_pretrained(directory / "unet")
    model.text_encoder.save_pretrained(directory / "text_encoder")
    return {"vae_mse": vae_mse, "denoiser_loss": loss}
