"""What a method's images are to its teacher: why one source teaches a student more than another.

For every finished episode of a benchmark run, each source's images for the task (TINT's or
another generator's, read from the episode's folder; the retrieved base images, mined again; the
supports) are measured in the task teacher's feature space against the episode's queries:

    teacher_agrees     share of the images whose teacher's top class is the class they are for
                       (not for retrieved images: a base image is of none of the task's classes)
    confidence         mean top-class probability of the teacher's softmax on them
    query_coverage     mean over queries of the highest cosine similarity to an image of the
                       query's own class: how near the source comes to what will be asked
    nearest_neighbour  share of queries whose nearest image is of their class: a classifier made
                       of the images alone, labelled by the class they are for (a retrieved
                       image's: its nearest support's)
    feature_spread     mean over classes of 1 - the mean cosine similarity of two of the class's
                       images in the teacher's features: how varied they are to the teacher
    pixel_spread       the same on the pixels (grey, mean-centred): how varied they are to a
                       student that starts from nothing

Each is averaged over the episodes with its 95% interval, and every source is paired with the
first one on the same episodes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from tint.data.datasets import open_dataset
from tint.data.episodes import Episode
from tint.data.images import as_float
from tint.data.tasks import episode_task
from tint.errors import TintError
from tint.eval import variance
from tint.io.progress import bar
from tint.io.storage import read_json, read_json_object
from tint.pipeline.recipe import RecipeSettings, parse_recipe
from tint.pipeline.students import Pipeline, TaskWork
from tint.sources import SOURCES

METRICS = (
    "teacher_agrees",
    "confidence",
    "query_coverage",
    "nearest_neighbour",
    "feature_spread",
    "pixel_spread",
)
# What can be measured: the supports, and every source whose images join a transfer set.
KINDS = ("supports", *(name for name, source in SOURCES.items() if source.images))


@dataclass
class Measured:
    """One source's images on one task, and the class each is for."""

    images: torch.Tensor  # (M, 3, H, W) in [0, 1] at the teacher's input size
    intended: torch.Tensor  # (M,) class indices
    true_classes: bool = True  # False where `intended` is a guess (retrieved base images)


def check_sources(names: list[str]) -> list[str]:
    """The sources, checked: one of `tint benchmark`'s sources that adds images to the transfer
    set (tint:A too), or supports."""
    if not names:
        raise TintError("name at least one source")
    for name in names:
        if name.partition(":")[0] not in KINDS or (name != "supports" and "@" in name):
            raise TintError(f"unknown source {name!r}: one of {', '.join(KINDS)} (tint:A too)")
        if name != "supports":
            parse_recipe(name)
    if len(set(names)) != len(names):
        raise TintError("a source is named twice")
    return names


@torch.no_grad()
def measure(teacher, measured: Measured, queries: torch.Tensor, labels: torch.Tensor) -> dict:
    """The METRICS of one source's images on one task (see the module's docstring); a spread
    is None where no class has two images, teacher_agrees where the classes are a guess."""
    features = teacher.backbone.features(measured.images)
    asked = teacher.backbone.features(queries)
    probabilities = teacher.head(features).softmax(1)
    intended = measured.intended
    similarity = asked @ features.T  # (Q, M)
    own = intended[None, :] == labels[:, None]
    coverage = similarity.masked_fill(~own, -math.inf).max(1).values
    grey = measured.images.mean(1).flatten(1)
    pixels = F.normalize(grey - grey.mean(1, keepdim=True), dim=1)
    return {
        "images": len(intended),
        "teacher_agrees": (probabilities.argmax(1) == intended).float().mean().item()
        if measured.true_classes
        else None,
        "confidence": probabilities.max(1).values.mean().item(),
        "query_coverage": coverage.mean().item(),
        "nearest_neighbour": (intended[similarity.argmax(1)] == labels).float().mean().item(),
        "feature_spread": _spread(features, intended),
        "pixel_spread": _spread(pixels, intended),
    }


def _spread(vectors: torch.Tensor, classes: torch.Tensor) -> float | None:
    """Mean over classes with two vectors or more of 1 - their mean pairwise cosine."""
    spreads = []
    for c in classes.unique():
        v = vectors[classes == c]
        if len(v) > 1:
            pairs = (v @ v.T).sum() - v.pow(2).sum()
            spreads.append(1 - pairs.item() / (len(v) * (len(v) - 1)))
    return sum(spreads) / len(spreads) if spreads else None


def source_images(work: TaskWork, name: str) -> Measured:
    """One source's images on a task and the class each is for: generated ones as the
    benchmark made them (made now where the folder lacks them), retrieved ones mined again."""
    supports, support_labels = work.task.support_tensor(work.pipeline.view_size)
    if name == "supports":
        return Measured(supports, support_labels)
    images = as_float(work.images(name))
    if name == "retrieval":
        backbone = work.pipeline.backbone
        with torch.no_grad():
            nearest = (backbone.features(images) @ backbone.features(supports).T).argmax(1)
        return Measured(images, support_labels[nearest], true_classes=False)
    # Every other source's images come class by class, as many for each, in the task's order.
    per_class = len(images) // len(work.task.classes)
    return Measured(images, torch.arange(len(work.task.classes)).repeat_interleave(per_class))


def measure_run(
    run: str | Path,
    names: list[str],
    pipeline: Pipeline,
    episodes: int | None = None,
    *,
    progress: bool = True,
) -> dict:
    """{"sources", "episodes": [{"index", source: metrics}], "summary": {source: {metric:
    {"mean", "ci95"}}}, "paired": {"A - B": {metric: {"mean", "ci95"}}}} over the run's first
    `episodes` finished episodes (all by default)."""
    run = Path(run)
    settings = read_json_object(run / "run.json", "run settings")
    done = len(read_json_object(run / "results.json", "benchmark results")["episodes"])
    drawn = read_json(run / "episodes.json", "episodes")["episodes"][:done]
    if episodes is not None:
        drawn = drawn[:episodes]
    if len(drawn) < 2:
        raise TintError(f"{run} has {len(drawn)} finished episodes; measuring needs 2")
    data = open_dataset(settings["dataset"], settings["split"])
    rows = []
    for entry in bar(drawn, "episodes", progress):
        episode = Episode(**entry)
        folder = run / "episodes" / f"{episode.index:04d}"
        size, seed = pipeline.view_size, pipeline.settings.seed
        task = episode_task(data, episode, folder / "supports", size, seed, settings.get("shrink"))
        work = pipeline.on(task, folder)
        teacher = work.teacher()
        row = {"index": episode.index}
        for name in names:
            measured = source_images(work, name)
            row[name] = measure(teacher, measured, work.task.queries, work.task.query_labels)
        rows.append(row)
    return {"sources": names, "episodes": rows, **summarize_sources(rows, names)}


def summarize_sources(rows: list[dict], names: list[str]) -> dict:
    """Each metric's mean over episodes with its 95% interval, and each source minus the first
    on the same episodes; metrics that are None on some episode are left out."""

    def column(name: str, metric: str) -> list[float] | None:
        values = [row[name][metric] for row in rows]
        return None if any(v is None for v in values) else values

    summary, paired = {}, {}
    for name in names:
        summary[name] = {
            m: variance.mean_interval(v) for m in METRICS if (v := column(name, m)) is not None
        }
    first = names[0]
    for name in names[1:]:
        paired[f"{name} - {first}"] = {
            m: variance.mean_interval([a - b for a, b in zip(column(name, m), column(first, m))])
            for m in METRICS
            if column(name, m) is not None and column(first, m) is not None
        }
    return {"summary": summary, "paired": paired}


def table_lines(measured: dict) -> list[str]:
    """The measurements as a Markdown table: a metric a row, each source's mean with its
    interval, then each paired difference."""
    names, paired = measured["sources"], measured["paired"]
    lines = [
        f"| metric | {' | '.join([*names, *paired])} |",
        "|---" * (1 + len(names) + len(paired)) + "|",
    ]
    for metric in METRICS:
        cells = [_cell(measured["summary"][n].get(metric)) for n in names]
        cells += [_cell(d.get(metric), signed=True) for d in paired.values()]
        lines.append(f"| {metric} | {' | '.join(cells)} |")
    return lines


def _cell(value: dict | None, signed: bool = False) -> str:
    if value is None:
        return ""
    mean, (lo, hi) = value["mean"], value["ci95"]
    form = "+.3f" if signed else ".3f"
    return f"{mean:{form}} [{lo:{form}}, {hi:{form}}]"


def run_settings(settings: dict, where: str) -> RecipeSettings:
    """The recipe settings a benchmark run was made with, from its run.json (read from
    `where`)."""
    from tint.config import from_dict

    return from_dict(RecipeSettings, settings["setup"], where, "setup")
