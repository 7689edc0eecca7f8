"""What a source is, and what it is given to make one task's images (see `tint.sources`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from tint.data.augment import AugmentConfig
from tint.data.images import as_float, load_rgb, resize, to_tensor
from tint.data.tasks import Task
from tint.diffusion.generation import GenerateConfig
from tint.diffusion.model import DiffusionModel
from tint.diffusion.pipeline import generate
from tint.io.cluster import Cluster
from tint.models.teachers import Teacher
from tint.sources.base_pool import BasePool

GENERATED, MINED = "generated", "mined"  # what a source needs: the diffusion model, a base pool


@dataclass
class SourceJob:
    """What a source makes one task's images from. Everything is resolved: counts are numbers,
    the generation settings carry the task's seed."""

    task: Task
    view_size: tuple[int, int]  # the teacher's input size: images come back at it
    folder: Path  # the task's folder: generated images and specialisations are kept under it
    generation: GenerateConfig  # the task's generation settings
    retrieval_num: int  # retrieved images per class
    base_views: int  # augmented views of each base image the teacher labels
    seed: int  # the run's seed: the base pool's views are the same for every task
    select_factor: int  # how many times the images asked for a selecting source makes
    boundary_share: float  # how far towards its partner class a boundary image moves, at most
    augmentation: AugmentConfig
    model: Callable[[], DiffusionModel]  # loads the diffusion model at its first call
    base_pool: BasePool | None
    teacher: Callable[[], Teacher]  # the task's teacher (specialised at its first call)
    progress: bool = True
    cluster: Cluster | None = None  # a Ray cluster whose workers render shards of classes


@dataclass(frozen=True)
class Source:
    """One kind of images a student learns from. A source either adds images to the transfer
    set, which the teacher labels once in `distill.views` augmented views and of which every
    step draws `distill.batch`, or labels images of its own that every step draws
    `distill.base_batch` of beside them."""

    name: str  # as methods spell it: "tint", "base+tint@pretrained"
    kind: str  # GENERATED or MINED: what it needs
    help: str  # one line, for the methods' help text
    # images(job, spelled): (M, 3, H, W) uint8 at the view size; `spelled` is the source as the
    # method writes it ("tint:0.3"), which names the folder its images are kept in
    images: Callable[[SourceJob, str], torch.Tensor] | None = None
    # labelled(job): uint8 views and the teacher's logits on each, a batch of their own
    labelled: Callable[[SourceJob], tuple[torch.Tensor, torch.Tensor]] | None = None
    # option(text): raises a TintError unless "name:text" is a valid spelling; None: no options
    option: Callable[[str], None] | None = None


def generated(
    job: SourceJob, config: GenerateConfig, spelled: str, partners: dict[str, str] | None = None
) -> torch.Tensor:
    """`config.num` images per class made by `tint.diffusion.pipeline.generate`, kept in
    job.folder/<spelled> beside the task's one specialisation and found there again; class by
    class in the task's order. `partners`: for `config.boundary`."""
    where = job.folder / spelled.replace(":", "-")
    manifest = generate(
        job.task.supports,
        where,
        job.model(),
        config,
        resume=True,
        progress=job.progress,
        specialization_dir=job.folder / "specialization",
        cluster=job.cluster,
        partners=partners,
    )
    paths = [where / e["path"] for e in manifest["images"]]
    return uint8(torch.stack([to_tensor(load_rgb(p), job.view_size) for p in paths]))


def uint8(images: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """(B, 3, H, W) images (uint8, or float in [0, 1]) as uint8, resized to `size` if given."""
    x = as_float(images)
    return ((x if size is None else resize(x, size)) * 255).round().to(torch.uint8)
