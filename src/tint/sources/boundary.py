"""Images at the class boundaries: TINT's images of a class whose prompt embedding is moved
towards that of the class the task's teacher finds most like it (the nearest prototype), by a
share drawn for each image from [0, `boundary_share`]. The teacher labels them softly, as every
image a student learns from: what it learns is where one class ends and the next begins."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from tint.sources.source import GENERATED, Source, SourceJob, generated


def partners(prototypes: torch.Tensor, classes: list[str]) -> dict[str, str]:
    """Each class's most similar other class, by the cosine of the teacher's prototypes."""
    p = F.normalize(prototypes.detach(), dim=1)
    similarity = (p @ p.T).fill_diagonal_(-2.0)
    return {c: classes[int(i)] for c, i in zip(classes, similarity.argmax(1))}


def images(job: SourceJob, spelled: str) -> torch.Tensor:
    config = dataclasses.replace(
        job.generation, generator="tint", random_alpha=False, boundary=job.boundary_share
    )
    pairs = partners(job.teacher().prototypes, job.task.classes)
    return generated(job, config, spelled, partners=pairs)


SOURCE = Source(
    "boundary",
    GENERATED,
    "TINT images moved towards the most confusable class",
    images=images,
)
