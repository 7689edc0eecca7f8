"""LoRA images: from fresh noise with the class's learnt token, through a UNet whose adapters
were trained on the task's supports (`tint.diffusion.lora`): a stronger specialisation than
TINT's, to compare it with."""

from __future__ import annotations

import dataclasses

from tint.sources.source import GENERATED, Source, SourceJob, generated


def images(job: SourceJob, spelled: str):
    config = dataclasses.replace(job.generation, generator="lora", random_alpha=False)
    return generated(job, config, spelled)


SOURCE = Source("lora", GENERATED, "images through a UNet with LoRA adapters", images=images)
