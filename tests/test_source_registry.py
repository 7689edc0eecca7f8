"""Sources are a layer of their own: one module each, one registry, and a new source is one
module and one registry line away from every method that names it."""

from pathlib import Path

import pytest
import torch

from tint.commands import world
from tint.data import glyphs
from tint.data.images import LabelledImage, to_image
from tint.data.tasks import Task
from tint.errors import TintError
from tint.models.teachers import load_backbone
from tint.pipeline.recipe import RecipeSettings, parse_recipe
from tint.pipeline.students import Pipeline
from tint.sources import GENERATED, MINED, SOURCES, Source
from tint.sources.source import uint8
from tint.train.distill import DistillConfig


def test_each_registered_source_is_its_own_module_and_makes_or_labels_images():
    assert list(SOURCES) == ["tint", "ti", "augment", "boundary", "retrieval", "base"]
    for name, source in SOURCES.items():
        assert (source.images is None) != (source.labelled is None), name
        assert (source.images or source.labelled).__module__ == f"tint.sources.{name}"
        assert source.kind in (GENERATED, MINED) and source.help
    assert [n for n, s in SOURCES.items() if s.kind == MINED] == ["retrieval", "base"]


def _task() -> Task:
    novel = glyphs.split("novel")[:3]
    supports = {
        g.name: [LabelledImage(Path(g.name, f"{i}.png"), to_image(x)) for i, x in enumerate(xs)]
        for g in novel
        for xs in [glyphs.benchmark_instances(g, 2)]
    }
    return Task(list(supports), supports, seed=7)


def test_a_new_source_is_one_module_and_one_registry_line(monkeypatch, tmp_path):
    """The package docstring's example, the supports mirrored, registered and named by a
    method: the pipeline gives it a job and teaches the student its images."""
    calls = []

    def images(job, spelled):
        calls.append((spelled, job.task.seed, job.view_size))
        supports, _ = job.task.support_tensor(job.view_size)
        return uint8(supports.flip(-1))

    monkeypatch.setitem(SOURCES, "flipped", Source("flipped", GENERATED, "mirrored", images))
    recipe = parse_recipe("flipped@scratch")
    settings = RecipeSettings(distill=DistillConfig(steps=3))
    pipeline = Pipeline(settings, load_backbone(world.DEFAULT_TEACHER), progress=False)
    trained = pipeline.on(_task(), tmp_path).student(recipe)
    assert trained.transfer == 3 * 2 and trained.base == 0
    assert calls == [("flipped", 7, (32, 32))]
    with pytest.raises(TintError, match="the flipped source takes no option"):
        parse_recipe("flipped:0.5")


def test_the_same_task_makes_the_same_student_and_its_seed_another(tmp_path):
    """A student's weights and batches are functions of (run seed, task seed) alone: the same
    task gives the same student, another task seed another one."""
    backbone = load_backbone(world.DEFAULT_TEACHER)
    settings = RecipeSettings(distill=DistillConfig(steps=3), student_init="scratch")
    pipeline = Pipeline(settings, backbone, progress=False)
    recipe = parse_recipe("supports")

    def weights(task):
        student = pipeline.on(task, tmp_path).student(recipe).student
        return torch.cat([p.detach().flatten() for p in student.parameters()])

    task = _task()
    assert torch.equal(weights(task), weights(task))
    task.seed = 8
    assert not torch.equal(weights(task), weights(_task()))


def test_a_pretrained_student_trains_its_own_number_of_steps(tmp_path):
    """`distill.pretrained_steps` is the steps of students that start pretrained; the others
    train `distill.steps`."""
    backbone = load_backbone(world.DEFAULT_TEACHER)
    distill = DistillConfig(steps=3, pretrained_steps=2)
    settings = RecipeSettings(distill=distill, student_init="scratch")
    pipeline = Pipeline(settings, backbone, pretrained=world.shipped_student("conv4"))
    work = pipeline.on(_task(), tmp_path)
    assert work.student(parse_recipe("supports")).state["step"] == 3
    assert work.student(parse_recipe("supports@pretrained")).state["step"] == 2
