"""Deterministic DDIM (eta = 0) over tensors: the timestep grid, one step, inversion, sampling.

Plain functions with no hidden state, in the manner of k-diffusion's samplers."""

from __future__ import annotations

import torch

from tint.diffusion.model import DiffusionModel
from tint.io.progress import bar


def timesteps(num_train_timesteps: int, steps: int) -> list[int]:
    """'trailing' spacing (Lin et al. 2024, table 2): descending, starting at T - 1."""
    ratio = num_train_timesteps / steps
    grid = torch.arange(num_train_timesteps, 0, -ratio).round().long() - 1
    return grid.tolist()


def alpha_pairs(model: DiffusionModel, grid: list[int]) -> list[tuple[float, float]]:
    """For each t of a descending grid: (alpha-bar at t, alpha-bar at the next, smaller, t)."""
    a = model.alphas_cumprod.cpu().tolist()
    nxt = grid[1:] + [-1]
    return [(a[t], a[p] if p >= 0 else model.final_alpha_cumprod) for t, p in zip(grid, nxt)]


def move(z: torch.Tensor, eps: torch.Tensor, a_from: float, a_to: float) -> torch.Tensor:
    """Formula (12) of the DDIM paper with sigma = 0: go from noise level a_from to a_to.
    a_to < a_from steps towards noise (inversion); a_to > a_from steps towards the image."""
    x0 = (z - (1 - a_from) ** 0.5 * eps) / a_from**0.5
    return a_to**0.5 * x0 + (1 - a_to) ** 0.5 * eps


def guided_noise(
    model: DiffusionModel,
    z: torch.Tensor,
    t: int,
    cond: torch.Tensor,
    uncond: torch.Tensor,
    guidance: float | torch.Tensor,
) -> torch.Tensor:
    """Classifier-free guidance with the conditional and unconditional halves in one UNet call;
    `guidance` is one scale, or one per sample shaped (B, 1, 1, 1)."""
    eps_u, eps_c = model.predict_noise(
        torch.cat([z, z]), t, torch.cat([uncond.to(cond.dtype), cond])
    ).chunk(2)
    return eps_u + guidance * (eps_c - eps_u)


@torch.no_grad()
def invert(
    model: DiffusionModel, z0: torch.Tensor, cond: torch.Tensor, steps: int, progress=False
) -> list[torch.Tensor]:
    """DDIM inversion with guidance 1: returns [z_0, z_1, ..., z_N], z_N the most noisy."""
    grid = timesteps(model.num_train_timesteps, steps)
    pairs = alpha_pairs(model, grid)
    path = [z0.float()]
    for t, (a_t, a_prev) in bar(
        list(zip(grid, pairs))[::-1], "DDIM inversion", progress, inner=True
    ):
        # eps is evaluated at the less noisy point, the usual approximation of DDIM inversion.
        eps = model.predict_noise(path[-1], t, cond)
        path.append(move(path[-1], eps, a_prev, a_t))
    return path


@torch.no_grad()
def sample(
    model: DiffusionModel,
    z: torch.Tensor,
    cond: torch.Tensor,
    uncond: torch.Tensor,
    steps: int,
    guidance: float | torch.Tensor,
    progress=False,
) -> torch.Tensor:
    """Guided DDIM from z (at T) to z_0. `uncond` is (B, L, D) for every step, or (N, B, L, D)
    with one unconditional embedding per step (null-text inversion's)."""
    grid = timesteps(model.num_train_timesteps, steps)
    z = z.float()
    for i, (t, (a_t, a_prev)) in enumerate(
        bar(list(zip(grid, alpha_pairs(model, grid))), "DDIM", progress, inner=True)
    ):
        null = uncond[i] if uncond.dim() == 4 else uncond
        z = move(z, guided_noise(model, z, t, cond, null, guidance), a_t, a_prev)
    return z
