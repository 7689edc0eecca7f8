"""The supports' own reconstructions: TINT at alpha 0 (the inverted latent and null-text
embeddings of each support, no fresh noise), which the student's ordinary augmentation then
varies; the baseline that tells what the new noise of TINT's images adds."""

from __future__ import annotations

import dataclasses

import torch

from tint.diffusion.generation import reconstruct
from tint.diffusion.pipeline import specialize_to
from tint.io.stages import stage
from tint.sources.source import GENERATED, Source, SourceJob, uint8


def images(job: SourceJob, spelled: str):
    model = job.model()
    config = dataclasses.replace(job.generation, generator="tint", alpha=0.0)
    task = job.task
    specs = specialize_to(
        job.folder / "specialization",
        model,
        task.supports,
        config,
        resume=True,
        progress=job.progress,
    )
    with stage("generation"):
        made = [reconstruct(model, specs[c], config).cpu() for c in task.classes]
    return uint8(torch.cat(made), job.view_size)


SOURCE = Source("augment", GENERATED, "alpha-0 reconstructions of the supports", images=images)
