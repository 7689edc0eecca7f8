"""`tint benchmark` and `tint plan`: episodes, results, resume, bad input."""

import csv
import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from tint.cli import main
from tint.commands import world
from tint.config import from_dict, to_dict
from tint.data import glyphs
from tint.data.images import shrunk
from tint.data.tasks import Task
from tint.eval.benchmark import BenchmarkPlan, BenchmarkSettings
from tint.models.teachers import load_backbone, specialize
from tint.pipeline.recipe import RecipeSettings
from tint.pipeline.students import Pipeline
from tint.sources import SOURCES
from tint.sources.base_pool import BasePool

FAST = ["--ways", "3", "--shots", "1", "--queries", "4", "--distill-steps", "15", "--quiet"]


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def pilot(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "out"
    args = ["benchmark", "--dataset", "glyphs", "--methods", "teacher,supports", "--out", out]
    assert main([str(a) for a in [*args, "--episodes", "3", *FAST]]) == 0
    return out, args


def test_results_hold_every_episode_and_method_with_intervals(pilot):
    out, _ = pilot
    results = json.loads((out / "results.json").read_text())
    assert [e["index"] for e in results["episodes"]] == [0, 1, 2]
    for episode in results["episodes"]:
        assert len(episode["classes"]) == 3
        for name in ("teacher", "supports"):
            assert episode["methods"][name]["total"] == 3 * 4
    for name in ("teacher", "supports"):
        s = results["summary"][name]
        accuracies = [e["methods"][name]["correct"] / 12 for e in results["episodes"]]
        assert s["accuracy"] == pytest.approx(sum(accuracies) / 3)
        assert s["ci95"][0] <= s["accuracy"] <= s["ci95"][1]
    assert "supports - teacher" in results["paired"]
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 3 * 2 and {r["method"] for r in rows} == {"teacher", "supports"}
    episodes = json.loads((out / "episodes.json").read_text())["episodes"]
    first = episodes[0]
    assert not set(first["support"][first["classes"][0]]) & set(first["query"][first["classes"][0]])
    assert "95% interval" in (out / "report.html").read_text()


def test_the_teacher_beats_a_one_shot_student_trained_from_scratch(pilot):
    out, _ = pilot
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary["teacher"]["accuracy"] > summary["supports"]["accuracy"]


def test_resume_with_more_episodes_keeps_the_finished_ones(pilot, capsys):
    out, args = pilot
    first = (out / "episodes" / "0000" / "results" / "supports.json").read_text()
    code, stdout, err = run(capsys, *args, "--episodes", "4", *FAST, "--resume")
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert [e["index"] for e in results["episodes"]] == [0, 1, 2, 3]
    assert (out / "episodes" / "0000" / "results" / "supports.json").read_text() == first
    episodes = json.loads((out / "episodes.json").read_text())["episodes"]
    assert len(episodes) == 4


def test_resume_with_other_settings_is_refused(pilot, capsys):
    out, args = pilot
    code, _, err = run(capsys, *args, "--episodes", "3", *FAST, "--alpha", "0.3", "--resume")
    assert code == 1 and "different settings" in err


def test_plan_recommends_episodes_and_queries(pilot, capsys):
    out, _ = pilot
    code, stdout, _ = run(capsys, "plan", out / "results.json", "--half-width", "0.05", "--json")
    assert code == 0
    plan = json.loads(stdout)
    summary = json.loads((out / "results.json").read_text())["summary"][plan["method"]]
    # The pilot's own variance terms, and a plan that reaches the target by formula (1) with
    # no more queries than a class has images beyond its support.
    assert plan["between_episode_var"] == summary["between_episode_var"]
    assert plan["query_var"] == summary["query_var"] / 3  # per class of a 3-way episode
    assert plan["half_width"] <= 0.05 and plan["episodes"] >= 2
    assert 1 <= plan["queries"] <= 19


def test_plan_for_a_paired_difference_counts_only_how_the_difference_varies(tmp_path, capsys):
    # Episodes differ a lot (every method's accuracy swings with them), the difference between
    # two methods little: the difference needs far fewer episodes than either method.
    a = [12, 45, 30, 60, 20, 50, 35, 58]
    b = [8, 40, 27, 52, 18, 47, 29, 55]
    counts = {m: [{"correct": c, "total": 75} for c in v] for m, v in (("a", a), ("b", b))}
    (tmp_path / "pilot.json").write_text(json.dumps(counts))
    flags = ["--half-width", "0.02", "--ways", "5", "--cost-episode", "60", "--max-queries", "19"]
    code, stdout, err = run(capsys, "plan", tmp_path / "pilot.json", *flags, "--json")
    assert code == 0, err
    alone = json.loads(stdout)
    code, stdout, err = run(capsys, "plan", tmp_path / "pilot.json", *flags, "--method", "a - b")
    assert code == 0, err
    d = [(x - y) / 75 for x, y in zip(a, b)]
    mean = sum(d) / len(d)
    variance = sum((x - mean) ** 2 for x in d) / (len(d) - 1)
    episodes = math.ceil(1.959964**2 * variance / 0.02**2)
    assert stdout.startswith(f"{episodes} episodes x 15 queries per class reach a 95% half-width")
    assert "for a - b" in stdout.splitlines()[0] and episodes < alone["episodes"]
    code, _, err = run(capsys, "plan", tmp_path / "pilot.json", *flags, "--method", "a - c")
    assert code == 1 and "has no method 'c'" in err and len(err.strip().splitlines()) == 1


def test_tint_random_draws_an_alpha_for_each_image_and_tint_a_uses_a(tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(
        capsys,
        *["benchmark", "--dataset", "glyphs", "--methods", "tint:0.3,tint:random", "--out", out],
        *["--episodes", "1", "--num", "6", "--ti-steps", "2", "--ddim-steps", "2", *FAST],
    )
    assert code == 0, err
    episode = out / "episodes" / "0000"
    fixed = json.loads((episode / "tint-0.3" / "manifest.json").read_text())["images"]
    drawn = json.loads((episode / "tint-random" / "manifest.json").read_text())["images"]
    assert len(fixed) == len(drawn) == 3 * 6
    assert {e["alpha"] for e in fixed} == {0.3}
    alphas = [e["alpha"] for e in drawn]
    assert len(set(alphas)) == len(alphas) and min(alphas) >= 0 and max(alphas) <= 1
    assert min(alphas) < 0.3 < max(alphas)
    results = json.loads((out / "results.json").read_text())
    assert set(results["summary"]) == {"tint:0.3", "tint:random"}
    # Each method's stage times: the first one specialised (shared with the second, which found
    # the specialisation on disk) and made the teacher; both generated, distilled and scored,
    # and their stages fit in their time.
    first, second = (results["episodes"][0]["methods"][m] for m in ("tint:0.3", "tint:random"))
    shared = {"teacher", "textual_inversion", "null_text_inversion"}
    own = {"generation", "teacher_labels", "distillation", "scoring"}
    assert set(first["stages"]) == shared | own and set(second["stages"]) == own
    for result in (first, second):
        assert all(v >= 0 for v in result["stages"].values())
        assert sum(result["stages"].values()) <= result["seconds"] + 0.05
        assert result["stages"]["scoring"] == pytest.approx(result["query_seconds"], abs=0.01)


COMMITTED = sorted((Path(__file__).parents[1] / "benchmarks").glob("*/run.json"))


@pytest.mark.parametrize("run_json", COMMITTED, ids=lambda p: p.parent.name)
def test_a_committed_benchmark_records_every_setting_it_ran_with(run_json):
    """`--config run.json` repeats a committed benchmark only if its file names every setting:
    one it leaves out would take today's default (they move: 10 DDIM steps, 16 views, bfloat16
    students since tint 0.5). Read back and written out, the settings are the file's."""
    recorded = json.loads(run_json.read_text())
    settings = from_dict(BenchmarkSettings, recorded, str(run_json))
    assert to_dict(settings) == recorded


@pytest.mark.e2e
def test_sources_combine_and_students_start_from_the_shipped_pretrained_network(tmp_path, capsys):
    """base learns from the whole base pool (each image's 2 labelled views), base+tint from it
    and TINT's images, which tint then finds made, labelled; @pretrained students start from the
    glyph world's base-pretrained conv4 and, on the supports alone, beat fresh ones; a method
    without @ starts as --student-init says."""
    out = tmp_path / "out"
    methods = ["supports", "supports@pretrained", "base", "base+tint", "tint"]
    code, _, err = run(
        capsys,
        *["benchmark", "--dataset", "glyphs", "--methods", ",".join(methods), "--out", out],
        *["--episodes", "2", "--base-pool", "733", "--num", "4", "--ti-steps", "2"],
        *["--ddim-steps", "2", *FAST, "--ways", "5", "--queries", "6", "--distill-steps", "40"],
        *["--student-init", "scratch"],
    )
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    for episode in results["episodes"]:
        got = episode["methods"]
        assert (got["base"]["transfer"], got["base"]["base"]) == (0, 2 * 733)
        assert (got["base+tint"]["transfer"], got["base+tint"]["base"]) == (5 * 4, 2 * 733)
        assert got["tint"]["transfer"] == 5 * 4 and "base" not in got["tint"]
        assert got["supports@pretrained"]["init"] == "pretrained"
        assert got["base"]["init"] == "scratch" and "init" not in got["supports"]
        # tint found base+tint's images on disk and their labelled views in memory.
        assert not {"textual_inversion", "teacher_labels"} & set(got["tint"]["stages"])
    folder = out / "episodes" / "0000"
    assert sorted(p.name for p in folder.iterdir()) == [
        "results",
        "specialization",
        "supports",
        "tint",
    ]
    correct = {m: sum(e["methods"][m]["correct"] for e in results["episodes"]) for m in methods}
    assert correct["supports@pretrained"] > correct["supports"] + 6


def test_a_task_teacher_labels_the_base_pool_through_its_head_as_it_would_whole(tmp_path):
    """The base pool's views are embedded once; a task's teacher labels them with its head
    alone, which gives its own logits on the views (float tolerance)."""
    backbone = load_backbone(world.DEFAULT_TEACHER)
    base = glyphs.split("base")[:40]
    images = torch.cat([glyphs.benchmark_instances(g, 1) for g in base])
    pool = BasePool((images * 255).round().to(torch.uint8), backbone)
    pipeline = Pipeline(RecipeSettings(), backbone, base_pool=pool, progress=False)
    novel = glyphs.split("novel")[:3]
    names = [g.name for g in novel]
    teacher = specialize(backbone, names, [glyphs.benchmark_instances(g, 2) for g in novel])
    job = dataclasses.replace(pipeline.on(Task(names, {}), tmp_path).job(), teacher=lambda: teacher)
    views, logits = SOURCES["base"].labelled(job)
    assert views.dtype == torch.uint8 and len(views) == len(logits) == 2 * 40
    assert not torch.equal(views[:40], views[40:])
    torch.testing.assert_close(logits, teacher.logits(views.float() / 255), atol=1e-4, rtol=1e-4)
    assert SOURCES["base"].labelled(job)[0] is views  # made once for every task


def test_the_report_draws_every_method_and_its_paired_differences(pilot):
    """report.html's figures are PNGs inside the page, each saying in words which methods it
    shows: the accuracy of every method, and the paired differences against the baselines."""
    import base64
    import io
    import re

    from PIL import Image

    out, _ = pilot
    html = (out / "report.html").read_text()
    figures = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]*)">', html)
    alts = [alt for _, alt in figures]
    accuracy = next(a for a in alts if a.startswith("accuracy with 95% intervals of "))
    assert accuracy.endswith("teacher, supports")
    assert any(a.startswith("paired differences") and "supports - teacher" in a for a in alts)
    for data, _ in figures:
        width, height = Image.open(io.BytesIO(base64.b64decode(data))).size
        assert width > 300 and height > 100


def test_shrink_makes_every_image_of_an_episode_small_before_any_method_sees_it(tmp_path):
    """--shrink 8 writes the supports at 8 px and scores queries made as small, on the episodes
    a full-size run draws: small inputs cost the teacher accuracy (as small photos do)."""
    runs = {}
    for name, flags in (("full", []), ("small", ["--shrink", "8"])):
        out = tmp_path / name
        args = ["benchmark", "--dataset", "glyphs", "--methods", "teacher", "--out", out]
        assert main([str(a) for a in [*args, "--episodes", "2", *FAST, *flags]]) == 0
        runs[name] = out
    sizes = {
        name: {Image.open(p).size for p in (out / "episodes").glob("*/supports/*/*.png")}
        for name, out in runs.items()
    }
    assert sizes == {"full": {(32, 32)}, "small": {(8, 8)}}
    results = {n: json.loads((out / "results.json").read_text()) for n, out in runs.items()}
    classes = {n: [e["classes"] for e in r["episodes"]] for n, r in results.items()}
    assert classes["full"] == classes["small"]
    assert results["small"]["settings"]["shrink"] == 8
    accuracy = {n: r["summary"]["teacher"]["accuracy"] for n, r in results.items()}
    assert accuracy["small"] < accuracy["full"]


def test_shrunk_keeps_the_aspect_and_leaves_small_images_alone():
    wide = Image.new("RGB", (40, 20))
    assert shrunk(wide, 16).size == (16, 8)
    assert shrunk(wide, 64) is wide


def test_workers_find_a_local_upscaler_from_any_directory(tmp_path, monkeypatch):
    """A run names its upscaler's folder as the user gave it (relative, so that run.json repeats
    in any clone); Ray workers, whose working directory is another, get its absolute path and
    see it shared. A hub id stays a hub id."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "up").mkdir()
    for upscale, expected in (("up", str(tmp_path / "up")), ("org/upscaler", "org/upscaler")):
        settings = BenchmarkSettings(dataset="glyphs", out="out")
        generation = dataclasses.replace(settings.setup.generation, upscale=upscale)
        settings.setup = dataclasses.replace(settings.setup, generation=generation)
        plan = BenchmarkPlan(settings, (), "teacher", None, None).absolute()
        assert plan.settings.setup.generation.upscale == expected
        assert (expected in plan.shared()) == (upscale == "up")
