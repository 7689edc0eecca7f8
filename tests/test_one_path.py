"""One path from supports to a student: `tint distill` on the supports of a benchmark episode, with
the method's settings, trains the student the benchmark trained for that method, and scores it
as the benchmark did; `tint.distill` and `tint.load_student` from Python do the same."""

import json

import numpy as np
import pytest
import torch

import tint
from tint.cli import main
from tint.commands import world
from tint.config import from_dict
from tint.data.datasets import open_dataset
from tint.data.episodes import Episode, sample_episode
from tint.data.images import to_image
from tint.eval.benchmark import BenchmarkSettings, EpisodeRunner, plan_benchmark
from tint.io.storage import write_png
from tint.models.students import Student
from tint.models.teachers import load_backbone
from tint.pipeline.recipe import parse_recipe
from tint.sources.base_pool import BasePool

pytestmark = pytest.mark.e2e

WAYS, QUERIES, METHOD = 3, 6, "tint+retrieval@pretrained"
SMALL = ["--num", "3", "--ti-steps", "3", "--ddim-steps", "3", "--distill-steps", "20"]


def _sorted_seed() -> int:
    """A seed whose first 3-way val episode lists its classes by name, the order `tint distill`
    reads class folders in (the labels, and so the student's head, follow that order)."""
    data = open_dataset("glyphs", "val")
    for seed in range(100):
        classes = sample_episode(data, WAYS, 1, QUERIES, seed, 0).classes
        if classes == sorted(classes):
            return seed
    raise AssertionError("no seed of 100 lists its classes by name")


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    """A one-episode benchmark of METHOD with a 733-image base pool, the pool written as a folder
    of PNGs in its order, and the episode's queries as held-out class folders."""
    root = tmp_path_factory.mktemp("one-path")
    seed = _sorted_seed()
    args = ["benchmark", "--dataset", "glyphs", "--split", "val", "--ways", WAYS, "--shots", 1]
    args += ["--queries", QUERIES, "--episodes", 1, "--methods", METHOD, "--base-pool", 733]
    args += ["--seed", seed, "--out", root / "bench", *SMALL, "--quiet"]
    assert main([str(a) for a in args]) == 0
    backbone = load_backbone(world.DEFAULT_TEACHER)
    pool = BasePool.from_split("glyphs", 733, backbone, progress=False)
    for i, image in enumerate(pool.images):
        write_png(root / "base" / f"{i:05d}.png", to_image(image.float() / 255))
    drawn = Episode(**json.loads((root / "bench" / "episodes.json").read_text())["episodes"][0])
    data = open_dataset("glyphs", "val")
    for name in drawn.classes:
        for i, file_id in enumerate(drawn.query[name]):
            write_png(root / "held-out" / name / f"{i}.png", data.image(name, file_id))
    return root, seed, drawn


def test_distill_on_a_benchmark_episode_trains_and_scores_the_benchmarks_student(episode):
    root, seed, drawn = episode
    results = json.loads((root / "bench" / "results.json").read_text())
    row = results["episodes"][0]
    supports = root / "bench" / "episodes" / "0000" / "supports"
    args = ["distill", supports, "--out", root / "distilled", "--method", METHOD]
    args += ["--base", root / "base", "--eval", root / "held-out", "--seed", seed]
    args += ["--task-seed", row["task_seed"], *SMALL, "--quiet"]
    assert main([str(a) for a in args]) == 0
    report = json.loads((root / "distilled" / "report.json").read_text())
    counted = row["methods"][METHOD]
    assert report["held_out"]["images"] == counted["total"] == WAYS * QUERIES
    assert report["held_out"]["student_accuracy"] == counted["correct"] / counted["total"]
    assert report["images"] == {"tint": WAYS * 3, "retrieval": WAYS * 3}

    # The benchmark's student of the episode, trained again by its own runner.
    run_json = root / "bench" / "run.json"
    settings = from_dict(BenchmarkSettings, json.loads(run_json.read_text()), str(run_json))
    plan = plan_benchmark(
        settings, world.DEFAULT_MODEL, world.DEFAULT_TEACHER, world.shipped_student("conv4")
    )
    runner = EpisodeRunner(plan, progress=False)
    task = runner.task(drawn)
    benchmarked = runner.pipeline.on(task, root / "again").student(parse_recipe(METHOD)).student
    distilled = Student.from_pretrained(root / "distilled")
    with torch.no_grad():
        a, b = benchmarked.eval()(task.queries), distilled(task.queries)
    # Same machine, same kernels: the same student up to the order of a sum.
    assert (a - b).abs().mean() <= 1e-3 * a.abs().mean()


def test_the_python_api_distils_and_loads_a_student_that_predicts_class_names(episode, tmp_path):
    """`tint.distill` takes {class: images} (PIL images or uint8 arrays) and its settings by
    their flag names; `tint.load_student` predicts class names, as the report's accuracy says."""
    root, _, drawn = episode
    data = open_dataset("glyphs", "val")
    supports = {
        name: [np.asarray(data.image(name, i)) for i in drawn.support[name]]
        for name in drawn.classes
    }
    held = {name: [data.image(name, i) for i in drawn.query[name]] for name in drawn.classes}
    small = {"num": 3, "ti_steps": 3, "ddim_steps": 3, "distill_steps": 20}
    report = tint.distill(supports, tmp_path / "api", eval=held, progress=False, **small)
    assert report["classes"] == drawn.classes  # the mapping's order
    assert report["method"] == "tint" and report["init"] == "pretrained"
    student = tint.load_student(tmp_path / "api")
    assert student.classes == drawn.classes
    images = [image for name in drawn.classes for image in held[name]]
    predicted = student.predict(images)
    truth = [name for name in drawn.classes for _ in held[name]]
    right = sum(p == t for p, t in zip(predicted, truth)) / len(truth)
    assert right == pytest.approx(report["held_out"]["student_accuracy"])
    probabilities = student.probabilities(images)
    assert probabilities.shape == (len(images), WAYS)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(len(images)))
    with pytest.raises(tint.TintError, match="unknown setting 'steps'"):
        tint.distill(supports, tmp_path / "bad", steps=3)
