"""Batches that fit: work over a range of samples runs in slices, and a slice that runs out of
accelerator memory is retried at half its size, down to one sample. The size that fitted is kept
for the rest of the work, so the search happens once."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch

T = TypeVar("T")


class FittingBatch:
    """Slices of at most `batch` samples, halved whenever one runs out of accelerator memory."""

    def __init__(self, batch: int, what: str):
        self.batch = max(1, batch)
        self.what = what  # named in the message when the batch shrinks

    def slices(self, total: int, work: Callable[[slice], T]) -> Iterator[tuple[slice, T]]:
        """Yield (part, work(part)) for consecutive parts covering range(total)."""
        start = 0
        while start < total:
            part = slice(start, min(start + self.batch, total))
            try:
                result = work(part)
            except torch.cuda.OutOfMemoryError:
                size = part.stop - part.start
                if size == 1:
                    raise
                self.batch = size // 2
            else:
                yield part, result
                start = part.stop
                continue
            # Outside the except block: the failed attempt's tensors are released by now.
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            print(
                f"{self.what}: out of accelerator memory at batch {size}, "
                f"going on with batch {self.batch}",
                file=sys.stderr,
            )
