"""`tint curve`: accuracy against one setting, from benchmark runs that differ in it alone."""

import json
import shutil

import pytest
from PIL import Image

from tint.cli import main
from tint.eval.variance import paired_difference, summarize

FAST = ["--ways", "3", "--shots", "1", "--queries", "4", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three runs of one benchmark at 5, 10 and 20 student steps; the 20-step one stops after
    2 of the others' 3 episodes."""
    root = tmp_path_factory.mktemp("curve")
    made = {}
    for steps, episodes in ((10, 3), (5, 3), (20, 2)):
        out = root / f"steps{steps}"
        args = ["benchmark", "--dataset", "glyphs", "--methods", "teacher,supports"]
        args += ["--out", out, "--episodes", episodes, "--distill-steps", steps, *FAST]
        assert main([str(a) for a in args]) == 0
        made[steps] = out
    return root, made


def _counts(run, method: str, episodes: int):
    results = json.loads((run / "results.json").read_text())
    return [
        (e["methods"][method]["correct"], e["methods"][method]["total"])
        for e in results["episodes"][:episodes]
    ]


def test_a_curve_is_each_runs_accuracy_over_the_episodes_all_finished(runs, capsys):
    root, made = runs
    out = root / "curve"
    listed = ",".join(str(made[s]) for s in (10, 20, 5))
    assert main(["curve", "--runs", listed, "--x", "setup.distill.steps", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    curve = json.loads((out / "curve.json").read_text())
    assert curve["episodes"] == 2 and curve["methods"] == ["teacher", "supports"]
    assert [p["value"] for p in curve["points"]] == [5, 10, 20]
    for i, point in enumerate(curve["points"]):
        for method in ("teacher", "supports"):
            counts = _counts(made[point["value"]], method, 2)
            got = point["methods"][method]
            assert got["accuracy"] == pytest.approx(summarize(counts)["accuracy"])
            if i == 0:
                assert got["minus_previous"] is None
            else:
                before = _counts(made[curve["points"][i - 1]["value"]], method, 2)
                expected = paired_difference(counts, before)["mean"]
                assert got["minus_previous"]["mean"] == pytest.approx(expected)
    width, height = Image.open(out / "curve.png").size
    assert width >= 640 and height >= 300  # readable type, the legend beside the plot
    assert "<table>" in (out / "report.html").read_text()
    assert "| `supports` | 20 |" in printed
    for run in made.values():  # each run's own report shows the curve, and keeps it on resume
        assert (
            json.loads((run / "curves" / "setup.distill.steps-5-10-20.json").read_text()) == curve
        )
        assert "Against setup.distill.steps" in (run / "report.html").read_text()
    rerun = ["benchmark", "--resume", "--config", str(made[5] / "run.json"), "--out", str(made[5])]
    assert main([*rerun, "--episodes", "4", "--quiet"]) == 0
    report = (made[5] / "report.html").read_text()
    assert "4 episodes" in report and "Against setup.distill.steps" in report


def test_a_run_from_before_an_unset_setting_existed_joins_the_curve(runs, tmp_path):
    """A run.json without a setting whose value is unset (None) in the others, as a run made
    before that setting existed has, is the same run."""
    _, made = runs
    older = shutil.copytree(made[10], tmp_path / "older")
    settings = json.loads((older / "run.json").read_text())
    assert settings["setup"].pop("retrieval_num") is None
    (older / "run.json").write_text(json.dumps(settings))
    argv = ["curve", "--runs", f"{made[5]},{older}", "--x", "setup.distill.steps"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--leave-runs"]) == 0
    curve = json.loads((tmp_path / "out" / "curve.json").read_text())
    assert [p["value"] for p in curve["points"]] == [5, 10]
    settings["setup"]["distill"]["lr"] = None  # unset where the others set it: another run
    (older / "run.json").write_text(json.dumps(settings))
    assert main([*argv, "--out", str(tmp_path / "again"), "--leave-runs"]) == 1


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("one run", "a curve needs at least 2 runs"),
        ("another setting differs", "differ in more than setup.distill.steps"),
        ("no such setting", "run.json has no setting 'setup.nope'"),
        ("a method not in every run", "method 'tint' is not in every run"),
    ],
)
def test_runs_that_are_not_one_curve_are_one_line_and_write_nothing(
    runs, case, named, tmp_path, capsys
):
    _, made = runs
    x, methods = "setup.distill.steps", []
    listed = [made[5], made[10]]
    if case == "one run":
        listed = [made[5]]
    elif case == "another setting differs":
        other = tmp_path / "other"
        args = ["benchmark", "--dataset", "glyphs", "--methods", "teacher,supports", "--out"]
        args += [other, "--episodes", 2, "--distill-steps", 40, "--distill-lr", 1e-2, *FAST]
        assert main([str(a) for a in args]) == 0
        listed.append(other)
    elif case == "no such setting":
        x = "setup.nope"
    else:
        methods = ["--methods", "tint"]
    argv = ["curve", "--runs", ",".join(map(str, listed)), "--x", x, "--out"]
    code = main([*argv, str(tmp_path / "out"), *methods])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and named in err, err
    assert not (tmp_path / "out").exists()
