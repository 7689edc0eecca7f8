"""Null-text inversion (Mokady et al. 2023): per support, the unconditional embeddings that make
guided DDIM retrace the support's DDIM-inversion path.

All supports are optimised as one batch. Each keeps its own Adam state and stops on its own once
its step error falls below the tolerance; finished supports leave the batch, so they cost no more
UNet calls. The embeddings and Adam state are float32 whatever the model's dtype. Supports that
do not fit the accelerator's memory together are inverted in smaller batches (the same result:
each support's inversion is independent of the others)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tint.config import setting
from tint.diffusion import ddim
from tint.diffusion.memory import FittingBatch
from tint.diffusion.model import DiffusionModel
from tint.errors import TintError
from tint.io.progress import bar


@dataclass
class NullTextConfig:
    inner_steps: int = setting(5, "Adam steps per timestep, at most", minimum=1)
    lr: float = setting(5e-2, "Adam's learning rate", above=0)
    tolerance: float = setting(1e-5, "a support stops once its step MSE is below this", minimum=0)


@dataclass
class Inversion:
    latents_T: torch.Tensor  # (B, C, h, w): z_T from DDIM inversion
    null_embeddings: torch.Tensor  # (N, B, L, D) float32: one per DDIM step, in sampling order
    inner_steps_used: torch.Tensor  # (N, B): Adam steps each support took at each timestep


def invert(
    model: DiffusionModel,
    z0: torch.Tensor,
    cond: torch.Tensor,
    steps: int,
    config: NullTextConfig,
    guidance: float = 7.5,
    *,
    progress: bool = True,
) -> Inversion:
    """Invert a batch of support latents z0 (B, C, h, w), each with its own prompt embedding
    cond (B, L, D), for a `steps`-step DDIM sampler guided at scale `guidance`."""
    cond = cond.detach()
    fitting = FittingBatch(len(z0), "null-text inversion")
    parts = [
        result
        for _, result in fitting.slices(
            len(z0), lambda p: _invert(model, z0[p], cond[p], steps, config, guidance, progress)
        )
    ]
    return Inversion(
        torch.cat([r.latents_T for r in parts]),
        torch.cat([r.null_embeddings for r in parts], 1),
        torch.cat([r.inner_steps_used for r in parts], 1),
    )


def _invert(model, z0, cond, steps, config, guidance, progress) -> Inversion:
    path = ddim.invert(model, z0, cond, steps, progress=False)  # z_0 .. z_N
    grid = ddim.timesteps(model.num_train_timesteps, steps)
    empty = model.encode_text([""]).detach().float()  # (1, L, D)
    null = empty.expand(len(z0), -1, -1).clone()  # (B, L, D), carried from step to step
    z = path[-1]
    nulls, used = [], []
    for i, (t, (a_t, a_prev)) in enumerate(
        bar(list(zip(grid, ddim.alpha_pairs(model, grid))), "null-text inversion", progress)
    ):
        target = path[len(grid) - 1 - i]
        with torch.no_grad():
            eps_c = model.predict_noise(z, t, cond)
        null, count = _fit_step(model, z, t, eps_c, target, null, (a_t, a_prev), config, guidance)
        with torch.no_grad():
            eps_u = model.predict_noise(z, t, null)
            z = ddim.move(z, eps_u + guidance * (eps_c - eps_u), a_t, a_prev)
        nulls.append(null.clone())
        used.append(count)
    result = torch.stack(nulls)
    if not torch.isfinite(result).all():
        raise TintError("null-text inversion diverged (non-finite embedding)")
    return Inversion(path[-1], result, torch.stack(used))


def _fit_step(model, z, t, eps_c, target, null, alphas, config, guidance):
    """Adam on the unconditional embedding of every support for one timestep.
    Returns the new (B, L, D) embeddings and the (B,) number of steps each one took."""
    a_t, a_prev = alphas
    null = null.clone()
    m = torch.zeros_like(null)
    v = torch.zeros_like(null)
    count = torch.zeros(len(z), dtype=torch.long)
    active = torch.arange(len(z), device=z.device)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for k in range(1, config.inner_steps + 1):
        u = null[active].requires_grad_(True)
        with torch.enable_grad():
            eps_u = model.predict_noise(z[active], t, u)
            guided = eps_u + guidance * (eps_c[active] - eps_u)
            prev = ddim.move(z[active], guided, a_t, a_prev)
            loss = ((prev - target[active]) ** 2).flatten(1).mean(1)  # (b,)
            (grad,) = torch.autograd.grad(loss.sum(), u)
        keep = loss.detach() >= config.tolerance  # below tolerance: done, keep as is
        active, grad = active[keep], grad[keep]
        if len(active) == 0:
            break
        count[active.cpu()] = k
        m[active] = beta1 * m[active] + (1 - beta1) * grad
        v[active] = beta2 * v[active] + (1 - beta2) * grad**2
        m_hat = m[active] / (1 - beta1**k)
        v_hat = v[active] / (1 - beta2**k)
        null[active] = null[active] - config.lr * m_hat / (v_hat.sqrt() + eps)
    return null, count
