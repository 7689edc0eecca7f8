"""`tint distill`: a user's own classes in, a tiny deployable student out (see
`tint.pipeline.distill` for what it writes)."""

from __future__ import annotations

from tint.commands import Command, Options
from tint.commands.world import DEFAULT_MODEL, DEFAULT_TEACHER, pretrained_student
from tint.io import stages
from tint.pipeline.distill import DistillSettings, distill, plan_distill


def distill_run(
    settings: DistillSettings,
    supports=None,
    held_out=None,
    *,
    resume: bool = False,
    progress: bool = True,
    cluster=None,
) -> dict:
    """`tint distill` and `tint.distill`: the settings with the world's defaults filled in (the
    shipped model and teacher, and with the shipped teacher its pretrained student: the one
    place they are), then the pipeline; returns the report."""
    student = pretrained_student(settings.setup.student.arch, settings.teacher)
    plan = plan_distill(settings, DEFAULT_MODEL, DEFAULT_TEACHER, student)
    report = distill(plan, supports, held_out, resume=resume, progress=progress, cluster=cluster)
    return {**report, "out": str(plan.settings.out)}


def run(settings: DistillSettings, options: Options) -> None:
    with options.cluster() as cluster:
        report = distill_run(
            settings, resume=options.resume, progress=not options.quiet, cluster=cluster
        )
    s = report["student"]
    images = " and ".join(f"{n:,} {source}" for source, n in report["images"].items())
    if report["base_views"]:
        images += f"{' and ' if images else ''}{report['base_views']:,} base"
    start = "a pretrained" if report["init"] == "pretrained" else "a fresh"
    print(
        f"{len(report['classes'])} classes, {f'{images} images' if images else 'supports alone'}"
        f" -> {s['arch']} student from {start} start, {s['parameters']:,} parameters "
        f"({s['size_kb']} KB), {s['images_per_s']:,} images/s"
    )
    follows = report["student_vs_teacher"]
    print(
        f"agrees with the teacher on {follows['top1_agreement']:.0%} of the images it learnt "
        f"from (KL to the teacher {follows['kl']:.3f})"
    )
    if "held_out" in report:
        h = report["held_out"]
        print(
            f"held-out accuracy ({h['images']} images): teacher {h['teacher_accuracy']:.1%}, "
            f"student {h['student_accuracy']:.1%}"
        )
    print(f"took {stages.summary(report['stages'], report['seconds'])}")
    print(f"wrote {report['out']}/student.onnx, student.safetensors, student.json, report.html")


COMMAND = Command(
    name="distill",
    help="your own classes in, a tiny student (safetensors + ONNX) out",
    description="Specialise the teacher to the classes of SUPPORT_DIR, make the images the "
    "method names (by default TINT's: the diffusion model specialised to each class, new "
    "images generated), label them with the teacher and distil it into a tiny student, by "
    "default from the base-pretrained student where one exists. Writes "
    "OUT/student.safetensors, OUT/student.onnx, OUT/student.json (classes in output order, "
    "input_size, mean, std: the input is (RGB/255 - mean) / std, NCHW float32), "
    "OUT/report.html and OUT/run.json.",
    settings=DistillSettings,
    base=DistillSettings,
    run=run,
    options=("resume", "quiet", "threads", "ray", "task_cpus", "task_gpus"),
    task_unit="shard",
    required=("support_dir", "out"),
    aliases={
        "--num-synthetic": "setup.generation.num",
        "--steps": "setup.distill.steps",
        "--checkpoint-every": "setup.distill.checkpoint_every",
        "--student": "setup.student.arch",
        "--width": "setup.student.width",
        "--input-size": "setup.student.input_size",
        "--unlabeled": "base",
        "--init": "setup.student_init",
    },
)
