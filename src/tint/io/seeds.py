"""Random streams named by their purpose: a seed, or a torch generator, that is a function of a
few parts (a run's seed, a stage, a step, a class, an index) and of nothing else. Whatever is
drawn around it, from whatever process or machine, stream ("0", "denoiser", 17) is the same."""

from __future__ import annotations

import hashlib

import torch


def seed_of(*parts: object, width: int = 8) -> int:
    """A non-negative integer from sha256 of the parts joined by "/": the first `width` bytes,
    little-endian, less one bit (8: a 63-bit torch seed; 4: a 31-bit one)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:width], "little") >> 1


def generator(*parts: object) -> torch.Generator:
    """A CPU torch.Generator seeded by `seed_of(*parts)`."""
    return torch.Generator().manual_seed(seed_of(*parts))
