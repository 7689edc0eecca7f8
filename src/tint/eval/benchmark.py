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
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from tint.config import SettingError, check_all, group, setting, to_dict
from tint.data.datasets import SPLITS, absolute_spec, open_dataset
from tint.data.episodes import Episode, sample_episodes, write_episodes
from tint.data.images import to_tensor
from tint.diffusion.model import DiffusionModel, check_model_dir
from tint.eval import variance
from tint.eval.curve import run_curves, section
from tint.eval.methods import (
    DIFFUSION,
    MINED,
    SYNTAX,
    MethodSettings,
    TaskRunner,
    UnlabeledPool,
    check_methods,
    check_starts,
    finished_results,
    load_task,
)
from tint.io.cluster import Cluster, failed, kept, run_tasks
from tint.io.report import bar_chart, table, write_report
from tint.io.run_folder import RunFolder
from tint.io.storage import atomic_path, read_json_object, write_json
from tint.models.teachers import load_backbone


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
    ways: int = setting(5, "classes per episode", minimum=2)
    shots: int = setting(5, "supports per class", minimum=1)
    queries: int | None = setting(15, "queries per class, or all", minimum=1, none="all")
    episodes: int = setting(20, "episodes", minimum=1)
    methods: list[str] = setting(
        factory=lambda: ["teacher", "supports", "tint"],
        help=f"comma-separated; a method is {SYNTAX} (e.g. base+tint@pretrained)",
    )
    out: str | None = setting(None, "output directory (new, or with --resume)")
    base_pool: int = setting(
        12000,
        "base-split images that retrieval mines and base learns from, spread evenly over the "
        "base classes (at least one each)",
        minimum=1,
    )
    model: str | None = setting(None, "Stable Diffusion directory (default: the shipped one)")
    teacher: str | None = setting(None, "teacher directory (default: the shipped glyph teacher)")
    setup: MethodSettings = group(MethodSettings, "how each method runs", prefix="")


def run_benchmark(
    settings: BenchmarkSettings,
    model_dir: str | Path,
    teacher_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    cluster: Cluster | None = None,
    student_dir: str | Path | None = None,
) -> dict:
    """Run the methods on N-way K-shot episodes of a dataset split; returns the results (see
    the module doc). The model, teacher and base-pretrained student folders are those of
    `settings`, or these. With a `cluster`, each episode is a Ray task there, and results are
    written as episodes end."""
    check_all(settings)
    # An episode's GPU, on a Ray worker that has one, runs the diffusion model.
    device = "cuda" if cluster is not None and cluster.gpus > 0 else "cpu"
    pretrained = settings.setup.student_pretrained or student_dir
    paths = Paths(
        str(settings.model or model_dir),
        str(settings.teacher or teacher_dir),
        device,
        None if pretrained is None else str(pretrained),
    )
    out, methods, split = Path(settings.out), settings.methods, settings.split
    seed = settings.setup.seed
    parsed = check_methods(methods)
    check_starts(parsed, settings.setup, paths.student)
    if any(m.uses(MINED) for m in parsed) and split == "base":
        raise SettingError(
            "split", "base is the pool that retrieval and base draw from: choose val or novel"
        )
    data = open_dataset(settings.dataset, split)
    sample_episodes(data, settings.ways, settings.shots, settings.queries, seed, 1)  # checks first
    RunFolder(out, None, resume).check()
    if cluster is not None:
        cluster.start()
    backbone = load_backbone(paths.teacher)
    similarity = class_similarity(data, backbone, progress) if settings.hard else None
    drawn = sample_episodes(
        data, settings.ways, settings.shots, settings.queries, seed, settings.episodes, similarity
    )
    for episode in tqdm(drawn, desc="checking images", disable=not progress, leave=False):
        for name in episode.classes:
            for file_id in episode.support[name] + episode.query[name]:
                data.image(name, file_id)
    if cluster is None:
        runner = EpisodeRunner(settings, paths, progress, data, backbone)
    elif any(m.uses(DIFFUSION) for m in parsed):
        check_model_dir(paths.model)  # the workers load it
    run = to_dict(settings)
    # More episodes or more methods extend a run; anything else would make other results.
    with RunFolder(out, run, resume, may_change=("out", "episodes", "methods")):
        write_episodes(out / "episodes.json", drawn)
        rows = {}

        def finished(index: int, counts: dict) -> None:
            episode = drawn[index]
            rows[index] = {"index": episode.index, "classes": episode.classes, "methods": counts}
            _write_results(out, summarize_run([rows[i] for i in sorted(rows)], methods), run)

        todo = []
        for index, episode in enumerate(drawn):
            counts = finished_results(_episode_folder(out, episode), methods)
            if counts is None:
                todo.append(index)
            else:
                finished(index, counts)
        if cluster is None:
            with tqdm(total=len(drawn), desc="episodes", disable=not progress) as bar:
                bar.update(len(drawn) - len(todo))
                for index in todo:
                    finished(index, runner(drawn[index]))
                    bar.update(1)
        else:
            on_workers, where, shared = _for_workers(settings, paths)
            jobs = [(i, (on_workers, where, drawn[i])) for i in todo]
            failures = run_tasks(
                cluster, run_episode, jobs, finished, "episodes", progress, len(drawn), shared
            )
            if failures:
                raise failed(failures, "episode", len(drawn), str(out))
        return {**summarize_run([rows[i] for i in sorted(rows)], methods), "settings": run}


@dataclass(frozen=True)
class Paths:
    model: str  # the diffusion model's folder
    teacher: str  # the teacher's folder
    device: str = "cpu"  # where the diffusion model runs
    student: str | None = None  # the base-pretrained student of pretrained starts


class EpisodeRunner:
    """Runs one episode of a benchmark: what a local run does in a loop and a Ray worker does
    for each task it is given, so the two give the same counts."""

    def __init__(
        self, settings: BenchmarkSettings, paths: Paths, progress: bool, data=None, backbone=None
    ):
        self.settings = settings
        self.data = data or open_dataset(settings.dataset, settings.split)
        self.backbone = backbone or load_backbone(paths.teacher)
        methods = check_methods(settings.methods)
        generative = any(m.uses(DIFFUSION) for m in methods)
        model = DiffusionModel.load(paths.model, paths.device) if generative else None
        unlabeled = None
        if any(m.uses(MINED) for m in methods):
            unlabeled = unlabeled_pool(
                settings.dataset, settings.base_pool, self.backbone, progress
            )
        self.runner = TaskRunner(
            self.backbone,
            settings.setup,
            model=model,
            unlabeled=unlabeled,
            progress=progress,
            pretrained=paths.student,
        )
        self.runner.check(methods)

    def __call__(self, episode: Episode) -> dict:
        folder = _episode_folder(Path(self.settings.out), episode)
        task = load_task(
            self.data,
            episode,
            folder / "supports",
            self.backbone.input_size,
            self.settings.setup.seed,
        )
        return self.runner.run(task, self.settings.methods, folder)


def _episode_folder(out: Path, episode: Episode) -> Path:
    return out / "episodes" / f"{episode.index:04d}"


def _for_workers(
    settings: BenchmarkSettings, paths: Paths
) -> tuple[BenchmarkSettings, Paths, list[str]]:
    """The settings and paths as workers get them, every path absolute (a worker's working
    directory is not this process's), and the paths they must all see."""
    settings = dataclasses.replace(
        settings, out=os.path.abspath(settings.out), dataset=absolute_spec(settings.dataset)
    )
    student = None if paths.student is None else os.path.abspath(paths.student)
    paths = Paths(
        os.path.abspath(paths.model), os.path.abspath(paths.teacher), paths.device, student
    )
    shared = [settings.out, paths.teacher, *filter(None, [settings.dataset.partition(":")[2]])]
    methods = check_methods(settings.methods)
    if any(m.uses(DIFFUSION) for m in methods):
        shared.append(paths.model)
    if student is not None and any(settings.setup.init(m) == "pretrained" for m in methods):
        shared.append(student)
    return settings, paths, shared


def run_episode(job: tuple[BenchmarkSettings, Paths, Episode]) -> dict:
    """One episode in a Ray worker, whose runner (models, dataset) serves every episode of the
    same settings it is given."""
    settings, paths, episode = job
    key = json.dumps([to_dict(settings), dataclasses.asdict(paths)], sort_keys=True)
    return kept(key, lambda: EpisodeRunner(settings, paths, progress=False))(episode)


def class_similarity(data, backbone, progress: bool = True, per_class: int = 20) -> torch.Tensor:
    """(C, C) cosine similarity of the classes' mean teacher embeddings, each over its first
    `per_class` images: what makes an episode hard for the teacher's own kind of features. The
    result is kept for the rest of the process: a demo, a benchmark and a quality measurement
    of one teacher on one split need it once."""
    key = (data.spec, data.split, tuple(data.classes), per_class, _digest(backbone))
    if key not in _SIMILARITY:
        _SIMILARITY[key] = _class_similarity(data, backbone, progress, per_class)
    return _SIMILARITY[key].clone()


_SIMILARITY: dict[tuple, torch.Tensor] = {}


def _digest(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


@torch.no_grad()
def _class_similarity(data, backbone, progress: bool, per_class: int) -> torch.Tensor:
    means = []
    for name, ids in tqdm(data.classes.items(), desc="class similarity", disable=not progress):
        x = torch.stack(
            [to_tensor(data.image(name, i), backbone.input_size) for i in ids[:per_class]]
        )
        means.append(F.normalize(backbone.embed(x), dim=1).mean(0))
    means = F.normalize(torch.stack(means), dim=1)
    return means @ means.T


def unlabeled_pool(dataset: str, size: int, backbone, progress: bool) -> UnlabeledPool:
    """What `retrieval` mines and `base` learns from: the base split (for glyphs, the diffusion
    model's own training classes): `size` images spread evenly over its classes, one at least."""
    base = open_dataset(dataset, "base")
    per_class = max(1, size // len(base.classes))
    images = []
    for name, ids in tqdm(base.classes.items(), desc="unlabelled pool", disable=not progress):
        for file_id in ids[:per_class]:
            images.append(to_tensor(base.image(name, file_id), backbone.input_size) * 255)
    return UnlabeledPool(torch.stack(images).round().to(torch.uint8), backbone)


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
    if {"teacher", "supports"} <= set(methods):
        gap = summary["teacher"]["accuracy"] - summary["supports"]["accuracy"]
        result["gap_closed"] = {
            m: (summary[m]["accuracy"] - summary["supports"]["accuracy"]) / gap
            for m in methods
            if m not in ("teacher", "supports") and gap > 0
        }
    return result


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
    """A finished or stopped run's report.html again, from its results, run.json and curves."""
    out = Path(out)
    run = read_json_object(out / "run.json", "run settings")
    _write_html(out, read_json_object(out / "results.json", "benchmark results"), run)


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
            + bar_chart(
                methods,
                [summary[m]["accuracy"] for m in methods],
                [tuple(summary[m]["ci95"]) if summary[m]["ci95"] else (0, 0) for m in methods],
            ),
        )
    ]
    if results["paired"]:
        sections.append(
            (
                "Paired differences (same episodes)",
                table(
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
    sections += [(f"Against {c['x']}", section(c)) for c in run_curves(out)]
    queries = "all remaining" if run["queries"] is None else run["queries"]
    title = (
        f"tint benchmark: {run['dataset']} ({run['split']}{', hard' if run['hard'] else ''}), "
        f"{run['ways']}-way "
        f"{run['shots']}-shot, {queries} queries per class, {len(results['episodes'])} episodes"
    )
    write_report(out / "report.html", title, sections)
