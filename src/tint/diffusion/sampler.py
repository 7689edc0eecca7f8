"""The TINT generation rule: start from a support's inverted latent blended with fresh noise,
guided by its null-text embeddings moved towards the empty prompt's."""

from __future__ import annotations

import torch


def rms(x: torch.Tensor) -> torch.Tensor:
    """Per-sample root mean square, shaped to broadcast against x: sqrt(mean(x^2))."""
    return x.pow(2).flatten(1).mean(1).sqrt().reshape(-1, *[1] * (x.dim() - 1))


def blend_noise(latents_T: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """z = (1 - a) zT + a eps, rescaled to the norm ((1 - a) rms(zT) + a rms(eps)).

    Blending two independent Gaussians shrinks the norm (to about sqrt((1-a)^2 + a^2) of it), and
    DDIM started from a too-small latent gives washed-out images; the rescale undoes that.
    a = 0 returns zT (the support), a = 1 returns eps. alpha is (B,)."""
    a = alpha.to(latents_T).reshape(-1, *[1] * (latents_T.dim() - 1))
    z = (1 - a) * latents_T + a * noise
    return z * ((1 - a) * rms(latents_T) + a * rms(noise)) / rms(z)


def blend_nulls(nulls: torch.Tensor, empty: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """null + w (empty - null) for each image's null-text embeddings: nulls (N, B, L, D), one per
    DDIM step; empty (1, L, D), the empty prompt's; weight (B,). w = 0 keeps the support's
    embeddings, w = 1 is the plain empty prompt at every step."""
    w = weight.to(nulls).reshape(1, -1, 1, 1)
    return nulls + w * (empty.to(nulls)[None] - nulls)


def slerp(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of each pair of latents (B, ...) by weight (B,): a at 0, b at 1,
    and in between a latent of about their norm (a straight line between two independent
    Gaussians passes nearer the origin, as `blend_noise` says)."""
    w = weight.to(a).reshape(-1, *[1] * (a.dim() - 1))
    unit_a, unit_b = (x / x.flatten(1).norm(dim=1).reshape(w.shape) for x in (a, b))
    cos = (unit_a * unit_b).flatten(1).sum(1).reshape(w.shape).clamp(-1 + 1e-7, 1 - 1e-7)
    omega = torch.acos(cos)
    return (torch.sin((1 - w) * omega) * a + torch.sin(w * omega) * b) / torch.sin(omega)
