"""`tint distill`: a user's own classes in, a tiny deployable student out.

    OUT/student.safetensors, OUT/student.json   the student (tint.models.students)
    OUT/student.onnx                            the same network for onnxruntime
    OUT/report.html, OUT/report.json            what was made, how well the student follows
    OUT/generated/                              TINT images and the specialisations (`generate`)
    OUT/training/                               the student's checkpoint, for --resume
    OUT/run.json                                the settings, checked by --resume

Every input is read and checked before anything is written. The class specialisations and the
generated images are made once and serve both the teacher's labels and the student's training."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from tint import world
from tint.data.augment import AugmentConfig
from tint.data.images import LabelledImage, find_class_folders, load_rgb, to_tensor
from tint.diffusion.model import DiffusionModel
from tint.diffusion.pipeline import GenerateConfig, generate
from tint.distill.training import DISTILL_ALPHA, DistillConfig, agreement, distill
from tint.errors import TintError
from tint.eval.report import picture, table, write_report
from tint.eval.timing import images_per_second
from tint.models.students import (
    Student,
    StudentConfig,
    check_arch,
    export_onnx,
    onnx_difference,
)
from tint.models.teachers import FINETUNE, TeacherConfig, load_backbone, specialize
from tint.pictures import grid
from tint.run_folder import RunFolder
from tint.storage import write_json

ONNX_TOLERANCE = 1e-3  # largest logit difference between onnxruntime and torch accepted
PROBE = 512  # generated images on which the student is compared with the teacher


@dataclass
class DistillSettings:
    student: str = "conv4"  # conv4, resnet12 or resnet18
    width: float = 1.0  # the student's channel multiplier
    input_size: tuple[int, int] | None = None  # (H, W); None: the glyph teacher's, else 84x84
    init: str | None = None  # a base-pretrained student directory to start from
    shots: int | None = None  # supports per class (the first, by file name); None: all
    num_synthetic: int = 100  # generated images per class
    alpha: float = DISTILL_ALPHA  # TINT noise blend
    ti_steps: int | None = None  # textual-inversion steps (None: the fast preset's)
    ddim_steps: int = 25  # DDIM steps, for null-text inversion and sampling alike
    teacher_finetune: str = "none"  # none, head or last
    steps: int = 1000  # distillation steps
    batch: int = 64
    checkpoint_every: int = 250  # distillation steps between checkpoints (for --resume)
    seed: int = 0


def _read_supports(support_dir, shots: int | None) -> dict[str, list[LabelledImage]]:
    files = find_class_folders(support_dir)
    if len(files) < 2:
        found = ", ".join(files) or "none"
        raise TintError(
            f"{support_dir}: a classifier needs at least 2 classes, found {len(files)} ({found})"
        )
    if shots is not None:
        for name, paths in files.items():
            if len(paths) < shots:
                raise TintError(
                    f"{support_dir}: class {name!r} has {len(paths)} images but --shots {shots} "
                    "were asked for"
                )
        files = {name: paths[:shots] for name, paths in files.items()}
    return {name: [LabelledImage(p, load_rgb(p)) for p in paths] for name, paths in files.items()}


def _read_images(directory, size) -> torch.Tensor:
    """Every image under a folder (flat, or class folders: labels are ignored) as uint8."""
    paths = [p for files in find_class_folders(directory).values() for p in files]
    return torch.stack([_uint8(to_tensor(load_rgb(p), size)) for p in paths])


def _uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().to(torch.uint8)


def _read_labelled(directory, classes: list[str], size) -> tuple[torch.Tensor, torch.Tensor]:
    """A held-out set: class folders named like the supports' classes."""
    found = find_class_folders(directory)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise TintError(f"{directory}: class {unknown[0]!r} is not one of the supports' classes")
    images, labels = [], []
    for name, paths in found.items():
        images += [to_tensor(load_rgb(p), size) for p in paths]
        labels += [classes.index(name)] * len(paths)
    return torch.stack(images), torch.tensor(labels)


def distill_folder(
    support_dir: str | Path,
    out: str | Path,
    settings: DistillSettings,
    model_dir: str | Path | None = None,
    teacher_dir: str | Path | None = None,
    unlabeled_dir: str | Path | None = None,
    eval_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Specialise, generate, label, distil and export (see the module doc); returns the report."""
    started = time.perf_counter()
    out = Path(out)
    check_arch(settings.student)
    if settings.teacher_finetune not in FINETUNE:
        raise TintError(
            f"unknown --teacher-finetune {settings.teacher_finetune!r} "
            f"(choose from {', '.join(FINETUNE)})"
        )
    supports = _read_supports(support_dir, settings.shots)
    RunFolder(out, None, resume).check()
    classes = sorted(supports)
    backbone = load_backbone(teacher_dir or world.DEFAULT_TEACHER)
    view = backbone.input_size
    input_size = settings.input_size or (view if backbone.kind == "glyph" else (84, 84))
    with torch.random.fork_rng():
        torch.manual_seed(settings.seed)  # the same seed, the same student
        student = Student(
            StudentConfig(settings.student, settings.width, classes, tuple(input_size))
        )
    if settings.init:
        student.init_from(settings.init)
    model = DiffusionModel.load(model_dir or world.DEFAULT_MODEL)
    unlabeled = _read_images(unlabeled_dir, view) if unlabeled_dir else None
    held_out = _read_labelled(eval_dir, classes, view) if eval_dir else None
    config = GenerateConfig.from_preset(
        "fast",
        num=settings.num_synthetic,
        alpha=settings.alpha,
        ti_steps=settings.ti_steps,
        steps=settings.ddim_steps,
        seed=settings.seed,
    )
    config.validate()
    run = {
        **dataclasses.asdict(settings),
        "supports": str(Path(support_dir).resolve()),
        "model": str(Path(model_dir or world.DEFAULT_MODEL).resolve()),
        "teacher": str(Path(teacher_dir or world.DEFAULT_TEACHER).resolve()),
        "unlabeled": str(Path(unlabeled_dir).resolve()) if unlabeled_dir else None,
    }
    run = {k: list(v) if isinstance(v, tuple) else v for k, v in run.items()}
    with RunFolder(out, run, resume):
        manifest = generate(supports, out / "generated", model, config, True, progress)
        generated = torch.stack(
            [
                _uint8(to_tensor(load_rgb(out / "generated" / e["path"]), view))
                for e in manifest["images"]
            ]
        )
        pool = generated if unlabeled is None else torch.cat([generated, unlabeled])
        augmentation = AugmentConfig() if backbone.kind == "glyph" else AugmentConfig.for_photos()
        support_images = [
            torch.stack([to_tensor(im.image, view) for im in supports[c]]) for c in classes
        ]
        teacher = specialize(
            backbone,
            classes,
            support_images,
            TeacherConfig(finetune=settings.teacher_finetune, seed=settings.seed),
            augmentation,
            progress,
        )
        labels = torch.arange(len(classes)).repeat_interleave(
            torch.tensor([len(x) for x in support_images])
        )
        images = torch.cat(support_images)
        distill_config = DistillConfig(
            steps=settings.steps,
            batch=settings.batch,
            checkpoint_every=settings.checkpoint_every,
            seed=settings.seed,
        )
        probe = generated[:: max(1, len(generated) // PROBE)].float() / 255  # about PROBE of them
        before = agreement(student, teacher, probe, distill_config.temperature)
        state = distill(
            student,
            teacher,
            images,
            labels,
            pool,
            distill_config,
            augmentation,
            checkpoint_dir=out / "training",
            progress=progress,
        )
        student.save_pretrained(out)
        export_onnx(student, out / "student.onnx")
        gap = onnx_difference(out / "student.onnx", student, student.normalize(images))
        if gap > ONNX_TOLERANCE:
            raise TintError(f"the ONNX export differs from the student by {gap:.2g} (logits)")

        report = {
            "classes": classes,
            "supports_per_class": {c: len(supports[c]) for c in classes},
            "generated": len(generated),
            "unlabeled": 0 if unlabeled is None else len(unlabeled),
            "student": {
                "arch": settings.student,
                "parameters": student.num_parameters,
                "size_kb": round((out / "student.safetensors").stat().st_size / 1024),
                "input_size": list(input_size),
                "images_per_s": round(
                    images_per_second(student, images[:1].expand(256, -1, -1, -1))
                ),
            },
            "teacher": {"kind": backbone.kind, "finetune": settings.teacher_finetune},
            "distillation": {"steps": state["step"], "seconds": round(state["seconds"], 1)},
            "student_vs_teacher_on_generated": {
                "images": len(probe),
                "before": before,
                "after": agreement(student, teacher, probe, distill_config.temperature),
            },
            "onnx_max_difference": gap,
            "seconds": round(time.perf_counter() - started, 1),
        }
        if held_out is not None:
            x, y = held_out
            with torch.no_grad():
                report["held_out"] = {
                    "images": len(y),
                    "teacher_accuracy": float((teacher.logits(x).argmax(1) == y).float().mean()),
                    "student_accuracy": float(
                        (torch.cat([student(c) for c in x.split(256)]).argmax(1) == y)
                        .float()
                        .mean()
                    ),
                }
        write_json(out / "report.json", report)
        _write_html(out, report, supports, manifest)
        return report


def _write_html(out: Path, report: dict, supports, manifest) -> None:
    rows = []
    for name in report["classes"]:
        made = [e["path"] for e in manifest["images"] if e["class"] == name][:8]
        rows.append(
            [
                *(im.image for im in supports[name][:5]),
                None,
                *(load_rgb(out / "generated" / p) for p in made),
            ]
        )
    s = report["student"]
    figures = [
        ["student", s["arch"]],
        ["parameters", s["parameters"]],
        ["size (KB)", s["size_kb"]],
        ["images/s (batch 256, this machine)", s["images_per_s"]],
        ["generated images", report["generated"]],
        ["unlabelled images", report["unlabeled"]],
        [
            "top-1 agreement with the teacher on the generated images",
            report["student_vs_teacher_on_generated"]["after"]["top1_agreement"],
        ],
        ["ONNX vs torch, largest logit difference", f"{report['onnx_max_difference']:.1e}"],
    ]
    if "held_out" in report:
        h = report["held_out"]
        figures += [
            [f"teacher accuracy on {h['images']} held-out images", h["teacher_accuracy"]],
            [f"student accuracy on {h['images']} held-out images", h["student_accuracy"]],
        ]
    write_report(
        out / "report.html",
        f"tint distill: {len(report['classes'])} classes",
        [
            ("Student", table(["", ""], figures)),
            ("Supports | generated", picture(grid(rows, cell=64), ", ".join(report["classes"]))),
        ],
    )
