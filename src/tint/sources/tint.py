"""TINT's images: each from a support's inverted latent blended with fresh noise (`alpha`) and
its null-text embeddings, with the class token (textual + null-text inversion).

    tint          at the settings' alpha (`--alpha`)
    tint:A        at alpha A
    tint:random   at an alpha drawn uniformly for each image"""

from __future__ import annotations

import dataclasses

from tint.errors import TintError
from tint.sources.source import GENERATED, Source, SourceJob, generated

RANDOM = "random"


def check(option: str) -> None:
    if option == RANDOM:
        return
    try:
        alpha = float(option)
    except ValueError:
        alpha = -1.0
    if not 0 <= alpha <= 1:
        raise TintError(f"tint:{option}: tint:A needs an alpha A in [0, 1] (or tint:{RANDOM})")


def images(job: SourceJob, spelled: str):
    _, _, option = spelled.partition(":")
    config = dataclasses.replace(
        job.generation,
        generator="tint",
        alpha=float(option) if option and option != RANDOM else job.generation.alpha,
        random_alpha=option == RANDOM,
    )
    return generated(job, config, spelled)


SOURCE = Source(
    "tint",
    GENERATED,
    "TINT images (tint:A at alpha A, tint:random at an alpha drawn per image)",
    images=images,
    option=check,
)
