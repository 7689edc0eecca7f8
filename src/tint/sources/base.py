"""The whole base pool: `base_views` augmented views of every image, made and embedded once for
every task (`BasePool.views`) and labelled by each task's teacher through its head alone (its
whole network where fine-tuning changed the backbone); `distill.base_batch` of them join every
step's batch."""

from __future__ import annotations

import torch

from tint.data.images import as_float
from tint.io.stages import stage
from tint.sources.source import MINED, Source, SourceJob


def labelled(job: SourceJob) -> tuple[torch.Tensor, torch.Tensor]:
    views, embeddings = job.base_pool.views(job.base_views, job.seed, job.augmentation)
    teacher = job.teacher()
    with torch.no_grad(), stage("teacher_labels"):
        if teacher.tuned_backbone:
            return views, teacher.logits(as_float(views))
        return views, teacher.head(embeddings)


SOURCE = Source("base", MINED, "the whole base pool, a batch of its own", labelled=labelled)
