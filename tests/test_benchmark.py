"""`tint benchmark` and `tint plan`: episodes, results, resume, bad input."""

import csv
import json

import pytest
from PIL import Image

from tint.cli import main

FAST = ["--ways", "3", "--shots", "1", "--queries", "4", "--student-steps", "15", "--quiet"]


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
    for key in ("episodes", "queries", "half_width", "between_episode_var"):
        assert key in plan
    assert plan["half_width"] <= 0.05 and plan["episodes"] >= 2
    assert 1 <= plan["queries"] <= 19  # 20 instances per class, 1 in the support


def _folder_dataset(tmp, classes=3, images=4):
    root = tmp / "tiny"
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(images):
            Image.new("RGB", (8, 8), (40 * c, 10 * i, 0)).save(root / f"c{c}" / f"{i}.png")
    return root


def _args(dataset, *extra):
    return lambda tmp: ["--dataset", dataset(tmp) if callable(dataset) else dataset, *extra]


BAD = {
    "unknown dataset": (_args("imagenet"), "unknown dataset 'imagenet'", "glyphs, folder:PATH"),
    "unknown method": (
        _args("glyphs", "--methods", "teacher,magic"),
        "unknown method 'magic'",
        "retrieval",
    ),
    "missing split files": (
        _args(lambda t: f"miniimagenet:{(t / 'mini').mkdir() or t / 'mini'}"),
        "test.csv",
        "images/",
    ),
    "more ways than classes": (
        _args(lambda t: f"folder:{_folder_dataset(t)}", "--ways", "5"),
        "5-way",
        "3",
    ),
    "too few images for shots + queries": (
        _args(lambda t: f"folder:{_folder_dataset(t)}", "--ways", "2", "--shots", "2"),
        "has 4 images",
        "2 shots + 15 queries",
    ),
    "unsupported teacher": (
        lambda t: ["--dataset", "glyphs", "--teacher", _bad_teacher(t)],
        "not a supported teacher",
        "DINOv2",
    ),
    "corrupt image": (
        lambda t: [
            "--dataset",
            f"folder:{_corrupt(t)}",
            "--ways",
            "2",
            "--shots",
            "1",
            "--queries",
            "3",
        ],
        "not a readable image",
        "c1/2.png",
    ),
}


def _bad_teacher(tmp):
    (tmp / "bert").mkdir()
    (tmp / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    return tmp / "bert"


def _corrupt(tmp):
    root = _folder_dataset(tmp, classes=2)
    (root / "c1" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return root


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    make, *named = BAD[case]
    out = tmp_path / "out"
    code, _, err = run(capsys, "benchmark", *make(tmp_path), "--out", out, "--quiet")
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    for text in named:
        assert text in err
    assert not out.exists()
