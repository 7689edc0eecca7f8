"""`tint sources`: what each source's images are to the teacher, over a benchmark's episodes."""

import json

import pytest
import torch

from tint.cli import main
from tint.commands import world
from tint.eval.source_measures import Measured, measure
from tint.models.teachers import load_backbone, specialize

pytestmark = pytest.mark.e2e

WAYS, NUM, RETRIEVED = 3, 4, 5


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A 2-episode 3-way 2-shot run of tint, measured with retrieval (--retrieval-num images
    per class, not --num) and the supports."""
    out = tmp_path_factory.mktemp("sources") / "run"
    args = ["benchmark", "--dataset", "glyphs", "--methods", "teacher,tint", "--out", out]
    args += ["--episodes", 2, "--ways", WAYS, "--shots", 2, "--queries", 4, "--num", NUM]
    args += ["--ti-steps", 2, "--ddim-steps", 2, "--distill-steps", 5, "--base-pool", 733]
    args += ["--retrieval-num", RETRIEVED]
    assert main([str(a) for a in [*args, "--quiet"]]) == 0
    assert main(["sources", str(out), "--sources", "tint,retrieval,supports", "--quiet"]) == 0
    return json.loads((out / "sources.json").read_text())


def test_every_source_is_measured_on_every_finished_episode(measured):
    assert measured["sources"] == ["tint", "retrieval", "supports"]
    assert [e["index"] for e in measured["episodes"]] == [0, 1]
    for episode in measured["episodes"]:
        assert episode["tint"]["images"] == WAYS * NUM
        assert episode["retrieval"]["images"] == WAYS * RETRIEVED
        assert episode["supports"]["images"] == WAYS * 2
        # The teacher's prototypes are the supports' mean embeddings: it knows its supports.
        assert episode["supports"]["teacher_agrees"] == 1.0
        # A base image is of none of the task's classes: no right class to agree with.
        assert episode["retrieval"]["teacher_agrees"] is None
        for values in (episode["tint"], episode["retrieval"]):
            assert 0 <= values["feature_spread"] <= 2 and 0 <= values["pixel_spread"] <= 2
            assert -1 <= values["query_coverage"] <= 1 + 1e-6


def test_paired_differences_are_per_episode_differences_to_the_first_source(measured):
    summary, paired = measured["summary"], measured["paired"]
    assert set(paired) == {"retrieval - tint", "supports - tint"}
    assert "teacher_agrees" not in summary["retrieval"]
    for metric in ("query_coverage", "nearest_neighbour", "pixel_spread"):
        diffs = [e["retrieval"][metric] - e["tint"][metric] for e in measured["episodes"]]
        assert paired["retrieval - tint"][metric]["mean"] == pytest.approx(sum(diffs) / 2)
        lo, hi = summary["tint"][metric]["ci95"]
        assert lo <= summary["tint"][metric]["mean"] <= hi


def test_images_that_are_the_queries_cover_them_and_copies_do_not_spread():
    backbone = load_backbone(world.DEFAULT_TEACHER)
    g = torch.Generator().manual_seed(0)
    queries = torch.rand(6, 3, *backbone.input_size, generator=g)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    teacher = specialize(backbone, ["a", "b"], [queries[:3], queries[3:]])
    same = measure(teacher, Measured(queries, labels), queries, labels)
    assert same["query_coverage"] == pytest.approx(1.0, abs=1e-5)
    assert same["nearest_neighbour"] == 1.0
    copies = Measured(queries[[0, 0, 3, 3]], torch.tensor([0, 0, 1, 1]))
    flat = measure(teacher, copies, queries, labels)
    assert flat["feature_spread"] == pytest.approx(0.0, abs=1e-5)
    assert flat["pixel_spread"] == pytest.approx(0.0, abs=1e-5)
    assert flat["query_coverage"] < same["query_coverage"]


@pytest.mark.parametrize(
    ("sources", "named"),
    [("tint,base", "unknown source 'base'"), ("tint,tint", "named twice")],
)
def test_bad_sources_are_one_line(measured, sources, named, tmp_path, capsys):
    code = main(["sources", str(tmp_path), "--sources", sources, "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and named in err, err
