"""The methods compared on a few-shot task, and the runner that does their work once.

    teacher    the specialised teacher itself (prototype head on the supports)
    supports   a student trained on the supports alone, with ordinary augmentation
    tint       a student distilled from the teacher on TINT images; "tint:A" at alpha A,
               "tint:random" at an alpha drawn for each image
    ti         ... on textual-inversion-only images
    augment    ... on alpha = 0 reconstructions of the supports (plus ordinary augmentation)
    retrieval  ... on the nearest neighbours of the supports in an unlabelled pool

A task's work lives in one folder: its supports as PNG, the specialisation shared by tint, ti and
augment, the generated images, and one result file per finished method, so a method (or a
resumed run) never redoes what is on disk. Every student of a task starts from the same weights."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from tint.config import group
from tint.data.augment import AugmentConfig
from tint.data.images import LabelledImage, as_float, load_rgb, resize, to_tensor
from tint.diffusion.generation import GenerateConfig, reconstruct
from tint.diffusion.pipeline import generate, specialize_to
from tint.errors import TintError
from tint.io import seeds, stages
from tint.io.storage import read_json, write_json, write_png
from tint.models.students import Student, StudentChoice, check_arch
from tint.models.teachers import Backbone, TeacherConfig
from tint.models.teachers import specialize as specialize_teacher
from tint.train.distill import DistillConfig, distill, student_generation

METHODS = ("teacher", "supports", "tint", "ti", "augment", "retrieval")
DIFFUSION = ("tint", "ti", "augment")  # methods that need the diffusion model


RANDOM_ALPHA = "tint:random"


def parse_method(name: str) -> tuple[str, float | None]:
    """ "tint:0.3" -> ("tint", 0.3); any other name, "tint:random" too, -> (name, None). Raises
    on unknown names."""
    base, colon, value = name.partition(":")
    alpha = None
    if name == RANDOM_ALPHA:
        return base, None
    if base == "tint" and colon:
        try:
            alpha = float(value)
        except ValueError:
            alpha = -1.0
        if not 0 <= alpha <= 1:
            raise TintError(f"method {name!r}: tint:A needs an alpha A in [0, 1] (or tint:random)")
    if base not in METHODS or (colon and base != "tint"):
        raise TintError(
            f"unknown method {name!r} (choose from {', '.join(METHODS)}, tint:A or {RANDOM_ALPHA})"
        )
    return base, alpha


def check_methods(names: list[str]) -> None:
    if not names:
        raise TintError(f"no method given (choose from {', '.join(METHODS)})")
    for name in names:
        parse_method(name)
    if len(set(names)) != len(names):
        raise TintError(f"a method is listed twice: {', '.join(names)}")


@dataclass
class MethodSettings:
    student: StudentChoice = group(StudentChoice, "the students", prefix="student")
    generation: GenerateConfig = group(
        GenerateConfig,
        "TINT's images: num is the pool per class (generated or mined); the method sets the "
        "generator and alpha (tint:A, tint:random), and each task its seed",
        prefix="",
        factory=student_generation,
        exclude=("generator", "random_alpha"),
    )
    distill: DistillConfig = group(
        DistillConfig, "every student's training", exclude=("seed", "ema_decay")
    )
    teacher_head: TeacherConfig = group(
        TeacherConfig, "the teacher's prototype head", prefix="teacher", exclude=("seed",)
    )

    @property
    def seed(self) -> int:
        return self.generation.seed


@dataclass
class Task:
    """A few-shot task: supports (as files, for specialisation) and labelled queries."""

    classes: list[str]
    supports: dict[str, list[LabelledImage]]
    queries: torch.Tensor  # (Q, 3, H, W) in [0, 1]
    query_labels: torch.Tensor  # (Q,) indices into classes
    seed: int = 0  # varies generation and student initialisation from task to task


class UnlabeledPool:
    """Images to mine for `retrieval`, with their (normalised) teacher embeddings."""

    def __init__(self, images: torch.Tensor, backbone: Backbone, batch: int = 256):
        self.images = images  # (M, 3, H, W) uint8
        with torch.no_grad():
            self.embeddings = torch.cat(
                [F.normalize(backbone.embed(x.float() / 255), dim=1) for x in images.split(batch)]
            )

    def nearest(self, queries: torch.Tensor, count: int) -> torch.Tensor:
        """Indices of the `count` pool images nearest to the mean similarity of the queries'
        embeddings, taken round-robin so each query gets its own neighbours."""
        similarity = queries @ self.embeddings.T  # (K, M)
        ranked = similarity.argsort(1, descending=True)
        chosen: list[int] = []
        seen: set[int] = set()
        for column in ranked.T.tolist():
            for i in column:
                if i not in seen:
                    seen.add(i)
                    chosen.append(i)
                if len(chosen) == count:
                    return torch.tensor(chosen)
        return torch.tensor(chosen)


def result_file(folder: Path, method: str) -> Path:
    """Where a task's folder keeps one method's counts."""
    return folder / "results" / f"{method.replace(':', '-')}.json"


def finished_results(folder: str | Path, methods: list[str]) -> dict[str, dict] | None:
    """The counts of a task whose every method is done, read from its folder; else None."""
    paths = {m: result_file(Path(folder), m) for m in methods}
    if not all(p.is_file() for p in paths.values()):
        return None
    return {m: read_json(p) for m, p in paths.items()}


class TaskRunner:
    """Runs methods on tasks; everything a task makes is kept under its folder."""

    def __init__(
        self,
        backbone: Backbone,
        settings: MethodSettings,
        model=None,
        unlabeled: UnlabeledPool | None = None,
        progress: bool = True,
    ):
        check_arch(settings.student.arch)
        self.backbone, self.settings, self.model = backbone, settings, model
        self.unlabeled, self.progress = unlabeled, progress
        self.view_size = backbone.input_size
        self.augmentation = AugmentConfig.for_teacher(backbone.kind)

    def generate_config(self, generator: str, alpha: float, task: Task) -> GenerateConfig:
        """The generation settings of a method on a task: its own seed, generator and alpha."""
        return dataclasses.replace(
            self.settings.generation, generator=generator, alpha=alpha, seed=task.seed
        )

    def run(self, task: Task, methods: list[str], folder: str | Path) -> dict[str, dict]:
        """{method: {"correct", "total", "seconds", ...}} for each method on `task`."""
        check_methods(methods)
        folder = Path(folder)
        if "retrieval" in methods and self.unlabeled is None:
            raise TintError("the retrieval method needs an unlabelled pool")
        if any(parse_method(m)[0] in DIFFUSION for m in methods) and self.model is None:
            raise TintError("the tint, ti and augment methods need a diffusion model")
        results, teacher = {}, None
        for method in methods:
            path = result_file(folder, method)
            if path.is_file():
                results[method] = read_json(path)
                continue
            start = time.perf_counter()
            with stages.recording() as seconds:
                teacher = teacher or self.teacher(task)
                if method == "teacher":
                    classify = teacher.logits
                    extra = {"parameters": sum(p.numel() for p in self.backbone.parameters())}
                else:
                    pool = None if method == "supports" else self.pool(task, method, folder)
                    classify, precision = self.student(task, teacher, pool, method)
                    extra = {
                        "parameters": classify.num_parameters,
                        "pool": 0 if pool is None else len(pool),
                        "precision": precision,
                    }
                with torch.no_grad(), stages.stage("scoring"):
                    predicted = torch.cat(
                        [classify(self._view(x)).argmax(1) for x in task.queries.split(256)]
                    )
            end = time.perf_counter()
            results[method] = {
                "correct": int((predicted == task.query_labels).sum()),
                "total": len(task.query_labels),
                "seconds": round(end - start, 2),
                "query_seconds": round(seconds["scoring"], 4),
                "stages": stages.rounded(seconds),
                **extra,
            }
            write_json(path, results[method])
        return results

    def _view(self, images: torch.Tensor) -> torch.Tensor:
        """Images at the teacher's input size, which is also where augmentation happens."""
        return resize(as_float(images), self.view_size)

    def supports_tensor(self, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
        images = [
            torch.stack([to_tensor(im.image, self.view_size) for im in task.supports[c]])
            for c in task.classes
        ]
        labels = torch.arange(len(images)).repeat_interleave(torch.tensor([len(x) for x in images]))
        return torch.cat(images), labels

    def teacher(self, task: Task):
        images, labels = self.supports_tensor(task)
        per_class = [images[labels == i] for i in range(len(task.classes))]
        config = dataclasses.replace(self.settings.teacher_head, seed=task.seed)
        with stages.stage("teacher"):
            return specialize_teacher(
                self.backbone, task.classes, per_class, config, self.augmentation
            )

    def pool(self, task: Task, method: str, folder: Path) -> torch.Tensor:
        """The method's training images, (M, 3, H, W) uint8 at the view size."""
        s = self.settings
        if method == "retrieval":
            images, labels = self.supports_tensor(task)
            with torch.no_grad(), stages.stage("retrieval"):
                queries = F.normalize(self.backbone.embed(images), dim=1)
                picks = self.unlabeled.nearest(queries, s.generation.num * len(task.classes))
            return self._uint8(self.unlabeled.images[picks])
        if method == "augment":
            config = self.generate_config("tint", 0.0, task)
            specs = specialize_to(
                folder / "specialization", self.model, task.supports, config, True, self.progress
            )
            with stages.stage("generation"):
                made = [reconstruct(self.model, specs[c], config).cpu() for c in task.classes]
            return self._uint8(torch.cat(made))
        kind, alpha = parse_method(method)
        if kind == "tint":
            alpha = s.generation.alpha if alpha is None else alpha
        config = dataclasses.replace(
            self.generate_config(kind, 0.5 if alpha is None else alpha, task),
            random_alpha=method == RANDOM_ALPHA,
        )
        manifest = generate(
            task.supports,
            folder / method.replace(":", "-"),
            self.model,
            config,
            resume=True,
            progress=self.progress,
            specialization_dir=folder / "specialization",
        )
        paths = [folder / method.replace(":", "-") / e["path"] for e in manifest["images"]]
        return torch.stack(
            [(to_tensor(load_rgb(p), self.view_size) * 255).round().to(torch.uint8) for p in paths]
        )

    def _uint8(self, images: torch.Tensor) -> torch.Tensor:
        return (self._view(images) * 255).round().to(torch.uint8)

    def student(self, task: Task, teacher, pool, method: str) -> tuple[Student, str]:
        """The method's student, distilled, and the precision it trained in."""
        s = self.settings
        torch.manual_seed(seeds.seed_of(s.seed, task.seed, "student", width=4))
        student = Student(
            s.student.config(task.classes, self.backbone.kind, self.backbone.input_size)
        )
        images, labels = self.supports_tensor(task)
        state = distill(
            student,
            teacher if pool is not None else None,
            images,
            labels,
            pool,
            dataclasses.replace(
                s.distill, seed=seeds.seed_of(s.seed, task.seed, "distill", width=4)
            ),
            self.augmentation,
            progress=self.progress,
            desc=f"student ({method})",
        )
        return student, state["precision"]


def load_task(dataset, episode, folder: str | Path, size: tuple[int, int], seed: int = 0) -> Task:
    """An episode of a dataset as a Task: its supports written once as folder/<class>/<id>.png
    (specialisation reads files), its queries read as (Q, 3, H, W) tensors at `size`."""
    folder = Path(folder)
    supports = {}
    for name in episode.classes:
        supports[name] = []
        for file_id in episode.support[name]:
            path = folder / name / (file_id.replace("/", "_").rsplit(".", 1)[0] + ".png")
            if not path.is_file():
                write_png(path, dataset.image(name, file_id))
            supports[name].append(LabelledImage(path, load_rgb(path)))
    queries = [
        to_tensor(dataset.image(name, file_id), size)
        for name in episode.classes
        for file_id in episode.query[name]
    ]
    labels = [i for i, name in enumerate(episode.classes) for _ in episode.query[name]]
    return Task(
        episode.classes,
        supports,
        torch.stack(queries),
        torch.tensor(labels),
        seed=seeds.seed_of(seed, episode.index, width=4),
    )
