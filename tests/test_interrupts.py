"""kill -9 at any moment, then --resume: the same bytes as a run that was never interrupted
(images, specialisations, student weights, benchmark counts); and one OUT, one process at a time.

Each command runs as a real process and is killed at several points in turn: as soon as it has
started and in the middle of a stage. A write is atomic (a temporary file, then a rename), so a
kill in the middle of one leaves its temporary file behind and the target absent, and a kill
between the two renames of a checkpoint leaves the new one under its scratch name: those states,
which a kill cannot be timed to land in, are made by hand."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tint.cli import main
from tint.data import glyphs
from tint.data.images import to_image
from tint.diffusion.pipeline import group_record

from .conftest import write_supports

pytestmark = pytest.mark.e2e


def start(argv: list[str]) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tint.cli", *map(str, argv)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(process: subprocess.Popen, ready, what: str, timeout: float = 300) -> None:
    """Return the moment `ready()` holds; fail if the process ends or times out first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"finished before {what}: {process.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.01)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def kill_when(process: subprocess.Popen, ready, what: str) -> None:
    """kill -9 the process the moment `ready()` holds."""
    wait_for(process, ready, what)
    kill(process)


def files(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob(pattern))}


def leftovers(root: Path) -> list[str]:
    """Temporary files, half-swapped checkpoints and locks: what an interrupted run leaves."""
    names = [".tmp", ".partial", ".old", ".tint.lock"]
    return [
        str(p)
        for p in root.rglob("*")
        if any(p.name.endswith(n) for n in names) or "-group-" in p.name
    ]


def half_written(target: Path) -> None:
    """What a kill in the middle of writing `target` leaves: its temporary file, part written,
    and no target."""
    data = target.read_bytes()
    target.unlink()
    (target.parent / f".{target.name}.x1y2z3.tmp").write_bytes(data[: len(data) // 3])


# --- tint generate ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generate_case(model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("generate")
    write_supports(root / "supports", shots=3)
    argv = ["generate", root / "supports", "--model", model_dir, "--num", "8", "--batch", "3"]
    argv += ["--ti-steps", "10", "--ddim-steps", "3", "--quiet"]
    assert main([str(a) for a in [*argv, "--out", root / "reference"]]) == 0
    return root, argv


def test_generate_killed_at_three_points_resumes_to_the_same_bytes(generate_case, capsys):
    root, argv = generate_case
    out = root / "killed"
    args = [*argv, "--out", out, "--resume"]
    first = start(args)
    wait_for(first, lambda: (out / "run.json").is_file(), "its start")
    # While it works there, a second command on the same OUT refuses and writes nothing.
    assert main([str(a) for a in args]) == 1
    err = capsys.readouterr().err
    assert f"in use by another tint process (pid {first.pid})" in err
    assert len(err.strip().splitlines()) == 1
    kill(first)  # early: its lock file stays behind, naming a dead process
    kill_when(start(args), lambda: len(list(out.rglob("*.png"))) >= 4, "generation")
    half_written(sorted((out / "images").rglob("*.png"))[-1])
    assert main([str(a) for a in args]) == 0  # takes the dead process's lock over
    reference = root / "reference"
    assert files(out, "*.png") == files(reference, "*.png")
    assert files(out, "*.safetensors") == files(reference, "*.safetensors")
    assert leftovers(out) == []


def test_a_kill_while_saving_one_class_of_a_stage_resumes_to_the_same_bytes(generate_case):
    """A stage computes its classes together and saves them one by one: killed between two
    saves, the resumed run computes the same group again rather than the classes left alone
    (whose numbers would round differently)."""
    root, argv = generate_case
    out = shutil.copytree(root / "reference", root / "between-saves")
    specs = out / "specialization"
    (sorted(specs.iterdir())[0] / "specialization.json").unlink()  # saved second, so not saved
    classes = sorted(p.name for p in specs.iterdir())
    group_record(specs, "null-text", classes[0]).write_text(json.dumps({"classes": classes}))
    shutil.rmtree(out / "images")
    (out / "manifest.json").unlink()
    assert main([str(a) for a in [*argv, "--out", out, "--resume"]]) == 0
    assert files(out, "*.png") == files(root / "reference", "*.png")
    assert files(out, "*.safetensors") == files(root / "reference", "*.safetensors")
    assert leftovers(out) == []


# --- tint distill -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def distill_case(model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    for glyph in glyphs.split("novel")[:3]:
        (root / "supports" / glyph.name).mkdir(parents=True)
        for i, x in enumerate(glyphs.benchmark_instances(glyph, 2)):
            to_image(x).save(root / "supports" / glyph.name / f"{i}.png")
    argv = ["distill", root / "supports", "--model", model_dir, "--num", "6", "--ti-steps", "5"]
    argv += ["--ddim-steps", "3", "--distill-steps", "40", "--distill-checkpoint-every", "10"]
    argv += ["--quiet"]
    assert main([str(a) for a in [*argv, "--out", root / "reference"]]) == 0
    return root, argv


def test_distill_killed_at_three_points_resumes_to_the_same_student(distill_case):
    root, argv = distill_case
    out = root / "killed"
    args = [*argv, "--out", out, "--resume"]
    training = out / "training"

    def step() -> int:
        try:
            return json.loads((training / "state.json").read_text())["step"]
        except (OSError, ValueError, KeyError):
            return 0

    kill_when(start(args), lambda: any((out / "tint").rglob("*.png")), "generation")
    kill_when(start(args), lambda: step() >= 20, "distillation")
    # Killed between the two renames of a checkpoint: the new one whole, under its scratch name.
    training.rename(out / "training.partial")
    half_written(out / "tint" / "manifest.json")
    assert main([str(a) for a in args]) == 0
    reference = root / "reference"
    assert (out / "student.safetensors").read_bytes() == (
        reference / "student.safetensors"
    ).read_bytes()
    assert files(out / "tint", "*.png") == files(reference / "tint", "*.png")
    assert leftovers(out) == []


# --- tint benchmark -----------------------------------------------------------------------------


def test_benchmark_killed_at_three_points_resumes_to_the_same_counts(model_dir, tmp_path):
    argv = ["benchmark", "--dataset", "glyphs", "--ways", "2", "--shots", "1", "--queries", "5"]
    argv += ["--episodes", "2", "--methods", "teacher,supports,tint", "--num", "3"]
    argv += ["--distill-steps", "10", "--ti-steps", "5", "--ddim-steps", "3", "--quiet"]
    argv += ["--model", model_dir]
    assert main([str(a) for a in [*argv, "--out", tmp_path / "reference"]]) == 0
    out = tmp_path / "killed"
    args = [*argv, "--out", out, "--resume"]
    episodes = out / "episodes"
    kill_when(start(args), lambda: any(episodes.glob("0000/tint/images/*/*.png")), "episode 0")
    kill_when(start(args), lambda: (episodes / "0001" / "results").is_dir(), "episode 1")
    half_written(out / "results.json")
    assert main([str(a) for a in args]) == 0

    def counts(folder):
        results = json.loads((folder / "results.json").read_text())
        return [
            {m: (r["correct"], r["total"]) for m, r in e["methods"].items()}
            for e in results["episodes"]
        ]

    assert counts(out) == counts(tmp_path / "reference")
    assert leftovers(out) == []
