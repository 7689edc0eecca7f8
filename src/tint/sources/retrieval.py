"""The base pool's images nearest the supports under the teacher's features, `retrieval_num`
per class, taken round-robin over the supports (`BasePool.nearest`): mined images of other
classes that look like the task's, labelled by its teacher like generated ones."""

from __future__ import annotations

from tint.io.stages import stage
from tint.sources.source import MINED, Source, SourceJob


def images(job: SourceJob, spelled: str):
    supports, _ = job.task.support_tensor(job.view_size)
    with stage("retrieval"):
        picks = job.base_pool.nearest(supports, job.retrieval_num * len(job.task.classes))
    return job.base_pool.images[picks]


SOURCE = Source("retrieval", MINED, "the base images nearest the supports", images=images)
