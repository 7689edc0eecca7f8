"""`tint demo`: one hard 5-way 1-shot episode of the glyph world, end to end, on a laptop CPU,
beside the committed benchmark of 20 such episodes.

Five novel glyph classes (never seen by the shipped models) that look alike (a hard episode: a
random class and the four most like it under the teacher's features), one support each: the
shipped base teacher is specialised on the supports (prototype head); a student is trained on the
supports alone; the shipped diffusion model is specialised with TINT and generates new images of
each class, which the teacher labels and a second student learns from. All three are scored on
the episode's 15 held-out queries per class. The episode is episode 0 of the committed benchmark
(`benchmarks/glyphs-hard-1shot-methods`), made cheaper (fewer generated images, fewer student
and textual-inversion steps) so that it runs in a few minutes; one episode says little, so the
benchmark's 20-episode summary is printed beside it. Writes OUT/report.html and
OUT/summary.json; a second run reuses everything finished in OUT."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

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
from tint.run_folder import RunFolder
from tint.storage import read_json_object, write_json

METHODS = ["teacher", "supports", "tint"]
NAMES = {"teacher": "teacher", "supports": "supports-only student", "tint": "TINT student"}
# The committed benchmark the demo's episode is taken from, summarised (see `benchmark_summary`).
BENCHMARK = world.ASSETS / "benchmark-glyphs-hard-1shot.json"


@dataclass
class DemoConfig:
    """The demo's episode and the cheaper settings it runs it with."""

    ways: int = 5  # classes of the episode
    shots: int = 1  # supports per class
    queries: int = 15  # queries per class
    episode: int = 0  # which episode of the seed's sequence (the benchmark's first)
    seed: int = 0
    synthetic: int = 20  # generated images per class (the benchmark: 40)
    student_steps: int = 200  # training steps of each student (the benchmark: 400)
    student_batch: int = 32  # generated images per step (the benchmark: 64)
    ti_steps: int = 100  # textual-inversion steps (the benchmark: the fast preset's 300)
    ti_lr: float = 1e-2  # textual-inversion learning rate (the benchmark: 5e-3)
    ddim_steps: int = 25  # DDIM steps of null-text inversion and sampling (as the benchmark)

    def method_settings(self) -> MethodSettings:
        return MethodSettings(
            student="conv4",
            synthetic=self.synthetic,
            ti_steps=self.ti_steps,
            ti_lr=self.ti_lr,
            diffusion_steps=self.ddim_steps,
            distill=DistillConfig(steps=self.student_steps, batch=self.student_batch),
            seed=self.seed,
        )


def run(out: str | Path, config: DemoConfig | None = None, progress: bool = True) -> dict:
    """Run the demo in `out` (finished work is reused) and return its summary."""
    config = config or DemoConfig()
    out = Path(out)
    start = time.perf_counter()
    settings = config.method_settings()
    with RunFolder(out, dataclasses.asdict(config), resume=True):
        dataset = open_dataset("glyphs", "novel")
        backbone = load_backbone(world.DEFAULT_TEACHER)
        similarity = class_similarity(dataset, backbone, progress)
        episode = sample_episode(
            dataset,
            config.ways,
            config.shots,
            config.queries,
            config.seed,
            config.episode,
            similarity,
        )
        task = load_task(dataset, episode, out / "supports", backbone.input_size, config.seed)
        model = DiffusionModel.load(world.DEFAULT_MODEL)
        runner = TaskRunner(backbone, settings, model=model, progress=progress)
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
        summary = {
            "episode": config.episode,
            "classes": task.classes,
            "ways": config.ways,
            "shots": config.shots,
            "queries_per_class": config.queries,
            "generated_per_class": config.synthetic,
            "results": rows,
            "benchmark": read_json_object(BENCHMARK, "benchmark summary"),
            "seconds": round(time.perf_counter() - start, 1),
            "report": str(out / "report.html"),
        }
        _write_report(out, summary, _picture_rows(out, task), settings.alpha)
        write_json(out / "summary.json", summary)
    return summary


def benchmark_summary(results: dict, source: str) -> dict:
    """What the demo prints of a benchmark's results.json: per method its accuracy with its 95%
    interval, and the TINT student's paired difference over the supports-only student."""
    s = results["settings"]
    return {
        "source": source,
        "episodes": len(results["episodes"]),
        "ways": s["ways"],
        "shots": s["shots"],
        "queries": s["queries"],
        "synthetic": s["settings"]["synthetic"],
        "student_steps": s["settings"]["distill"]["steps"],
        "accuracy": {
            m: [results["summary"][m]["accuracy"], *results["summary"][m]["ci95"]] for m in METHODS
        },
        "tint_minus_supports": [
            results["paired"]["tint - supports"]["mean"],
            *results["paired"]["tint - supports"]["ci95"],
        ],
        "gap_closed": results["gap_closed"]["tint"],
    }


def _speeds(backbone, task) -> dict[str, float]:
    """Images per second on this machine, batch 256, for the teacher's backbone and a student."""
    images = task.queries[:1].expand(256, -1, -1, -1).contiguous()
    student = Student(StudentConfig("conv4", classes=task.classes)).eval()
    with torch.no_grad():
        backbone_speed = images_per_second(backbone.embed, images)
        student_speed = images_per_second(student, images)
    return {"teacher": backbone_speed, "supports": student_speed, "tint": student_speed}


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
                + bar_chart([r["method"] for r in rows], [r["accuracy"] for r in rows])
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
                + bar_chart(
                    [NAMES[m] for m in bench["accuracy"]],
                    [a for a, _, _ in bench["accuracy"].values()],
                    [(lo, hi) for _, lo, hi in bench["accuracy"].values()],
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
        f"({b['synthetic']} images per class, {b['student_steps']} student steps):"
    )
    for method, (accuracy, lo, hi) in b["accuracy"].items():
        print(f"{NAMES[method]:<24}{accuracy:>10.1%}  [{lo:.1%}, {hi:.1%}]")
    mean, lo, hi = b["tint_minus_supports"]
    print(
        f"TINT student - supports-only student: {mean * 100:+.1f} points "
        f"[{lo * 100:+.1f}, {hi * 100:+.1f}], "
        f"{b['gap_closed']:.0%} of the gap to the teacher closed"
    )
    print(f"report: {summary['report']}  ({summary['seconds']} s)")
