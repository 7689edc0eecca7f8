"""Textual-inversion-only images: the class token's prompt from fresh noise, with the empty
prompt's unconditional embedding (no support's inversion, so no alpha)."""

from __future__ import annotations

import dataclasses

from tint.sources.source import GENERATED, Source, SourceJob, generated


def images(job: SourceJob, spelled: str):
    config = dataclasses.replace(job.generation, generator="ti", random_alpha=False)
    return generated(job, config, spelled)


SOURCE = Source("ti", GENERATED, "textual-inversion-only images", images=images)
