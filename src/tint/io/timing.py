"""Throughput of a model, measured the same way everywhere it is reported."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


@torch.no_grad()
def images_per_second(
    fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, min_seconds: float = 1.0
) -> float:
    """Images per second of `fn` on batches of `images`, after one warm-up call, timed over
    whole calls for at least `min_seconds`."""
    fn(images)
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds or count == 0:
        fn(images)
        count += len(images)
    return count / elapsed
