"""`tint demo`: one 5-way 5-shot episode of the glyph world, end to end, on a laptop CPU.

Five novel glyph classes (never seen by the shipped models) that look alike (a hard episode: a
random class and the four most like it under the teacher's features), 5 supports each: the shipped
base teacher is specialised on the supports (prototype head); a student is trained on the
supports alone; the shipped diffusion model is specialised with TINT and generates new images of
each class, which the teacher labels and a second student learns from. All three are scored on
the episode's 15 held-out queries per class. Writes OUT/report.html and OUT/summary.json; a second
run reuses everything finished in OUT."""

from __future__ import annotations

import time
from pathlib import Path

from tint import world
from tint.data.datasets import open_dataset
from tint.data.episodes import sample_episode
from tint.data.images import load_rgb
from tint.diffusion.model import DiffusionModel
from tint.distill.training import DistillConfig
from tint.eval.benchmark import class_similarity
from tint.eval.methods import MethodSettings, TaskRunner, load_task
from tint.eval.report import bar_chart, picture, table, write_report
from tint.eval.timing import images_per_second
from tint.models.students import Student, StudentConfig
from tint.models.teachers import load_backbone
from tint.pictures import grid
from tint.storage import read_json, write_json

WAYS, SHOTS, QUERIES, EPISODE = 5, 5, 15, 0
METHODS = ["teacher", "supports", "tint"]
NAMES = {"teacher": "teacher", "supports": "supports-only student", "tint": "TINT student"}
SETTINGS = MethodSettings(student="conv4", synthetic=40, distill=DistillConfig(steps=400, batch=64))


def run(out: str | Path, progress: bool = True) -> dict:
    """Run the demo in `out` (finished work is reused) and return its summary."""
    out = Path(out)
    start = time.perf_counter()
    dataset = open_dataset("glyphs", "novel")
    backbone = load_backbone(world.DEFAULT_TEACHER)
    similarity = class_similarity(dataset, backbone, progress)
    episode = sample_episode(dataset, WAYS, SHOTS, QUERIES, 0, EPISODE, similarity)
    task = load_task(dataset, episode, out / "supports", backbone.input_size)
    runner = TaskRunner(
        backbone, SETTINGS, model=DiffusionModel.load(world.DEFAULT_MODEL), progress=progress
    )
    results = runner.run(task, METHODS, out)

    speed = _speeds(backbone, task)
    rows = []
    for method in METHODS:
        r = results[method]
        rows.append(
            {
                "method": NAMES[method],
                "accuracy": r["correct"] / r["total"],
                "parameters": r["parameters"],
                "size_kb": round(r["parameters"] * 4 / 1024),
                "images_per_s": round(speed[method]),
            }
        )
    picture_rows = _picture_rows(out, task)
    summary = {
        "classes": task.classes,
        "shots": SHOTS,
        "queries_per_class": QUERIES,
        "generated_per_class": SETTINGS.synthetic,
        "results": rows,
        "seconds": round(time.perf_counter() - start, 1),
        "report": str(out / "report.html"),
    }
    _write_report(out, summary, picture_rows)
    write_json(out / "summary.json", summary)
    return summary


def _speeds(backbone, task) -> dict[str, float]:
    """Images per second on this machine, batch 256, for the teacher's backbone and a student."""
    images = task.queries[:1].expand(256, -1, -1, -1).contiguous()
    student = Student(StudentConfig(SETTINGS.student, classes=task.classes)).eval()
    backbone_speed = images_per_second(backbone.embed, images)
    student_speed = images_per_second(student, images)
    return {"teacher": backbone_speed, "supports": student_speed, "tint": student_speed}


def _picture_rows(out: Path, task) -> list[list]:
    """Per class: its supports, a gap, then its first generated images."""
    manifest = read_json(out / "tint" / "manifest.json")
    rows = []
    for name in task.classes:
        made = [e["path"] for e in manifest["images"] if e["class"] == name][:10]
        supports = [im.image for im in task.supports[name]]
        rows.append([*supports, None, *(load_rgb(out / "tint" / p) for p in made)])
    return rows


def _write_report(out: Path, summary: dict, picture_rows) -> None:
    rows = summary["results"]
    write_report(
        out / "report.html",
        "tint demo: one hard 5-way 5-shot glyph episode",
        [
            (
                "Result",
                table(
                    ["method", "accuracy", "parameters", "size (KB)", "images/s"],
                    [
                        [
                            r["method"],
                            r["accuracy"],
                            r["parameters"],
                            r["size_kb"],
                            r["images_per_s"],
                        ]
                        for r in rows
                    ],
                )
                + bar_chart([r["method"] for r in rows], [r["accuracy"] for r in rows])
                + f"<p class='note'>{summary['queries_per_class']} queries per class; "
                f"accuracy over {summary['queries_per_class'] * len(summary['classes'])} "
                "queries. images/s: batch 256 on this machine.</p>",
            ),
            (
                f"Supports | generated (TINT, alpha {SETTINGS.alpha})",
                picture(grid(picture_rows, cell=48), ", ".join(summary["classes"])),
            ),
        ],
    )


def print_summary(summary: dict) -> None:
    print(
        f"hard {len(summary['classes'])}-way {summary['shots']}-shot glyph episode: "
        f"{', '.join(summary['classes'])}"
    )
    print(f"{'':24}{'accuracy':>10}{'parameters':>12}{'size':>10}{'images/s':>10}")
    for r in summary["results"]:
        print(
            f"{r['method']:<24}{r['accuracy']:>10.1%}{r['parameters']:>12,}"
            f"{r['size_kb']:>7} KB{r['images_per_s']:>10,}"
        )
    print(f"report: {summary['report']}  ({summary['seconds']} s)")
