"""TINT's images: each from a support's inverted latent blended with fresh noise (`alpha`) and
its null-text embeddings, with the class token (textual + null-text inversion).

    tint            at the settings' alpha (`--alpha`)
    tint:A          at alpha A
    tint:LO-HI      at an alpha drawn for each image from [LO, HI]
    tint:random     at an alpha drawn for each image from [0, 1]
    tint:CRITERION  `select_factor` times as many, the teacher keeping per class those it
                    prefers: confident, uncertain or spread (`tint.sources.selection`)"""

from __future__ import annotations

import dataclasses

import torch

from tint.errors import TintError
from tint.sources.selection import CRITERIA, select
from tint.sources.source import GENERATED, Source, SourceJob, generated

RANDOM = "random"
SPELLINGS = f"tint:A, tint:LO-HI, tint:{RANDOM} or tint:{'|'.join(CRITERIA)}"


def _alphas(option: str) -> list[float]:
    try:
        values = [float(v) for v in option.split("-")]
    except ValueError:
        return []
    return values if len(values) in (1, 2) and all(0 <= v <= 1 for v in values) else []


def check(option: str) -> None:
    if option in (RANDOM, *CRITERIA):
        return
    alphas = _alphas(option)
    if not alphas or alphas != sorted(alphas):
        raise TintError(
            f"tint:{option}: tint:A needs an alpha A in [0, 1], tint:LO-HI two with LO <= HI "
            f"(or {SPELLINGS})"
        )


def images(job: SourceJob, spelled: str) -> torch.Tensor:
    _, _, option = spelled.partition(":")
    config = dataclasses.replace(job.generation, generator="tint", random_alpha=option == RANDOM)
    alphas = [] if option in (RANDOM, *CRITERIA) else _alphas(option)
    if len(alphas) == 1:
        config = dataclasses.replace(config, alpha=alphas[0])
    elif alphas:
        config = dataclasses.replace(config, alpha_range=tuple(alphas))
    if option not in CRITERIA:
        return generated(job, config, spelled)
    # The criteria choose from one set of candidates, kept in tint-x<factor>.
    factor = job.select_factor
    made = generated(job, dataclasses.replace(config, num=config.num * factor), f"tint:x{factor}")
    classes = torch.arange(len(job.task.classes)).repeat_interleave(config.num * factor)
    return made[select(job.teacher(), made, classes, config.num, option)]


SOURCE = Source(
    "tint",
    GENERATED,
    f"TINT images ({SPELLINGS})",
    images=images,
    option=check,
)
