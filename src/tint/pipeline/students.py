"""The one path from a task's supports to a trained student:

    teacher   the teacher's backbone specialised on the supports (prototype head)
    images    each source of the recipe makes its images (tint.sources), once per task
    student   a student, seeded by the task, started fresh or from a base-pretrained backbone,
              learns the supports and the teacher's labels on the images (tint.train.distill)

`tint distill`, every student of `tint benchmark`, `tint demo`, `tint sources` and the speed
command's distillation all run this code. A task's work lives in one folder (the specialisation
shared by the generated sources, their images), so a resumed run, or a second recipe on the same
task, never redoes what is on disk; within a process the teacher, each source's images and the
teacher's labelled views of them are made once for every recipe of the task.

Seeds: the task's seed varies generation and the teacher's fine-tuning; the student's weights
and its training stream are functions of (run seed, task seed) alone."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from tint.data.augment import AugmentConfig
from tint.data.images import as_float, resize
from tint.data.tasks import Task
from tint.diffusion.model import DiffusionModel
from tint.errors import TintError
from tint.io import seeds, stages
from tint.io.cluster import Cluster
from tint.models.students import Student, check_pretrained
from tint.models.teachers import Backbone, Teacher, TeacherConfig, specialize
from tint.pipeline.recipe import Recipe, RecipeSettings, resolve_init
from tint.sources import SOURCES, SourceJob
from tint.sources.base_pool import BasePool
from tint.train.distill import distill, transfer_views


def task_teacher(
    backbone: Backbone,
    task: Task,
    config: TeacherConfig | None = None,
    augmentation: AugmentConfig | None = None,
    *,
    progress: bool = False,
) -> Teacher:
    """The teacher of a task: `backbone` with a prototype head on its supports (fine-tuned as
    `config` says, with the task's seed)."""
    images, labels = task.support_tensor(backbone.input_size)
    per_class = [images[labels == i] for i in range(len(task.classes))]
    config = dataclasses.replace(config or TeacherConfig(), seed=task.seed)
    augmentation = augmentation or AugmentConfig.for_teacher(backbone.kind)
    with stages.stage("teacher"):
        return specialize(
            backbone, task.classes, per_class, config, augmentation, progress=progress
        )


def check_start(settings: RecipeSettings, recipes: list[Recipe], pretrained) -> None:
    """Raises unless the base-pretrained student `pretrained` (a directory, or None) can start
    every student of `recipes` that starts pretrained."""
    if all((r.init or settings.student_init) != "pretrained" for r in recipes):
        return
    if pretrained is None:
        raise TintError(
            "a pretrained start needs a base-pretrained student: --student-pretrained DIR "
            "(tint pretrain student)"
        )
    check_pretrained(pretrained, settings.student.arch, settings.student.width)


@torch.no_grad()
def predictions(classify, images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The class index `classify` (a student, a teacher's logits) gives each image, seen at
    `size` (the teacher's input size, where the students learnt too)."""
    views = [resize(as_float(x), size) for x in images.split(256)]
    return torch.cat([classify(x).argmax(1) for x in views])


@dataclass
class Trained:
    """A recipe's student and what it learnt from."""

    student: Student
    transfer: int  # images in its transfer set
    base: int  # labelled base views beside them
    precision: str  # what it trained in
    state: dict  # the training loop's final state


class Pipeline:
    """The settings and models of recipes run on many tasks: each task's work is a `TaskWork`.

    Args:
        settings: how every recipe runs (a `student_init` of auto is resolved by
            `resolve_init`: pretrained where there is a `pretrained` student).
        backbone: the teacher's backbone.
        model: the diffusion model, or a function that loads it at the first generated source.
        base_pool: what mined sources draw from.
        pretrained: the base-pretrained student pretrained starts take their backbone from.
        cluster: a Ray cluster whose workers specialise and render shards of a task's classes.
    """

    def __init__(
        self,
        settings: RecipeSettings,
        backbone: Backbone,
        model: DiffusionModel | Callable[[], DiffusionModel] | None = None,
        base_pool: BasePool | None = None,
        pretrained: str | Path | None = None,
        *,
        progress: bool = True,
        cluster: Cluster | None = None,
    ):
        self.cluster = cluster  # where generated sources render shards of classes
        self.settings = resolve_init(settings, pretrained)[0]
        self.backbone, self.base_pool = backbone, base_pool
        self._model, self.pretrained, self.progress = model, pretrained, progress
        self.view_size = backbone.input_size
        self.augmentation = AugmentConfig.for_teacher(backbone.kind)

    def model(self) -> DiffusionModel:
        if self._model is None:
            raise TintError("the tint, ti and augment sources need a diffusion model")
        if not isinstance(self._model, DiffusionModel):
            self._model = self._model()
        return self._model

    def init(self, recipe: Recipe) -> str:
        """How a recipe's student starts: "scratch" or "pretrained"."""
        return recipe.init or self.settings.student_init

    def on(self, task: Task, folder: str | Path) -> TaskWork:
        """The work of `task`, kept in `folder`."""
        return TaskWork(self, task, Path(folder))


class TaskWork:
    """Everything made for one task, made once: its teacher, each source's images, the teacher's
    labelled views of each transfer set, and the students of any recipes."""

    def __init__(self, pipeline: Pipeline, task: Task, folder: Path):
        self.pipeline, self.task, self.folder = pipeline, task, folder
        self._teacher: Teacher | None = None
        self._images: dict[str, torch.Tensor] = {}
        self._views: dict[tuple[str, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def teacher(self) -> Teacher:
        if self._teacher is None:
            p = self.pipeline
            self._teacher = task_teacher(
                p.backbone, self.task, p.settings.teacher_head, p.augmentation
            )
        return self._teacher

    def job(self) -> SourceJob:
        """What the sources get to make this task's images."""
        p, s = self.pipeline, self.pipeline.settings
        return SourceJob(
            task=self.task,
            view_size=p.view_size,
            folder=self.folder,
            generation=dataclasses.replace(s.generation, seed=self.task.seed),
            retrieval_num=s.retrieved_per_class,
            base_views=s.distill.base_views,
            seed=s.seed,
            select_factor=s.select_factor,
            boundary_share=s.boundary_share,
            augmentation=p.augmentation,
            model=p.model,
            base_pool=p.base_pool,
            teacher=self.teacher,
            progress=p.progress,
            cluster=p.cluster,
        )

    def images(self, spelled: str) -> torch.Tensor:
        """One source's images for this task, (M, 3, H, W) uint8 at the teacher's input size."""
        if spelled not in self._images:
            source = SOURCES[spelled.partition(":")[0]]
            self._images[spelled] = source.images(self.job(), spelled)
        return self._images[spelled]

    def use_images(self, spelled: str, images: torch.Tensor) -> None:
        """Images of a source made elsewhere (the speed command times generation itself)."""
        self._images[spelled] = images

    def transfer_set(self, recipe: Recipe) -> tuple[str, ...]:
        """The sources whose images the teacher labels for the recipe's student."""
        return tuple(s for s in recipe.sources if SOURCES[s.partition(":")[0]].images)

    def student(self, recipe: Recipe, checkpoint_dir: str | Path | None = None) -> Trained:
        """The recipe's student, trained (resumably, with a `checkpoint_dir`)."""
        p, s, task = self.pipeline, self.pipeline.settings, self.task
        names = self.transfer_set(recipe)
        transfer = torch.cat([self.images(n) for n in names]) if names else None
        beside = [SOURCES[k].labelled for k in recipe.kinds if SOURCES[k].labelled]
        base = beside[0](self.job()) if beside else None
        teacher = self.teacher() if transfer is not None or base is not None else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seeds.seed_of(s.seed, task.seed, "student", width=4))
            student = Student(s.student.config(task.classes, p.backbone.kind, p.view_size))
        if p.init(recipe) == "pretrained":
            student.init_from(p.pretrained)
        images, labels = task.support_tensor(p.view_size)
        config = dataclasses.replace(
            s.distill, seed=seeds.seed_of(s.seed, task.seed, "distill", width=4)
        )
        if p.init(recipe) == "pretrained" and config.pretrained_steps is not None:
            config = dataclasses.replace(config, steps=config.pretrained_steps)
        labelled = None
        if transfer is not None and config.views:
            if names not in self._views:
                with stages.stage("distillation"):
                    self._views[names] = transfer_views(teacher, transfer, config, p.augmentation)
            labelled = self._views[names]
        state = distill(
            student,
            teacher,
            images,
            labels,
            transfer,
            config,
            p.augmentation,
            checkpoint_dir=checkpoint_dir,
            progress=p.progress,
            desc=f"student ({recipe.name})",
            base=base,
            labelled=labelled,
        )
        return Trained(
            student,
            0 if transfer is None else len(transfer),
            0 if base is None else len(base[0]),
            state["precision"],
            state,
        )
