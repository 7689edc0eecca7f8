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
from tint.sources.base_pool import BasePool
from tint.sources.source import uint8
from tint.train.distill import DistillConfig


def test_each_registered_source_is_its_own_module_and_makes_or_labels_images():
    assert list(SOURCES) == ["tint", "ti", "augment", "boundary", "lora", "retrieval", "base"]
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


def test_a_base_pool_is_a_folder_of_any_depth_or_a_list_and_skips_what_is_not_an_image(
    tmp_path, capsys
):
    backbone = load_backbone(world.DEFAULT_TEACHER)
    glyph_images = [to_image(glyphs.benchmark_instances(g, 1)[0]) for g in glyphs.split("base")[:4]]
    for i, image in enumerate(glyph_images):
        (tmp_path / "deep" / f"d{i % 2}" / "x").mkdir(parents=True, exist_ok=True)
        image.save(tmp_path / "deep" / f"d{i % 2}" / "x" / f"{i}.png")
    (tmp_path / "deep" / "d0" / "notes.txt").write_text("not an image")
    (tmp_path / "deep" / ".hidden").mkdir()
    (tmp_path / "deep" / ".hidden" / "skip.png").write_bytes(b"hidden, never read")
    pool = BasePool.from_files(tmp_path / "deep", backbone, progress=False)
    assert len(pool) == 4
    err = capsys.readouterr().err
    assert "skipped 1 of 5 files" in err and "notes.txt" in err and len(err.splitlines()) == 1

    listing = tmp_path / "pool.txt"
    listing.write_text("deep/d0/x/0.png\n# a comment\n\ndeep/d1/x/1.png\nmissing.png\n")
    listed = BasePool.from_files(listing, backbone, progress=False)
    assert torch.equal(listed.images, pool.images[[0, 2]])  # sorted: d0/x/0, d0/x/2, d1/x/1, ...
    assert "skipped 1 of 3 files" in capsys.readouterr().err

    (tmp_path / "empty" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "a" / "b.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(TintError, match="no readable image in the base pool"):
        BasePool.from_files(tmp_path / "empty", backbone, progress=False)


def test_a_base_pools_embeddings_are_made_once_in_shards_and_found_again(tmp_path, monkeypatch):
    """The teacher embeds a pool once, shard by shard into the cache (a run killed half-way
    keeps its finished shards); a later pool of the same images and teacher reads them."""
    import tint.sources.base_pool as base_pool

    monkeypatch.setattr(base_pool, "SHARD", 256)
    backbone = load_backbone(world.DEFAULT_TEACHER)
    images = (torch.rand(600, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255).to(
        torch.uint8
    )
    first = BasePool(images, backbone, tmp_path)
    (shards,) = [sorted(d.iterdir()) for d in tmp_path.iterdir()]
    assert [p.name for p in shards] == [
        "00000.safetensors",
        "00001.safetensors",
        "00002.safetensors",
    ]
    shards[1].unlink()  # as if killed while making it
    calls = []
    original = BasePool._embed
    monkeypatch.setattr(
        BasePool, "_embed", lambda self, x: calls.append(len(x)) or original(self, x)
    )
    again = BasePool(images, backbone, tmp_path)
    assert calls == [256]  # only the missing shard, in one batch of 256
    torch.testing.assert_close(again.embeddings, first.embeddings)
    other = BasePool(images[:100], backbone, tmp_path)  # other images: their own cache
    assert len(other.embeddings) == 100 and len(list(tmp_path.iterdir())) == 2


def test_a_large_pool_is_searched_through_faiss_with_the_same_neighbours(monkeypatch):
    """Above `faiss_above` images the nearest are found by a faiss index; on a pool small
    enough to check exhaustively, they are the same."""
    backbone = load_backbone(world.DEFAULT_TEACHER)
    g = torch.Generator().manual_seed(1)
    images = (torch.rand(2000, 3, 32, 32, generator=g) * 255).to(torch.uint8)
    exhaustive = BasePool(images, backbone)
    through_faiss = BasePool(images, backbone, faiss_above=0)
    through_faiss.embeddings = exhaustive.embeddings
    supports = torch.rand(4, 3, 32, 32, generator=g)
    chosen = exhaustive.nearest(supports, 40)
    assert through_faiss._index is None
    assert torch.equal(through_faiss.nearest(supports, 40), chosen)
    assert through_faiss._index is not None and len(set(chosen.tolist())) == 40
