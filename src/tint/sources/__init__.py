"""Where a student's images come from, beside its supports: one module per source, one registry.

    generated (need the diffusion model)     mined (need a base pool: images of other classes)
    tint      TINT's images                  retrieval  the base images nearest the supports
    ti        textual inversion only         base       the whole base pool, a batch of its own
    augment   the supports reconstructed
    boundary  TINT's, moved towards the most confusable class
    lora      from fresh noise, through a UNet with adapters trained on the supports

A method combines sources with "+" ("tint+retrieval@pretrained", `tint.pipeline.recipe`); the
pipeline gives each source a `SourceJob` (the task, its folder, the resolved settings, the
models) and asks it for its images.

Adding a source is one module and one line here. The module defines `SOURCE`, a `Source` with
a name, what it needs (GENERATED or MINED), a line of help, and either `images(job, spelled)`,
which returns (M, 3, H, W) uint8 images at `job.view_size` for the teacher to label, or
`labelled(job)`, which returns images and the teacher's logits on them for a batch of their own.
For example, the supports flipped left to right:

    # tint/sources/flipped.py
    def images(job, spelled):
        supports, _ = job.task.support_tensor(job.view_size)
        return uint8(supports.flip(-1))

    SOURCE = Source("flipped", GENERATED, "the supports, mirrored", images=images)

and `flipped.SOURCE` joins REGISTERED below; `--methods flipped+tint@pretrained` then runs it.
Its settings, if it has any, go in `tint.pipeline.recipe.RecipeSettings` and reach it through
the job."""

from __future__ import annotations

from tint.errors import TintError
from tint.sources import augment, base, boundary, lora, retrieval, ti
from tint.sources import tint as tint_images  # the module: `tint` is the package
from tint.sources.source import GENERATED, MINED, Source, SourceJob

REGISTERED = (
    tint_images.SOURCE,
    ti.SOURCE,
    augment.SOURCE,
    boundary.SOURCE,
    lora.SOURCE,
    retrieval.SOURCE,
    base.SOURCE,
)
SOURCES: dict[str, Source] = {source.name: source for source in REGISTERED}

__all__ = ["GENERATED", "MINED", "SOURCES", "Source", "SourceJob", "source_of"]


def source_of(spelled: str) -> Source:
    """The source a method spells ("tint:0.3" -> tint), its option checked."""
    name, colon, option = spelled.partition(":")
    source = SOURCES.get(name)
    if source is None:
        raise TintError(f"unknown source {name!r} (one of {', '.join(SOURCES)})")
    if colon and source.option is None:
        raise TintError(f"{spelled}: the {name} source takes no option")
    if colon:
        source.option(option)
    return source
