"""`tint benchmark`: methods compared over many few-shot episodes, with intervals.

    OUT/episodes.json                 every episode: classes, support and query file ids
    OUT/episodes/0003/                one episode's work (supports, specialisation, generated
                                      images, one result file per method; see eval.methods)
    OUT/results.json, results.csv     per-episode counts, summary with 95% intervals, paired
                                      differences between methods
    OUT/report.html                   the same for people, with a plot, and the curves
                                      `tint curve` added (OUT/curves/X-VALUES.json)
    OUT/run.json                      the settings, checked by --resume

Episode i is a function of (seed, i) alone, so every method sees the same episodes and a resumed
run continues with exactly the episodes it would have drawn. Everything is checked, every image
of every episode read, before anything is written."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from tint.config import SettingError, check_all, group, setting, to_dict
from tint.data.datasets import SPLITS, absolute_spec, open_dataset
from tint.data.episodes import Episode, sample_episodes, write_episodes
from tint.data.images import to_tensor
from tint.data.tasks import Task, episode_task, task_seed
from tint.diffusion.model import MODEL_CONFIG_HELP, MODEL_HELP, DiffusionModel, check_model_dir
from tint.eval import variance
from tint.eval.curve import run_curves, section
from tint.eval.methods import (
    METHODS_SYNTAX,
    TEACHER,
    Method,
    check_methods,
    finished_results,
    run_methods,
)
from tint.io.cluster import Cluster, failed, kept, run_tasks
from tint.io.figures import accuracy_figure, forest_figure
from tint.io.pretrained import model_folder
from tint.io.progress import bar
from tint.io.report import picture, table, write_report
from tint.io.run_folder import RunFolder
from tint.io.storage import atomic_path, read_json_object, write_json
from tint.models.teachers import load_backbone
from tint.pipeline.recipe import RecipeSettings, parse_recipe, resolve_init
from tint.pipeline.students import Pipeline, check_start
from tint.sources import GENERATED, MINED
from tint.sources.base_pool import BasePool


@dataclass
class BenchmarkSettings:
    dataset: str | None = setting(
        None, "glyphs, folder:PATH, miniimagenet:PATH, cub:PATH or cifarfs:PATH"
    )
    split: str = setting("novel", "base, val or novel", choices=SPLITS)
    hard: bool = setting(
        False,
        "hard episodes: a random class and the N-1 classes most like it under the teacher's "
        "features, instead of N classes drawn uniformly",
    )
    shrink: int | None = setting(
        None,
        "make every support and query image at most this many pixels a side (bicubic) before "
        "any method sees it, to try small photographs; none keeps their size",
        minimum=4,
        none="none",
    )
    ways: int = setting(5, "classes per episode", minimum=2)
    shots: int = setting(5, "supports per class", minimum=1)
    queries: int | None = setting(15, "queries per class, or all", minimum=1, none="all")
    episodes: int = setting(20, "episodes", minimum=1)
    methods: list[str] = setting(
        factory=lambda: ["teacher", "supports", "tint"],
        help=f"comma-separated; a method is {METHODS_SYNTAX} (e.g. base+tint@pretrained)",
    )
    out: str | None = setting(None, "output directory (new, or with --resume)")
    base_pool: int = setting(
        12000,
        "base-split images that retrieval mines and base learns from, spread evenly over the "
        "base classes (at least one each)",
        minimum=1,
    )
    model: str | None = setting(None, MODEL_HELP)
    model_config: str | None = setting(None, MODEL_CONFIG_HELP)
    teacher: str | None = setting(None, "teacher directory (default: the shipped glyph teacher)")
    setup: RecipeSettings = group(RecipeSettings, "how each method runs", prefix="")


@dataclass(frozen=True)
class BenchmarkPlan:
    """A benchmark with everything decided before its first episode: the settings (the
    students' start resolved), the methods parsed, and where the models are."""

    settings: BenchmarkSettings
    methods: tuple[Method, ...]
    teacher: str  # the teacher's folder
    model: str | None  # the diffusion model's folder, where a method needs it
    pretrained: str | None  # the base-pretrained student of pretrained starts
    device: str = "cpu"  # where the diffusion model runs
    note: str | None = None  # what the resolution of the students' start has to say

    def needs(self, kind: str) -> bool:
        return any(m.recipe is not None and m.recipe.needs(kind) for m in self.methods)

    def absolute(self) -> BenchmarkPlan:
        """This plan with every path absolute, as workers get it (a worker's working directory
        is not this process's)."""
        generation = self.settings.setup.generation
        if os.path.isdir(generation.upscale):  # an upscaler's folder, not a way or a hub id
            generation = dataclasses.replace(
                generation, upscale=os.path.abspath(generation.upscale)
            )
        settings = dataclasses.replace(
            self.settings,
            out=os.path.abspath(self.settings.out),
            dataset=absolute_spec(self.settings.dataset),
            setup=dataclasses.replace(self.settings.setup, generation=generation),
        )
        model, pretrained = (
            None if p is None else os.path.abspath(p) for p in (self.model, self.pretrained)
        )
        return dataclasses.replace(
            self,
            settings=settings,
            teacher=os.path.abspath(self.teacher),
            model=model,
            pretrained=pretrained,
        )

    def shared(self) -> list[str]:
        """The paths every worker must see."""
        s = self.settings
        paths = [s.out, self.teacher, *filter(None, [s.dataset.partition(":")[2]])]
        paths += [p for p in (self.model, self.pretrained) if p is not None]
        return paths + [p for p in [s.setup.generation.upscale] if os.path.isdir(p)]


def plan_benchmark(
    settings: BenchmarkSettings,
    model_dir: str | Path,
    teacher_dir: str | Path,
    student_dir: str | Path | None = None,
    device: str = "cpu",
) -> BenchmarkPlan:
    """The benchmark of `settings`, checked and decided: its model, teacher and base-pretrained
    student are those the settings name, or these."""
    check_all(settings)
    methods = tuple(check_methods(settings.methods))
    pretrained = settings.setup.student_pretrained or student_dir
    pretrained = None if pretrained is None else str(pretrained)
    setup, note = resolve_init(settings.setup, pretrained)
    settings = dataclasses.replace(settings, setup=setup)
    recipes = [m.recipe for m in methods if m.recipe is not None]
    if any(r.needs(MINED) for r in recipes) and settings.split == "base":
        raise SettingError(
            "split", "base is the pool that retrieval and base draw from: choose val or novel"
        )
    if all(r.init for r in recipes):  # every student names its start: nothing to say
        note = None
    starts_pretrained = any((r.init or setup.student_init) == "pretrained" for r in recipes)
    generative = any(r.needs(GENERATED) for r in recipes)
    plan = BenchmarkPlan(
        settings,
        methods,
        str(model_folder(settings.teacher or teacher_dir, "teacher directory")),
        str(check_model_dir(settings.model or model_dir, settings.model_config))
        if generative
        else None,
        pretrained if starts_pretrained else None,
        device,
        note,
    )
    check_start(setup, recipes, plan.pretrained)
    return plan


def run_benchmark(
    plan: BenchmarkPlan,
    *,
    resume: bool = False,
    progress: bool = True,
    cluster: Cluster | None = None,
) -> dict:
    """Run the plan's methods on N-way K-shot episodes of a dataset split; returns the results
    (see the module doc). With a `cluster`, each episode is a Ray task there, and results are
    written as episodes end."""
    settings = plan.settings
    out, methods = Path(settings.out), settings.methods
    seed = settings.setup.seed
    data = open_dataset(settings.dataset, settings.split)
    sample_episodes(data, settings.ways, settings.shots, settings.queries, seed, 1)  # checks first
    RunFolder(out, None, resume).check()
    if cluster is not None:
        cluster.start()
    backbone = load_backbone(plan.teacher)
    similarity = class_similarity(data, backbone, progress=progress) if settings.hard else None
    drawn = sample_episodes(
        data, settings.ways, settings.shots, settings.queries, seed, settings.episodes, similarity
    )
    for episode in bar(drawn, "checking images", progress, inner=True):
        for name in episode.classes:
            for file_id in episode.support[name] + episode.query[name]:
                data.image(name, file_id)
    if cluster is None:
        runner = EpisodeRunner(plan, progress, data, backbone)
    elif plan.model is not None:
        check_model_dir(plan.model)  # the workers load it
    if plan.note:  # every input is checked: the run starts
        print(f"note: {plan.note}", file=sys.stderr)
    run = to_dict(settings)
    # More episodes or more methods extend a run; anything else would make other results.
    with RunFolder(out, run, resume, may_change=("out", "episodes", "methods")):
        write_episodes(out / "episodes.json", drawn)
        rows = {}

        def finished(index: int, counts: dict) -> None:
            episode = drawn[index]
            rows[index] = {
                "index": episode.index,
                "classes": episode.classes,
                "task_seed": task_seed(seed, episode.index),
                "methods": counts,
            }
            _write_results(out, summarize_run([rows[i] for i in sorted(rows)], methods), run)

        todo = []
        for index, episode in enumerate(drawn):
            counts = finished_results(_episode_folder(out, episode), methods)
            if counts is None:
                todo.append(index)
            else:
                finished(index, counts)
        if cluster is None:
            with bar(total=len(drawn), desc="episodes", show=progress) as episodes_bar:
                episodes_bar.update(len(drawn) - len(todo))
                for index in todo:
                    finished(index, runner(drawn[index]))
                    episodes_bar.update(1)
        else:
            on_workers = plan.absolute()
            jobs = [(i, (on_workers, drawn[i])) for i in todo]
            failures = run_tasks(
                cluster,
                run_episode,
                jobs,
                finished,
                "episodes",
                progress=progress,
                total=len(drawn),
                shared=on_workers.shared(),
            )
            if failures:
                raise failed(failures, "episode", len(drawn), str(out))
        return {**summarize_run([rows[i] for i in sorted(rows)], methods), "settings": run}


class EpisodeRunner:
    """Runs one episode of a benchmark: what a local run does in a loop and a Ray worker does
    for each task it is given, so the two give the same counts."""

    def __init__(self, plan: BenchmarkPlan, progress: bool, data=None, backbone=None):
        self.plan, settings = plan, plan.settings
        self.data = data or open_dataset(settings.dataset, settings.split)
        self.backbone = backbone or load_backbone(plan.teacher)
        base_pool = None
        if plan.needs(MINED):
            base_pool = BasePool.from_split(
                settings.dataset, settings.base_pool, self.backbone, progress=progress
            )
        model = None
        if plan.model is not None:
            model = lambda: DiffusionModel.load(plan.model, plan.device)  # noqa: E731
        self.pipeline = Pipeline(
            settings.setup, self.backbone, model, base_pool, plan.pretrained, progress=progress
        )

    def task(self, episode: Episode) -> Task:
        """The episode as a task, its supports written to its folder."""
        folder = _episode_folder(Path(self.plan.settings.out), episode) / "supports"
        settings = self.plan.settings
        size, seed = self.backbone.input_size, settings.setup.seed
        return episode_task(self.data, episode, folder, size, seed, settings.shrink)

    def __call__(self, episode: Episode) -> dict:
        folder = _episode_folder(Path(self.plan.settings.out), episode)
        return run_methods(self.pipeline, self.task(episode), list(self.plan.methods), folder)


def _episode_folder(out: Path, episode: Episode) -> Path:
    return out / "episodes" / f"{episode.index:04d}"


def run_episode(job: tuple[BenchmarkPlan, Episode]) -> dict:
    """One episode in a Ray worker, whose runner (models, dataset) serves every episode of the
    same plan it is given."""
    plan, episode = job
    key = json.dumps(
        [to_dict(plan.settings), plan.teacher, plan.model, plan.pretrained, plan.device]
    )
    return kept(key, lambda: EpisodeRunner(plan, progress=False))(episode)


@torch.no_grad()
def class_similarity(data, backbone, *, progress: bool = True, per_class: int = 20) -> torch.Tensor:
    """(C, C) cosine similarity of the classes' mean teacher embeddings, each over its first
    `per_class` images: what makes an episode hard for the teacher's own kind of features."""
    means = []
    for name, ids in bar(data.classes.items(), "class similarity", progress):
        x = torch.stack(
            [to_tensor(data.image(name, i), backbone.input_size) for i in ids[:per_class]]
        )
        means.append(F.normalize(backbone.embed(x), dim=1).mean(0))
    means = F.normalize(torch.stack(means), dim=1)
    return means @ means.T


def summarize_run(rows: list[dict], methods: list[str]) -> dict:
    """Per-method accuracy with its interval, and paired differences of every method against
    each one listed before it, from the per-episode counts."""
    counts = {
        m: [(r["methods"][m]["correct"], r["methods"][m]["total"]) for r in rows] for m in methods
    }
    summary, paired = {}, {}
    for m in methods:
        if len(rows) >= 2:
            summary[m] = variance.summarize(counts[m])
        else:
            c, n = counts[m][0]
            summary[m] = {"accuracy": c / n, "ci95": None, "episodes": 1}
        summary[m]["seconds_per_episode"] = sum(r["methods"][m]["seconds"] for r in rows) / len(
            rows
        )
    if len(rows) >= 2:
        for i, a in enumerate(methods):
            for b in methods[:i]:
                paired[f"{a} - {b}"] = variance.paired_difference(counts[a], counts[b])
    result = {"episodes": rows, "summary": summary, "paired": paired}
    for key, baseline in (("gap_closed", "supports"), ("gap_closed_over", FINE_TUNED)):
        if {TEACHER, baseline} <= set(methods):
            result[key] = gap_shares(summary, methods, baseline)
    if len(rows) >= 2:
        result["generation_part"] = generation_parts(counts, methods)
    return result


FINE_TUNED = "supports@pretrained"  # the fine-tuning baseline: what pretraining alone gives


def gap_shares(summary: dict, methods: list[str], baseline: str) -> dict[str, float]:
    """Each method's share of the gap from `baseline` to the teacher that it closes, (method -
    baseline) / (teacher - baseline) from the mean accuracies: over `supports` (a student from
    fresh weights on its supports), or over `supports@pretrained`, the gap that remains once
    pretraining has done its part."""
    gap = summary[TEACHER]["accuracy"] - summary[baseline]["accuracy"]
    if gap <= 0:
        return {}
    return {
        m: (summary[m]["accuracy"] - summary[baseline]["accuracy"]) / gap
        for m in methods
        if m not in (TEACHER, baseline)
    }


def generation_parts(counts: dict[str, list], methods: list[str]) -> dict[str, dict]:
    """What the generated images add to each method that has them: its paired difference to the
    same recipe without them ("tint+retrieval@pretrained" minus "retrieval@pretrained"), where
    that recipe ran too."""
    parts = {}
    for m in methods:
        without = None if m == TEACHER else parse_recipe(m).without(GENERATED)
        if without in methods:
            parts[m] = {
                "without": without,
                **variance.paired_difference(counts[m], counts[without]),
            }
    return parts


def _write_results(out: Path, results: dict, run: dict) -> None:
    write_json(out / "results.json", {**results, "settings": run})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["episode", "method", "correct", "total", "accuracy", "seconds"])
    for row in results["episodes"]:
        for method, r in row["methods"].items():
            accuracy = r["correct"] / r["total"]
            writer.writerow(
                [row["index"], method, r["correct"], r["total"], f"{accuracy:.4f}", r["seconds"]]
            )
    with atomic_path(out / "results.csv") as tmp:
        tmp.write_text(buffer.getvalue())
    _write_html(out, results, run)


def rewrite_report(out: str | Path) -> None:
    """A finished or stopped run's results summarised again from its per-episode counts (what
    today's summary holds), and its report.html drawn again with its curves."""
    out = Path(out)
    run = read_json_object(out / "run.json", "run settings")
    rows = read_json_object(out / "results.json", "benchmark results")["episodes"]
    _write_results(out, summarize_run(rows, run["methods"]), run)


def _forest_pairs(results: dict) -> dict[str, dict]:
    """The paired differences a report draws: every method against `supports` and against the
    fine-tuned student, and what generated images add to each recipe that has them (every pair
    where none of these ran)."""
    paired = results["paired"]
    shown = {}
    for baseline in ("supports", FINE_TUNED):
        for m in results["summary"]:
            if m not in (TEACHER, baseline) and f"{m} - {baseline}" in paired:
                shown[f"{m} - {baseline}"] = paired[f"{m} - {baseline}"]
    for m, part in results.get("generation_part", {}).items():
        shown[f"{m} - {part['without']}"] = part
    return shown or paired  # no baseline ran: every pair


def _write_html(out: Path, results: dict, run: dict) -> None:
    summary, methods = results["summary"], run["methods"]

    def interval(ci) -> str:
        return "n/a" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"

    rows = [
        [
            m,
            summary[m]["accuracy"],
            interval(summary[m]["ci95"]),
            summary[m].get("between_episode_var", float("nan")) ** 0.5,
            round(summary[m]["seconds_per_episode"], 1),
        ]
        for m in methods
    ]
    sections = [
        (
            "Accuracy",
            table(["method", "accuracy", "95% interval", "between-episode sd", "s / episode"], rows)
            + picture(
                accuracy_figure(
                    methods,
                    [summary[m]["accuracy"] for m in methods],
                    [summary[m]["ci95"] for m in methods],
                ),
                "accuracy of each method, with its 95% interval",
                "accuracy with 95% intervals of " + ", ".join(methods),
            ),
        )
    ]
    if results["paired"]:
        shown = _forest_pairs(results)
        forest = picture(
            forest_figure(
                list(shown),
                [d["mean"] for d in shown.values()],
                [d["ci95"] for d in shown.values()],
            ),
            "paired differences against the baselines and what generated images add",
            "paired differences with 95% intervals: " + ", ".join(shown),
        )
        sections.append(
            (
                "Paired differences (same episodes)",
                forest
                + table(
                    ["difference", "mean", "95% interval"],
                    [[k, v["mean"], interval(v["ci95"])] for k, v in results["paired"].items()],
                ),
            )
        )
    if results.get("gap_closed"):
        sections.append(
            (
                "Share of the supports-to-teacher gap closed",
                table(["method", "share"], [[m, v] for m, v in results["gap_closed"].items()]),
            )
        )
    if results.get("gap_closed_over"):
        sections.append(
            (
                f"Share of the gap that remains over {FINE_TUNED} closed",
                table(["method", "share"], [[m, v] for m, v in results["gap_closed_over"].items()]),
            )
        )
    if results.get("generation_part"):
        sections.append(
            (
                "What the generated images add: minus the same recipe without them",
                table(
                    ["method", "without them", "difference", "95% interval"],
                    [
                        [m, p["without"], p["mean"], interval(p["ci95"])]
                        for m, p in results["generation_part"].items()
                    ],
                ),
            )
        )
    sections += [(f"Against {c['x']}", section(c)) for c in run_curves(out)]
    queries = "all remaining" if run["queries"] is None else run["queries"]
    title = (
        f"tint benchmark: {run['dataset']} ({run['split']}{', hard' if run['hard'] else ''}), "
        f"{run['ways']}-way "
        f"{run['shots']}-shot, {queries} queries per class, {len(results['episodes'])} episodes"
    )
    write_report(out / "report.html", title, sections)
