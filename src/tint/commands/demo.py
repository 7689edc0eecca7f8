"""`tint demo`: one hard 5-way 1-shot episode of the glyph world, end to end, on a laptop CPU,
beside the committed benchmark of 30 such episodes.

Five novel glyph classes (never seen by the shipped models) that look alike (a hard episode: a
random class and the four most like it under the teacher's features), one support each: the
shipped base teacher is specialised on the supports (prototype head); a student is trained on the
supports alone, and another fine-tuned on them from the glyph world's base-pretrained student
(what pretraining alone gives); the shipped diffusion model is specialised with TINT and
generates new images of each class, which the teacher labels and a third student learns from,
and a fourth that starts from the base-pretrained student (the recipe without base images,
docs/RESULTS.md). All five are scored on the episode's 15 held-out queries per class, and each
student is credited with its own part only: against the same student without the one thing it
adds (pretraining, or TINT's images). The
episode is episode 0 of the committed benchmark of the recipes on the novel classes
(`benchmarks/glyphs-novel-recipe-1shot`), made cheaper (fewer generated images, fewer student
and textual-inversion steps) so that it runs in a few minutes; one episode says little, so the
benchmark's summary is printed beside it. Writes OUT/report.html and
OUT/summary.json; a second run reuses everything finished in OUT."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from tint.commands import Command, Options
from tint.commands.world import ASSETS, DEFAULT_MODEL, DEFAULT_TEACHER, shipped_student
from tint.config import group, setting, to_dict
from tint.data.datasets import open_dataset
from tint.data.episodes import sample_episode
from tint.data.images import load_rgb
from tint.data.tasks import episode_task
from tint.diffusion.generation import GenerateConfig
from tint.diffusion.model import DiffusionModel
from tint.eval.benchmark import class_similarity, gap_shares, summarize_run
from tint.eval.methods import check_methods, run_methods
from tint.io.figures import accuracy_figure
from tint.io.pictures import grid
from tint.io.report import picture, table, write_report
from tint.io.run_folder import RunFolder
from tint.io.storage import read_json_object, write_json
from tint.io.timing import images_per_second
from tint.models.students import Student, StudentConfig
from tint.models.teachers import load_backbone
from tint.pipeline.recipe import RecipeSettings, student_generation
from tint.pipeline.students import Pipeline
from tint.train.distill import DistillConfig

METHODS = ["teacher", "supports", "supports@pretrained", "tint", "tint@pretrained"]
NAMES = {
    "teacher": "teacher",
    "supports": "supports-only student",
    "supports@pretrained": "fine-tuned student",
    "tint": "TINT student",
    "tint@pretrained": "TINT student, pretrained",
}
# Each student's paired comparison: the student without the one thing it adds, and what that is.
CREDITS = {
    "supports@pretrained": ("supports", "pretraining's own part"),
    "tint": ("supports", "TINT's own part, from fresh weights"),
    "tint@pretrained": ("supports@pretrained", "TINT's own part, pretrained"),
}
# The committed benchmark the demo's episode is taken from, summarised (see `benchmark_summary`).
BENCHMARK = ASSETS / "benchmark-glyphs-novel-recipe-1shot.json"


def _demo_generation() -> GenerateConfig:
    """The students' generation with 20 images per class (the benchmark: 40) and textual
    inversion on 2 noisy copies of each support per step (the default: 4)."""
    generation = student_generation(num=20)
    return dataclasses.replace(generation, ti=dataclasses.replace(generation.ti, batch=2))


@dataclass
class DemoSettings:
    """The demo's episode and the cheaper settings it runs it with (the benchmark's in
    comments)."""

    out: str = setting("demo-output", "output directory (reused if present)")
    ways: int = setting(5, "classes of the episode", minimum=2)
    shots: int = setting(1, "supports per class", minimum=1)
    queries: int = setting(15, "queries per class", minimum=1)
    episode: int = setting(0, "which episode of the seed's sequence (the benchmark's first)")
    setup: RecipeSettings = group(
        RecipeSettings,
        "the methods",
        prefix="",
        factory=lambda: RecipeSettings(
            generation=_demo_generation(),
            distill=DistillConfig(steps=200, batch=32),  # the benchmark: 400 of 64
            student_init="scratch",  # the benchmark's: each method names its start
        ),
    )


def run(settings: DemoSettings, options: Options) -> None:
    print_summary(run_demo(settings, progress=not options.quiet))


def run_demo(settings: DemoSettings, *, progress: bool = True) -> dict:
    """Run the demo in `settings.out` (finished work is reused) and return its summary."""
    out = Path(settings.out)
    start = time.perf_counter()
    seed = settings.setup.seed
    with RunFolder(out, to_dict(settings), resume=True, may_change=("out",)):
        dataset = open_dataset("glyphs", "novel")
        backbone = load_backbone(DEFAULT_TEACHER)
        similarity = class_similarity(dataset, backbone, progress=progress)
        ways, shots, queries = settings.ways, settings.shots, settings.queries
        episode = sample_episode(dataset, ways, shots, queries, seed, settings.episode, similarity)
        task = episode_task(dataset, episode, out / "supports", backbone.input_size, seed)
        pipeline = Pipeline(
            settings.setup,
            backbone,
            DiffusionModel.load(DEFAULT_MODEL),
            pretrained=shipped_student(settings.setup.student.arch),
            progress=progress,
        )
        results = run_methods(pipeline, task, check_methods(METHODS), out)

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
        summary = {
            "episode": settings.episode,
            "classes": task.classes,
            "ways": ways,
            "shots": shots,
            "queries_per_class": queries,
            "generated_per_class": settings.setup.generation.num,
            "results": rows,
            "benchmark": read_json_object(BENCHMARK, "benchmark summary"),
            "seconds": round(time.perf_counter() - start, 1),
            "report": str(out / "report.html"),
        }
        _write_report(out, summary, _picture_rows(out, task), settings.setup.generation.alpha)
        write_json(out / "summary.json", summary)
    return summary


def benchmark_summary(results: dict, source: str) -> dict:
    """What the demo prints of a benchmark's results.json: per method its accuracy with its 95%
    interval, and each student's paired difference to the same student without the one thing
    it adds (CREDITS) with the share of the gap to the teacher that remains over that one it
    closes."""
    s = results["settings"]
    methods = [m for m in METHODS if m in results["summary"]]
    summary = summarize_run(results["episodes"], methods)
    credited = {}
    for m, (without, _) in CREDITS.items():
        if {m, without} <= set(methods):
            d = summary["paired"][f"{m} - {without}"]
            share = gap_shares(summary["summary"], methods, without)[m]
            credited[m] = [d["mean"], *d["ci95"], share]
    return {
        "source": source,
        "episodes": len(results["episodes"]),
        "ways": s["ways"],
        "shots": s["shots"],
        "queries": s["queries"],
        "synthetic": s["setup"]["generation"]["num"],
        "student_steps": s["setup"]["distill"]["steps"],
        "null_blend": s["setup"]["generation"]["null_blend"],
        "accuracy": {
            m: [summary["summary"][m]["accuracy"], *summary["summary"][m]["ci95"]] for m in methods
        },
        "credited": credited,
    }


def _speeds(backbone, task) -> dict[str, float]:
    """Images per second on this machine, batch 256, for the teacher's backbone and a student."""
    images = task.queries[:1].expand(256, -1, -1, -1).contiguous()
    student = Student(StudentConfig(classes=task.classes)).eval()
    with torch.no_grad():
        backbone_speed = images_per_second(backbone.embed, images, min_seconds=0.5)
        student_speed = images_per_second(student, images, min_seconds=0.5)
    return {"teacher": backbone_speed, **{m: student_speed for m in METHODS[1:]}}


def _picture_rows(out: Path, task) -> list[list]:
    """Per class: its supports, a gap, then its first generated images."""
    manifest = read_json_object(out / "tint" / "manifest.json", "manifest")
    rows = []
    for name in task.classes:
        made = [e["path"] for e in manifest["images"] if e["class"] == name][:10]
        supports = [im.image for im in task.supports[name]]
        rows.append([*supports, None, *(load_rgb(out / "tint" / p) for p in made)])
    return rows


def _write_report(out: Path, summary: dict, picture_rows, alpha: float) -> None:
    rows = summary["results"]
    bench = summary["benchmark"]
    write_report(
        out / "report.html",
        f"tint demo: one hard {summary['ways']}-way {summary['shots']}-shot glyph episode",
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
                + picture(
                    accuracy_figure([r["method"] for r in rows], [r["accuracy"] for r in rows]),
                    "accuracy on this episode's queries",
                )
                + f"<p class='note'>{summary['queries_per_class']} queries per class; "
                f"accuracy over {summary['queries_per_class'] * len(summary['classes'])} "
                "queries. images/s: batch 256 on this machine.</p>",
            ),
            (
                f"The committed benchmark: {bench['episodes']} such episodes",
                table(
                    ["method", "accuracy", "95% interval"],
                    [
                        [NAMES[m], a, f"[{lo:.3f}, {hi:.3f}]"]
                        for m, (a, lo, hi) in bench["accuracy"].items()
                    ],
                )
                + picture(
                    accuracy_figure(
                        [NAMES[m] for m in bench["accuracy"]],
                        [a for a, _, _ in bench["accuracy"].values()],
                        [(lo, hi) for _, lo, hi in bench["accuracy"].values()],
                    ),
                    f"accuracy over the {bench['episodes']} episodes, with 95% intervals",
                ),
            ),
            (
                f"Supports | generated (TINT, alpha {alpha})",
                picture(grid(picture_rows, cell=48), ", ".join(summary["classes"])),
            ),
        ],
    )


def print_summary(summary: dict) -> None:
    print(
        f"hard {summary['ways']}-way {summary['shots']}-shot glyph episode "
        f"{summary['episode']}: {', '.join(summary['classes'])}"
    )
    print(f"{'':24}{'accuracy':>10}{'parameters':>12}{'size':>10}{'images/s':>10}")
    for r in summary["results"]:
        print(
            f"{r['method']:<24}{r['accuracy']:>10.1%}{r['parameters']:>12,}"
            f"{r['size_kb']:>7} KB{r['images_per_s']:>10,}"
        )
    b = summary["benchmark"]
    print(
        f"one episode says little; over the {b['episodes']} episodes of {b['source']} "
        f"({b['synthetic']} images per class, {b['student_steps']} student steps, "
        f"null blend {b['null_blend']:g}):"
    )
    for method, (accuracy, lo, hi) in b["accuracy"].items():
        print(f"{NAMES[method]:<24}{accuracy:>10.1%}  [{lo:.1%}, {hi:.1%}]")
    for method, (mean, lo, hi, share) in b["credited"].items():
        without, what = CREDITS[method]
        print(
            f"{NAMES[method]} - {NAMES[without]}: {mean * 100:+.1f} points "
            f"[{lo * 100:+.1f}, {hi * 100:+.1f}], {share:.0%} of the gap left to the teacher "
            f"closed ({what})"
        )
    print(f"report: {summary['report']}  ({summary['seconds']} s)")


COMMAND = Command(
    name="demo",
    help="one hard 5-way 1-shot glyph episode, end to end, beside the committed benchmark",
    description="A few minutes on a laptop CPU: specialises the shipped base teacher to 5 "
    "novel glyph classes from 1 support each, trains a student on the supports alone and "
    "fine-tunes the shipped base-pretrained student on them, specialises the shipped diffusion "
    "model with TINT, generates new images, distils the teacher into a student on them from "
    "fresh weights and into one that starts from the base-pretrained student, and scores all "
    "five on 15 held-out queries per class; prints the table beside the committed benchmark, "
    "each student against the same student without what it adds, and writes OUT/report.html.",
    settings=DemoSettings,
    base=DemoSettings,
    run=run,
    aliases={"--synthetic": "setup.generation.num", "--student-steps": "setup.distill.steps"},
)
