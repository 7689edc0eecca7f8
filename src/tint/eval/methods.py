"""The methods compared on a few-shot task, and the runner that does their work once.

    teacher    the specialised teacher itself (prototype head on the supports)
    supports   a student trained on the supports alone, with ordinary augmentation

Every other method is a student trained on the supports and distilled from the teacher on the
images of one or more sources, joined by "+" ("base+tint": the paper's recipe):

    tint       TINT images; "tint:A" at alpha A, "tint:random" at an alpha drawn for each image
    ti         textual-inversion-only images
    augment    alpha = 0 reconstructions of the supports (plus ordinary augmentation)
    retrieval  the nearest neighbours of the supports in the base pool (a dataset's base split)
    base       the whole base pool, `distill.base_batch` images of it in every step

tint, ti and augment give `generation.num` images per class each, retrieval `retrieval_num`
(default: as many), drawn from uniformly together; base is a batch of its own beside them.
"@pretrained" starts a method's student from a base-pretrained network (a new head), "@scratch"
from fresh weights; a name without either starts as `student_init` says.

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

from tint.config import group, setting
from tint.data.augment import AugmentConfig
from tint.data.images import LabelledImage, as_float, load_rgb, resize, to_tensor
from tint.diffusion.generation import GenerateConfig, reconstruct
from tint.diffusion.pipeline import generate, specialize_to
from tint.errors import TintError
from tint.io import seeds, stages
from tint.io.storage import read_json, write_json, write_png
from tint.models.students import Student, StudentChoice, check_arch, check_pretrained
from tint.models.teachers import Backbone, TeacherConfig
from tint.models.teachers import specialize as specialize_teacher
from tint.train.distill import (
    DistillConfig,
    distill,
    labelled_views,
    pool_views,
    student_generation,
)

SOURCES = ("tint", "ti", "augment", "retrieval", "base")
DIFFUSION = ("tint", "ti", "augment")  # sources that need the diffusion model
MINED = ("retrieval", "base")  # sources drawn from the unlabelled pool (a dataset's base split)
METHODS = ("teacher", "supports", *SOURCES)
INITS = ("scratch", "pretrained")
RANDOM_ALPHA = "tint:random"
SYNTAX = (
    "teacher, or SOURCE[+SOURCE...][@INIT]: supports, or sources from "
    f"{', '.join(SOURCES)} (tint:A for alpha A, {RANDOM_ALPHA}), INIT {' or '.join(INITS)}"
)


@dataclass(frozen=True)
class Method:
    """What a method name asks for: the teacher itself, or a student that learns from the
    supports and the teacher's labels on the images of its sources, from a fresh or a
    base-pretrained network."""

    name: str
    sources: tuple[str, ...] = ()  # kinds from SOURCES, in the name's order; () for supports
    spelled: tuple[str, ...] = ()  # the same as written ("tint:0.3"), naming their folders
    alpha: float | None = None  # tint:A
    random_alpha: bool = False  # tint:random
    init: str | None = None  # from INITS; None: the settings' `student_init`

    @property
    def teacher(self) -> bool:
        return self.name == "teacher"

    def uses(self, kinds: tuple[str, ...]) -> bool:
        return any(source in kinds for source in self.sources)


def parse_method(name: str) -> Method:
    """ "tint", "tint:0.3", "base+tint@pretrained", "supports@scratch", "teacher", ... -> their
    Method; raises on anything else (see SYNTAX)."""
    if name == "teacher":
        return Method(name)
    body, at, init = name.partition("@")
    if at and init not in INITS:
        raise TintError(f"method {name!r}: @{init} is not one of @{', @'.join(INITS)}")
    parts = body.split("+")
    if parts == ["supports"]:
        return Method(name, init=init or None)
    sources, alpha, random_alpha = [], None, False
    for part in parts:
        kind, colon, value = part.partition(":")
        if kind == "supports":
            raise TintError(
                f"method {name!r}: every student learns from the supports; leave "
                "'supports' out of a combination"
            )
        if kind not in SOURCES or (colon and kind != "tint"):
            raise TintError(f"unknown method {name!r} (a method is {SYNTAX})")
        if kind in sources:
            raise TintError(f"method {name!r} names {kind} twice")
        if part == RANDOM_ALPHA:
            random_alpha = True
        elif colon:
            try:
                alpha = float(value)
            except ValueError:
                alpha = -1.0
            if not 0 <= alpha <= 1:
                raise TintError(
                    f"method {name!r}: tint:A needs an alpha A in [0, 1] (or {RANDOM_ALPHA})"
                )
        sources.append(kind)
    return Method(name, tuple(sources), tuple(parts), alpha, random_alpha, init or None)


def check_methods(names: list[str]) -> list[Method]:
    """The methods of `names`, parsed; raises on a bad or repeated name."""
    if not names:
        raise TintError(f"no method given (a method is {SYNTAX})")
    if len(set(names)) != len(names):
        raise TintError(f"a method is listed twice: {', '.join(names)}")
    return [parse_method(name) for name in names]


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
    retrieval_num: int | None = setting(
        None,
        "retrieved images per class, alone or in a pool with generated ones (default: num, as "
        "many as each generated source)",
        minimum=1,
    )
    student_init: str = setting(
        "scratch",
        "how a student starts where its method names no @INIT: scratch, or pretrained (the "
        "backbone of the pretrained student below, with a new head)",
        choices=INITS,
    )
    student_pretrained: str | None = setting(
        None,
        "the student pretrained on base classes (tint pretrain student) that pretrained starts "
        "take their backbone from (default: the glyph world's shipped one of the student's "
        "architecture)",
    )

    @property
    def seed(self) -> int:
        return self.generation.seed

    def init(self, method: Method) -> str:
        """How `method`'s student starts: "scratch" or "pretrained"."""
        return method.init or self.student_init


def check_starts(methods: list[Method], settings: MethodSettings, pretrained) -> None:
    """Raises unless the base-pretrained student `pretrained` (a directory, or None) can start
    every student of `methods` that starts pretrained."""
    if all(settings.init(m) == "scratch" for m in methods if not m.teacher):
        return
    if pretrained is None:
        raise TintError(
            "a pretrained start needs a base-pretrained student: --student-pretrained DIR "
            "(tint pretrain student)"
        )
    check_pretrained(pretrained, settings.student.arch, settings.student.width)


@dataclass
class Task:
    """A few-shot task: supports (as files, for specialisation) and labelled queries."""

    classes: list[str]
    supports: dict[str, list[LabelledImage]]
    queries: torch.Tensor  # (Q, 3, H, W) in [0, 1]
    query_labels: torch.Tensor  # (Q,) indices into classes
    seed: int = 0  # varies generation and student initialisation from task to task


class UnlabeledPool:
    """A dataset's base split: the images `retrieval` mines and `base` learns from, with their
    (normalised) teacher embeddings."""

    def __init__(self, images: torch.Tensor, backbone: Backbone, batch: int = 256):
        self.images, self.backbone = images, backbone  # (M, 3, H, W) uint8
        with torch.no_grad():
            self.embeddings = torch.cat([self._embed(x) for x in images.split(batch)])
        self._views: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.backbone.embed(as_float(images)), dim=1)

    @torch.no_grad()
    def nearest(self, supports: torch.Tensor, count: int) -> torch.Tensor:
        """Indices of the `count` pool images nearest to the supports (K, 3, H, W) under the
        backbone's features, taken round-robin so each support gets its own neighbours."""
        similarity = self._embed(supports) @ self.embeddings.T  # (K, M)
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

    def views(
        self, count: int, seed: int, augmentation: AugmentConfig
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`count` augmented views of every image (uint8) and their normalised embeddings, made
        once for all the tasks that ask: a task's teacher labels them through its head alone."""
        key = (count, seed)
        if key not in self._views:
            g = seeds.generator(seed, "base-views")
            self._views[key] = labelled_views(self._embed, self.images, count, g, augmentation)
        return self._views[key]


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
        pretrained: str | Path | None = None,
    ):
        """`pretrained`: the base-pretrained student of pretrained starts where the settings
        name none."""
        check_arch(settings.student.arch)
        self.backbone, self.settings, self.model = backbone, settings, model
        self.unlabeled, self.progress = unlabeled, progress
        self.pretrained = settings.student_pretrained or pretrained
        self.view_size = backbone.input_size
        self.augmentation = AugmentConfig.for_teacher(backbone.kind)

    def generate_config(self, generator: str, alpha: float, task: Task) -> GenerateConfig:
        """The generation settings of a method on a task: its own seed, generator and alpha."""
        return dataclasses.replace(
            self.settings.generation, generator=generator, alpha=alpha, seed=task.seed
        )

    def check(self, methods: list[Method]) -> None:
        """Raises if this runner lacks what one of `methods` needs."""
        if any(m.uses(MINED) for m in methods) and self.unlabeled is None:
            raise TintError("the retrieval and base sources need an unlabelled pool")
        if any(m.uses(DIFFUSION) for m in methods) and self.model is None:
            raise TintError("the tint, ti and augment sources need a diffusion model")
        check_starts(methods, self.settings, self.pretrained)

    def run(self, task: Task, methods: list[str], folder: str | Path) -> dict[str, dict]:
        """{method: {"correct", "total", "seconds", ...}} for each method on `task`."""
        parsed = check_methods(methods)
        self.check(parsed)
        folder = Path(folder)
        results, teacher = {}, None
        shared = {}  # the pools' labelled views, made once for the students of this task
        for method in parsed:
            path = result_file(folder, method.name)
            if path.is_file():
                results[method.name] = read_json(path)
                continue
            start = time.perf_counter()
            with stages.recording() as seconds:
                teacher = teacher or self.teacher(task)
                if method.teacher:
                    classify = teacher.logits
                    extra = {"parameters": sum(p.numel() for p in self.backbone.parameters())}
                else:
                    pool = self.pool(task, method, folder)
                    base = self.base(teacher) if "base" in method.sources else None
                    classify, precision = self.student(task, teacher, pool, base, method, shared)
                    extra = {
                        "parameters": classify.num_parameters,
                        "pool": 0 if pool is None else len(pool),
                        "precision": precision,
                    }
                    if base is not None or self.settings.init(method) != "scratch":
                        extra["base"] = 0 if base is None else len(base[0])
                        extra["init"] = self.settings.init(method)
                with torch.no_grad(), stages.stage("scoring"):
                    predicted = torch.cat(
                        [classify(self._view(x)).argmax(1) for x in task.queries.split(256)]
                    )
            end = time.perf_counter()
            results[method.name] = {
                "correct": int((predicted == task.query_labels).sum()),
                "total": len(task.query_labels),
                "seconds": round(end - start, 2),
                "query_seconds": round(seconds["scoring"], 4),
                "stages": stages.rounded(seconds),
                **extra,
            }
            write_json(path, results[method.name])
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

    def pool(self, task: Task, method: Method, folder: Path) -> torch.Tensor | None:
        """The images of the method's sources but the base pool, (M, 3, H, W) uint8 at the view
        size, the same number from each; None where there are none."""
        parts = [
            self.source(task, kind, spelled, method, folder)
            for kind, spelled in zip(method.sources, method.spelled)
            if kind != "base"
        ]
        return torch.cat(parts) if parts else None

    def source(
        self, task: Task, kind: str, spelled: str, method: Method, folder: Path
    ) -> torch.Tensor:
        """One source's images (see `pool`); generated ones are kept in folder/<spelled>, so
        the methods that share a source share its images."""
        s = self.settings
        if kind == "retrieval":
            images, labels = self.supports_tensor(task)
            with stages.stage("retrieval"):
                count = s.retrieval_num or s.generation.num
                picks = self.unlabeled.nearest(images, count * len(task.classes))
            return self._uint8(self.unlabeled.images[picks])
        if kind == "augment":
            config = self.generate_config("tint", 0.0, task)
            specs = specialize_to(
                folder / "specialization", self.model, task.supports, config, True, self.progress
            )
            with stages.stage("generation"):
                made = [reconstruct(self.model, specs[c], config).cpu() for c in task.classes]
            return self._uint8(torch.cat(made))
        alpha = 0.5
        if kind == "tint":
            alpha = s.generation.alpha if method.alpha is None else method.alpha
        config = dataclasses.replace(
            self.generate_config(kind, alpha, task),
            random_alpha=kind == "tint" and method.random_alpha,
        )
        where = folder / spelled.replace(":", "-")
        manifest = generate(
            task.supports,
            where,
            self.model,
            config,
            resume=True,
            progress=self.progress,
            specialization_dir=folder / "specialization",
        )
        paths = [where / e["path"] for e in manifest["images"]]
        return torch.stack(
            [(to_tensor(load_rgb(p), self.view_size) * 255).round().to(torch.uint8) for p in paths]
        )

    def base(self, teacher) -> tuple[torch.Tensor, torch.Tensor]:
        """The base pool's labelled views and the task teacher's logits on each."""
        views, embeddings = self.unlabeled.views(
            self.settings.distill.base_views, self.settings.seed, self.augmentation
        )
        with torch.no_grad(), stages.stage("teacher_labels"):
            if self.settings.teacher_head.finetune == "last":  # its backbone is the task's own
                return views, teacher.logits(as_float(views))
            return views, teacher.head(embeddings)

    def _uint8(self, images: torch.Tensor) -> torch.Tensor:
        return (self._view(images) * 255).round().to(torch.uint8)

    def student(
        self, task: Task, teacher, pool, base, method: Method, shared: dict | None = None
    ) -> tuple[Student, str]:
        """The method's student, distilled, and the precision it trained in. `shared` keeps
        each pool's labelled views for the task's other students of the same sources."""
        s = self.settings
        torch.manual_seed(seeds.seed_of(s.seed, task.seed, "student", width=4))
        student = Student(
            s.student.config(task.classes, self.backbone.kind, self.backbone.input_size)
        )
        if s.init(method) == "pretrained":
            student.init_from(self.pretrained)
        images, labels = self.supports_tensor(task)
        config = dataclasses.replace(
            s.distill, seed=seeds.seed_of(s.seed, task.seed, "distill", width=4)
        )
        labelled = None
        if pool is not None and config.views:
            key = tuple(n for k, n in zip(method.sources, method.spelled) if k != "base")
            shared = {} if shared is None else shared
            if key not in shared:
                with stages.stage("distillation"):
                    shared[key] = pool_views(teacher, pool, config, self.augmentation)
            labelled = shared[key]
        state = distill(
            student,
            teacher if pool is not None or base is not None else None,
            images,
            labels,
            pool,
            config,
            self.augmentation,
            progress=self.progress,
            desc=f"student ({method.name})",
            base=base,
            labelled=labelled,
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
