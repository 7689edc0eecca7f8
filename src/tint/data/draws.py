"""Seeded batch streams for training: a step's batch depends only on (seed, stage, step), so a
resumed run sees exactly the batches an uninterrupted one would."""

from __future__ import annotations

from collections.abc import Callable

import torch

from tint.io import seeds

# draw(batch_size, generator) -> (images (B, 3, H, W) in [0, 1], labels or captions)
Draw = Callable[[int, torch.Generator], tuple[torch.Tensor, list]]


class PooledDraw:
    """Draws a block of steps' worth of images at once and serves each step a batch sampled from
    its block's pool: each image serves about `reuse` steps, so drawing (and `prepare`, e.g.
    encoding) costs 1/reuse as much. Batches stay a function of (seed, stage, step)."""

    BLOCK = 100  # steps

    def __init__(self, draw: Draw, batch: int, reuse: int, seed: int, stage: str, prepare=None):
        self.draw, self.batch, self.reuse, self.seed, self.stage = draw, batch, reuse, seed, stage
        self.prepare = prepare or (lambda images: images)
        self.block, self.items, self.labels = -1, None, []

    def __call__(self, step: int, g: torch.Generator) -> tuple[torch.Tensor, list]:
        if self.reuse <= 1:
            images, labels = self.draw(self.batch, g)
            return self.prepare(images), labels
        if step // self.BLOCK != self.block:
            self.block = step // self.BLOCK
            size = self.batch * self.BLOCK // self.reuse
            pool_g = seeds.generator(self.seed, f"{self.stage}-pool", self.block)
            images, self.labels = self.draw(size, pool_g)
            self.items = torch.cat([self.prepare(x) for x in images.split(256)])
        pick = torch.randint(len(self.items), (self.batch,), generator=g)
        return self.items[pick], [self.labels[i] for i in pick.tolist()]
