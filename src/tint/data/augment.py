"""Ordinary image augmentation in plain torch, batched: one random affine warp per image (scale,
rotation, shear, shift, optional horizontal flip) and a brightness/contrast jitter.

Distillation shows the teacher and the student the same augmented view, so an augmentation is a
function of (images, generator) that returns new images, nothing more."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from tint.config import setting


@dataclass
class AugmentConfig:
    scale: tuple[float, float] = setting((0.85, 1.15), "zoom factor range", above=0)
    rotation: float = setting(10.0, "degrees, either way", minimum=0)
    shear: float = setting(0.1, "either way", minimum=0)
    shift: float = setting(0.1, "share of the image side, either way", minimum=0)
    # Not for glyphs: a mirrored letter is another class.
    flip: bool = setting(False, "horizontal flip of half the images")
    brightness: float = setting(0.1, "added, either way, to images in [0, 1]", minimum=0)
    contrast: float = setting(0.1, "relative, either way", minimum=0)

    @classmethod
    def for_photos(cls) -> AugmentConfig:
        """Natural images: flips keep the class; wider zoom."""
        return cls(scale=(0.8, 1.2), rotation=10.0, shear=0.05, shift=0.1, flip=True)

    @classmethod
    def for_teacher(cls, kind: str) -> AugmentConfig:
        """The augmentation for the images a teacher of `kind` sees: glyphs (the defaults), or
        natural images (`for_photos`) for any other."""
        return cls() if kind == "glyph" else cls.for_photos()


def augment(x: torch.Tensor, generator: torch.Generator, config: AugmentConfig) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> the same shape, each image warped and jittered on its own.
    Areas warped in from outside the image take the colour of its border."""
    b = len(x)

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(b, generator=generator)

    scale = uniform(*config.scale)
    angle = uniform(-config.rotation, config.rotation) * math.pi / 180
    shear = uniform(-config.shear, config.shear)
    shift = torch.stack([uniform(-config.shift, config.shift) for _ in range(2)], 1) * 2
    flip = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    if not config.flip:
        flip = torch.ones(b)
    brightness = uniform(-config.brightness, config.brightness)
    contrast = uniform(1 - config.contrast, 1 + config.contrast)

    # affine_grid maps output coordinates to input ones: the inverse of the warp we want.
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotate = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
    shear_m = torch.eye(2).repeat(b, 1, 1)
    shear_m[:, 0, 1] = shear
    linear = rotate @ shear_m / scale[:, None, None]
    linear[:, :, 0] *= flip[:, None]
    theta = torch.cat([linear, shift[:, :, None]], 2).to(x)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = warped.mean((1, 2, 3), keepdim=True)
    jittered = (warped - mean) * contrast.to(x)[:, None, None, None] + mean
    return (jittered + brightness.to(x)[:, None, None, None]).clamp(0, 1)
