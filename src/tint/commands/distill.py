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

from tint.commands import Command, Options
from tint.commands.world import DEFAULT_MODEL, DEFAULT_TEACHER, shipped_student
from tint.config import SettingError, check_all, group, setting, to_dict
from tint.data.augment import AugmentConfig
from tint.data.images import LabelledImage, find_class_folders, load_rgb, to_tensor
from tint.diffusion.generation import GenerateConfig
from tint.diffusion.model import DiffusionModel
from tint.diffusion.pipeline import generate
from tint.errors import TintError
from tint.eval.methods import UnlabeledPool
from tint.eval.timing import images_per_second
from tint.io import seeds, stages
from tint.io.cluster import Cluster
from tint.io.pictures import grid
from tint.io.report import picture, table, write_report
from tint.io.run_folder import RunFolder
from tint.io.storage import write_json
from tint.models.students import Student, StudentChoice, export_onnx, onnx_difference
from tint.models.teachers import TeacherConfig, load_backbone, specialize
from tint.train.distill import (
    DistillConfig,
    agreement,
    distill,
    labelled_views,
    student_generation,
)

ONNX_TOLERANCE = 1e-3  # largest logit difference between onnxruntime and torch accepted
PROBE = 512  # generated images on which the student is compared with the teacher


@dataclass
class DistillSettings:
    support_dir: str | None = setting(None, "one sub-folder of images per class", positional=True)
    out: str | None = setting(None, "output directory (new, or with --resume)")
    model: str | None = setting(
        None, "Stable Diffusion directory in diffusers layout (default: the shipped one)"
    )
    teacher: str | None = setting(
        None,
        "teacher directory: a tint glyph teacher, or DINOv2 or CLIP vision in transformers "
        "format (default: the shipped glyph teacher)",
    )
    init: str | None = setting(
        None,
        "start from this base-pretrained student directory (tint pretrain student); 'pretrained': "
        "the glyph world's shipped one of the student's architecture",
    )
    shots: int | None = setting(
        None, "supports per class, the first by name (default all)", minimum=1
    )
    base: str | None = setting(
        None, "a folder of base-class or unlabelled images (labels ignored) for the student too"
    )
    base_use: str = setting(
        "nearest",
        "how the base folder serves: nearest (the images nearest the supports under the "
        "teacher's features join the generated images, --retrieval-num per class) or all (every "
        "image, the teacher labelling --distill-base-views views of each, --distill-base-batch of "
        "them per step)",
        choices=("nearest", "all"),
    )
    retrieval_num: int | None = setting(
        None,
        "with --base-use nearest: the base images per class nearest the supports (default: "
        "--num, as many as TINT's)",
        minimum=1,
    )
    eval: str | None = setting(None, "held-out images in class folders: report accuracy on them")
    student: StudentChoice = group(StudentChoice, "the student", prefix="student")
    generation: GenerateConfig = group(
        GenerateConfig,
        "TINT's images for the student (num per class)",
        prefix="",
        factory=student_generation,
    )
    distill: DistillConfig = group(
        DistillConfig, "the student's training", exclude=("seed", "ema_decay")
    )
    teacher_head: TeacherConfig = group(
        TeacherConfig, "the teacher's prototype head", prefix="teacher", exclude=("seed",)
    )


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
                raise SettingError(
                    "shots", f"{shots}, but class {name!r} of {support_dir} has {len(paths)} images"
                )
        files = {name: paths[:shots] for name, paths in files.items()}
    return {name: [LabelledImage(p, load_rgb(p)) for p in paths] for name, paths in files.items()}


def _read_images(directory, size) -> torch.Tensor:
    """Every image under a folder (flat, or class folders: labels are ignored) as uint8."""
    paths = [p for files in find_class_folders(directory).values() for p in files]
    return torch.stack([_uint8(to_tensor(load_rgb(p), size)) for p in paths])


def _pretrained(settings: DistillSettings) -> Path:
    """The base-pretrained student `--init` names."""
    if settings.init != "pretrained":
        return Path(settings.init)
    shipped = shipped_student(settings.student.arch)
    if shipped is None or settings.teacher is not None:
        raise SettingError(
            "init",
            f"pretrained: the glyph world ships no pretrained {settings.student.arch} student "
            "for this teacher; give a directory (tint pretrain student)",
        )
    return shipped


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


def run(settings: DistillSettings, options: Options) -> None:
    with options.cluster() as cluster:
        report = distill_folder(settings, options.resume, not options.quiet, cluster)
    s = report["student"]
    mined = ""
    if report["base"]:
        used = report["retrieved"] if report["base_use"] == "nearest" else report["base"]
        mined = f" and {used} of {report['base']} base images"
    print(
        f"{len(report['classes'])} classes, {report['generated']} generated images{mined} -> "
        f"{s['arch']} student, {s['parameters']:,} parameters ({s['size_kb']} KB), "
        f"{s['images_per_s']:,} images/s"
    )
    before, after = (report["student_vs_teacher_on_generated"][k] for k in ("before", "after"))
    print(
        f"agrees with the teacher on {after['top1_agreement']:.0%} of the generated images "
        f"(KL to the teacher {before['kl']:.3f} before distillation, {after['kl']:.3f} after)"
    )
    if "held_out" in report:
        h = report["held_out"]
        print(
            f"held-out accuracy ({h['images']} images): teacher {h['teacher_accuracy']:.1%}, "
            f"student {h['student_accuracy']:.1%}"
        )
    print(f"took {stages.summary(report['stages'], report['seconds'])}")
    print(f"wrote {settings.out}/student.onnx, student.safetensors, student.json, report.html")


def distill_folder(
    settings: DistillSettings,
    resume: bool = False,
    progress: bool = True,
    cluster: Cluster | None = None,
) -> dict:
    """Specialise, generate, label, distil and export (see the module doc); returns the report.
    With a `cluster`, its Ray workers specialise and render shards of the classes."""
    started = time.perf_counter()
    out = Path(settings.out)
    check_all(settings)
    settings.generation.validate()
    seed = settings.generation.seed
    supports = _read_supports(settings.support_dir, settings.shots)
    RunFolder(out, None, resume).check()
    classes = sorted(supports)
    backbone = load_backbone(settings.teacher or DEFAULT_TEACHER)
    view = backbone.input_size
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # the same seed, the same student
        student = Student(settings.student.config(classes, backbone.kind, view))
    if settings.init:
        student.init_from(_pretrained(settings))
    model = DiffusionModel.load(settings.model or DEFAULT_MODEL)
    base_images = _read_images(settings.base, view) if settings.base else None
    held_out = _read_labelled(settings.eval, classes, view) if settings.eval else None
    config = settings.generation
    with (
        RunFolder(out, to_dict(settings), resume, may_change=("out",)),
        stages.recording() as seconds,
    ):
        manifest = generate(
            supports, out / "generated", model, config, True, progress, cluster=cluster
        )
        generated = torch.stack(
            [
                _uint8(to_tensor(load_rgb(out / "generated" / e["path"]), view))
                for e in manifest["images"]
            ]
        )
        augmentation = AugmentConfig.for_teacher(backbone.kind)
        support_images = [
            torch.stack([to_tensor(im.image, view) for im in supports[c]]) for c in classes
        ]
        with stages.stage("teacher"):
            teacher = specialize(
                backbone,
                classes,
                support_images,
                dataclasses.replace(settings.teacher_head, seed=seed),
                augmentation,
                progress,
            )
        labels = torch.arange(len(classes)).repeat_interleave(
            torch.tensor([len(x) for x in support_images])
        )
        images = torch.cat(support_images)
        distill_config = dataclasses.replace(settings.distill, seed=seed)
        probe = generated[:: max(1, len(generated) // PROBE)].float() / 255  # about PROBE of them
        with stages.stage("scoring"):
            before = agreement(student, teacher, probe, distill_config.temperature)
        pool, base, retrieved = generated, None, 0
        if base_images is not None and settings.base_use == "nearest":
            with stages.stage("retrieval"):
                mined = UnlabeledPool(base_images, backbone)
                count = settings.retrieval_num or config.num
                picks = mined.nearest(images, count * len(classes))
            pool, retrieved = torch.cat([generated, base_images[picks]]), len(picks)
        elif base_images is not None:
            g = seeds.generator(seed, "base-views")
            base = labelled_views(teacher, base_images, distill_config.base_views, g, augmentation)
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
            base=base,
        )
        student.save_pretrained(out)
        with stages.stage("export"):
            export_onnx(student, out / "student.onnx")
            gap = onnx_difference(out / "student.onnx", student, student.normalize(images))
        if gap > ONNX_TOLERANCE:
            raise TintError(f"the ONNX export differs from the student by {gap:.2g} (logits)")

        with stages.stage("throughput"):
            speed = images_per_second(student, images[:1].expand(256, -1, -1, -1))
        with stages.stage("scoring"):
            after = agreement(student, teacher, probe, distill_config.temperature)
            held = None if held_out is None else _held_out(student, teacher, *held_out)
        report = {
            "classes": classes,
            "supports_per_class": {c: len(supports[c]) for c in classes},
            "generated": len(generated),
            "base": 0 if base_images is None else len(base_images),
            "base_use": settings.base_use,
            "retrieved": retrieved,
            "init": settings.init,
            "student": {
                "arch": settings.student.arch,
                "parameters": student.num_parameters,
                "size_kb": round((out / "student.safetensors").stat().st_size / 1024),
                "input_size": list(student.config.input_size),
                "images_per_s": round(speed),
            },
            "teacher": {"kind": backbone.kind, "finetune": settings.teacher_head.finetune},
            "distillation": {
                "steps": state["step"],
                "seconds": round(state["seconds"], 1),
                "precision": state["precision"],
            },
            "student_vs_teacher_on_generated": {
                "images": len(probe),
                "before": before,
                "after": after,
            },
            "onnx_max_difference": gap,
            "seconds": round(time.perf_counter() - started, 1),
            "stages": stages.rounded(seconds, 1),
        }
        if held is not None:
            report["held_out"] = held
        write_json(out / "report.json", report)
        _write_html(out, report, supports, manifest)
        return report


@torch.no_grad()
def _held_out(student: Student, teacher, x: torch.Tensor, y: torch.Tensor) -> dict:
    """The teacher's and the student's accuracy on held-out images x with labels y."""
    student_logits = torch.cat([student(c) for c in x.split(256)])
    return {
        "images": len(y),
        "teacher_accuracy": float((teacher.logits(x).argmax(1) == y).float().mean()),
        "student_accuracy": float((student_logits.argmax(1) == y).float().mean()),
    }


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
        ["base or unlabelled images", report["base"]],
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


COMMAND = Command(
    name="distill",
    help="your own classes in, a tiny student (safetensors + ONNX) out",
    description="Specialise the diffusion model to each class of SUPPORT_DIR with TINT, "
    "generate new images, label them with a teacher specialised on the same supports, and "
    "distil it into a tiny student. Writes OUT/student.safetensors, OUT/student.onnx, "
    "OUT/student.json (classes in output order, input_size, mean, std: the input is "
    "(RGB/255 - mean) / std, NCHW float32), OUT/report.html and OUT/run.json.",
    settings=DistillSettings,
    base=DistillSettings,
    run=run,
    options=("resume", "quiet", "threads", "ray", "task_cpus", "task_gpus"),
    task_unit="shard",
    required=("support_dir", "out"),
    aliases={
        "--num-synthetic": "generation.num",
        "--steps": "distill.steps",
        "--checkpoint-every": "distill.checkpoint_every",
        "--student": "student.arch",
        "--width": "student.width",
        "--input-size": "student.input_size",
        "--unlabeled": "base",
    },
)
