"""A user's classes in, a tiny deployable student out: the pipeline's recipe on one task, the
student exported and reported (`tint distill`, `tint.distill`).

    OUT/student.safetensors, OUT/student.json   the student (tint.models.students)
    OUT/student.onnx                            the same network for onnxruntime
    OUT/report.html, OUT/report.json            what was made, how well the student follows
    OUT/specialization/<class>/                 the classes' TINT specialisation
    OUT/tint/                                   a generated source's images and manifest
    OUT/supports/<class>/                       supports given in Python, as PNG
    OUT/training/                               the student's checkpoint, for --resume
    OUT/run.json                                the settings, checked by --resume

Every input is read and checked before anything is written. The class specialisations and the
generated images are made once and serve both the teacher's labels and the student's training."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from tint.config import check_all, group, setting, to_dict
from tint.data.images import load_rgb
from tint.data.tasks import Task, checked_images, held_out_images
from tint.diffusion.model import MODEL_CONFIG_HELP, MODEL_HELP, DiffusionModel, check_model_dir
from tint.errors import TintError
from tint.io import stages
from tint.io.cluster import Cluster
from tint.io.pictures import grid
from tint.io.pretrained import model_folder
from tint.io.report import picture, table, write_report
from tint.io.run_folder import RunFolder
from tint.io.storage import read_json, write_json
from tint.io.timing import images_per_second
from tint.models.students import Student, export_onnx, onnx_difference
from tint.models.teachers import load_backbone
from tint.pipeline.recipe import SYNTAX, Recipe, RecipeSettings, parse_recipe, resolve_init
from tint.pipeline.students import Pipeline, check_start, predictions
from tint.sources import GENERATED, MINED
from tint.sources.base_pool import BasePool
from tint.train.distill import agreement

ONNX_TOLERANCE = 1e-3  # largest logit difference between onnxruntime and torch accepted
PROBE = 512  # transfer-set images on which the student is compared with the teacher


@dataclass
class DistillSettings:
    support_dir: str | None = setting(None, "one sub-folder of images per class", positional=True)
    out: str | None = setting(None, "output directory (new, or with --resume)")
    method: str | None = setting(
        None,
        f"what the student learns from and how it starts, as tint benchmark's methods: {SYNTAX} "
        "(default: tint, and retrieval with --base)",
    )
    model: str | None = setting(None, MODEL_HELP)
    model_config: str | None = setting(None, MODEL_CONFIG_HELP)
    teacher: str | None = setting(
        None,
        "teacher directory: a tint glyph teacher, or DINOv2 or CLIP vision in transformers "
        "format (default: the shipped glyph teacher)",
    )
    shots: int | None = setting(
        None, "supports per class, the first by name (default all)", minimum=1
    )
    base: str | None = setting(
        None,
        "base-class or unlabelled images (labels ignored) that the retrieval and base sources "
        "draw from: a folder (any depth), or a text file listing image paths, one a line",
    )
    eval: str | None = setting(None, "held-out images in class folders: report accuracy on them")
    task_seed: int | None = setting(
        None,
        "the task's own seed, which varies generation, the teacher's fine-tuning and the "
        "student's start and batches (default: --seed); a benchmark episode's is its "
        "results.json row's task_seed",
    )
    setup: RecipeSettings = group(RecipeSettings, "the recipe's settings", prefix="")


@dataclass(frozen=True)
class DistillPlan:
    """A distillation with everything decided before anything is read or written."""

    settings: DistillSettings  # the method and the student's start filled in
    recipe: Recipe
    teacher: str  # the teacher's folder
    model: str | None  # the diffusion model's folder, where the recipe needs it
    pretrained: str | None  # the base-pretrained student of a pretrained start
    note: str | None = None  # what the resolution of the student's start has to say


def plan_distill(
    settings: DistillSettings,
    model_dir: str | Path,
    teacher_dir: str | Path,
    student_dir: str | Path | None = None,
) -> DistillPlan:
    """The distillation of `settings`, its defaults filled in: the method (tint, or
    retrieval with a base folder), the student's start, and the model, teacher and
    base-pretrained student that the settings name, or these."""
    check_all(settings)
    settings.setup.generation.validate()
    method = settings.method or ("retrieval" if settings.base else "tint")
    recipe = parse_recipe(method)
    if recipe.needs(MINED) and not settings.base:
        raise TintError(f"method {method}: its base images need --base DIR")
    if settings.base and not recipe.needs(MINED):
        raise TintError(
            f"method {method} uses no base images: name retrieval or base in it, or leave out "
            "--base"
        )
    pretrained = settings.setup.student_pretrained or student_dir
    pretrained = None if pretrained is None else str(pretrained)
    setup, note = resolve_init(settings.setup, pretrained)
    check_start(setup, [recipe], pretrained)
    return DistillPlan(
        dataclasses.replace(settings, method=method, setup=setup),
        recipe,
        str(model_folder(settings.teacher or teacher_dir, "teacher directory")),
        str(check_model_dir(settings.model or model_dir, settings.model_config))
        if recipe.needs(GENERATED)
        else None,
        pretrained if (recipe.init or setup.student_init) == "pretrained" else None,
        None if recipe.init else note,
    )


def distill(
    plan: DistillPlan,
    supports: Mapping | None = None,
    held_out: Mapping | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    cluster: Cluster | None = None,
) -> dict:
    """Train the plan's student on its task, export it and report (see the module doc); returns
    the report. The supports are the settings' folder, or `supports` ({class: images}); the
    held-out images the settings' folder or `held_out`. With a `cluster`, its Ray workers
    specialise and render shards of the classes."""
    started = time.perf_counter()
    s, recipe = plan.settings, plan.recipe
    out = Path(s.out)
    seed = s.setup.seed if s.task_seed is None else s.task_seed
    given = None if supports is None else checked_images(supports)
    task = None if given is not None else Task.from_folder(s.support_dir, s.shots, seed)
    RunFolder(out, None, resume).check()
    backbone = load_backbone(plan.teacher)
    evaluated = held_out if held_out is not None else s.eval
    classes = task.classes if given is None else list(given)
    held = None
    if evaluated is not None:
        held = held_out_images(evaluated, classes, backbone.input_size)
    base_pool = BasePool.from_files(s.base, backbone, progress) if s.base else None
    model = None if plan.model is None else DiffusionModel.load(plan.model)
    pipeline = Pipeline(
        s.setup, backbone, model, base_pool, plan.pretrained, progress=progress, cluster=cluster
    )
    if plan.note:  # every input is checked: the run starts
        print(f"note: {plan.note}", file=sys.stderr)
    with RunFolder(out, to_dict(s), resume, may_change=("out",)), stages.recording() as seconds:
        if given is not None:
            task = Task.from_images(given, out / "supports", seed)
        if held is not None:
            task.queries, task.query_labels = held
        work = pipeline.on(task, out)
        trained = work.student(recipe, checkpoint_dir=out / "training")
        student = trained.student
        student.save_pretrained(out)
        images, _ = task.support_tensor(backbone.input_size)
        with stages.stage("export"):
            export_onnx(student, out / "student.onnx")
            gap = onnx_difference(out / "student.onnx", student, student.normalize(images))
        if gap > ONNX_TOLERANCE:
            raise TintError(f"the ONNX export differs from the student by {gap:.2g} (logits)")
        with stages.stage("throughput"):
            speed = images_per_second(student, images[:1].expand(256, -1, -1, -1), 0.25)
        with stages.stage("scoring"):
            names = work.transfer_set(recipe)
            taught = torch.cat([work.images(n) for n in names]).float() / 255 if names else images
            probe = taught[:: max(1, len(taught) // PROBE)]  # about PROBE of them
            follows = agreement(student, work.teacher(), probe, s.setup.distill.temperature)
            scored = None if task.queries is None else _held_out(student, work.teacher(), task)
        report = {
            "classes": task.classes,
            "supports_per_class": {c: len(task.supports[c]) for c in task.classes},
            "method": recipe.name,
            "init": pipeline.init(recipe),
            "images": {n: len(work.images(n)) for n in names},
            "base_pool": 0 if base_pool is None else len(base_pool),
            "base_views": trained.base,
            "student": {
                "arch": s.setup.student.arch,
                "parameters": student.num_parameters,
                "size_kb": round((out / "student.safetensors").stat().st_size / 1024),
                "input_size": list(student.config.input_size),
                "images_per_s": round(speed),
            },
            "teacher": {"kind": backbone.kind, "finetune": s.setup.teacher_head.finetune},
            "distillation": {
                "steps": trained.state["step"],
                "seconds": round(trained.state["seconds"], 1),
                "precision": trained.precision,
            },
            "student_vs_teacher": {"images": len(probe), **follows},
            "onnx_max_difference": gap,
            "seconds": round(time.perf_counter() - started, 1),
            "stages": stages.rounded(seconds, 1),
        }
        if scored is not None:
            report["held_out"] = scored
        write_json(out / "report.json", report)
        _write_html(out, report, task)
        return report


def _held_out(student: Student, teacher, task: Task) -> dict:
    """The teacher's and the student's accuracy on the task's held-out images."""
    size, y = teacher.backbone.input_size, task.query_labels

    def accuracy(classify) -> float:
        return int((predictions(classify, task.queries, size) == y).sum()) / len(y)

    return {
        "images": len(y),
        "teacher_accuracy": accuracy(teacher.logits),
        "student_accuracy": accuracy(student),
    }


def _write_html(out: Path, report: dict, task: Task) -> None:
    """The student's figures, and per class its supports beside the first generated images."""
    made = {name: [] for name in report["classes"]}
    for source in report["images"]:
        manifest = out / source.replace(":", "-") / "manifest.json"
        if manifest.is_file():
            for entry in read_json(manifest)["images"]:
                made[entry["class"]].append(manifest.parent / entry["path"])
            break
    rows = [
        [*(im.image for im in task.supports[c][:5]), None, *map(load_rgb, made[c][:8])]
        for c in report["classes"]
    ]
    s = report["student"]
    figures = [
        ["method", report["method"]],
        ["student", f"{s['arch']}, from {report['init']}"],
        ["parameters", s["parameters"]],
        ["size (KB)", s["size_kb"]],
        ["images/s (batch 256, this machine)", s["images_per_s"]],
        *([f"{n} images", count] for n, count in report["images"].items()),
        ["base images", report["base_pool"]],
        [
            "top-1 agreement with the teacher on the images it learnt from",
            report["student_vs_teacher"]["top1_agreement"],
        ],
        ["ONNX vs torch, largest logit difference", f"{report['onnx_max_difference']:.1e}"],
    ]
    if "held_out" in report:
        h = report["held_out"]
        figures += [
            [f"teacher accuracy on {h['images']} held-out images", h["teacher_accuracy"]],
            [f"student accuracy on {h['images']} held-out images", h["student_accuracy"]],
        ]
    title = ", ".join(report["classes"])
    write_report(
        out / "report.html",
        f"tint distill: {len(report['classes'])} classes",
        [
            ("Student", table(["", ""], figures)),
            ("Supports | generated", picture(grid(rows, cell=64), title)),
        ],
    )
