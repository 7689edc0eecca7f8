"""Benchmark episodes and class shards as Ray tasks: the same results as one process, nothing lost
to a dead worker, a failing episode or an interrupted driver. The session's local Ray instance (2
CPUs, see conftest) runs them."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from tint.cli import main
from tint.commands.world import DEFAULT_TEACHER

pytestmark = pytest.mark.ray

SMALL = [
    *("benchmark", "--dataset", "glyphs", "--split", "val", "--methods", "teacher,supports"),
    *("--queries", "5", "--distill-steps", "20", "--quiet"),
]


@pytest.fixture
def cluster(ray_address):
    return ray_address


@pytest.fixture
def threads():
    """`--threads 1` sets this process's torch threads; later tests get theirs back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _counts(out: Path) -> list[dict]:
    episodes = json.loads((out / "results.json").read_text())["episodes"]
    return [
        {"index": e["index"], **{m: (r["correct"], r["total"]) for m, r in e["methods"].items()}}
        for e in episodes
    ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Three episodes in this process, with one thread as each Ray task has."""
    out = tmp_path_factory.mktemp("reference") / "out"
    before = torch.get_num_threads()
    assert main([*SMALL, "--episodes", "3", "--out", str(out), "--threads", "1"]) == 0
    torch.set_num_threads(before)
    return out


def test_ray_and_one_process_give_the_same_counts_and_resume_each_other(
    cluster, reference, threads, tmp_path, monkeypatch
):
    # Two episodes on Ray's two workers, then the third in this process with --resume.
    ray_first = tmp_path / "ray-first"
    assert main([*SMALL, "--episodes", "2", "--out", str(ray_first), "--ray"]) == 0
    assert _counts(ray_first) == _counts(reference)[:2]
    argv = [*SMALL, "--episodes", "3", "--out", str(ray_first), "--resume", "--threads", "1"]
    assert main(argv) == 0
    assert _counts(ray_first) == _counts(reference)
    # And the other way: one episode in this process, the rest on Ray, into a folder named
    # relative to this process's working directory, which is not the workers'.
    monkeypatch.chdir(tmp_path)
    assert main([*SMALL, "--episodes", "1", "--out", "local-first", "--threads", "1"]) == 0
    argv = [*SMALL, "--episodes", "3", "--out", "local-first", "--resume", "--ray"]
    assert main(argv) == 0
    assert _counts(tmp_path / "local-first") == _counts(reference)
    assert _episode_files(tmp_path / "local-first") == _episode_files(reference)


def _episode_files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "episodes").rglob("*.png"))
    }


def _workers_running(name: str) -> list[int]:
    """Pids of Ray workers whose process title says they run the task `name`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if title.startswith(f"ray::{name}"):
            found.append(int(proc.name))
    return found


def test_a_worker_killed_mid_episode_is_retried_and_the_counts_are_the_same(
    cluster, reference, tmp_path
):
    killed = []

    def kill_one():
        deadline = time.time() + 300
        while not killed and time.time() < deadline:
            pids = _workers_running("_in_worker")
            if pids:
                time.sleep(0.5)
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.1)

    killer = threading.Thread(target=kill_one)
    killer.start()
    assert main([*SMALL, "--episodes", "2", "--out", str(tmp_path / "ray"), "--ray"]) == 0
    killer.join()
    assert killed
    assert _counts(tmp_path / "ray") == _counts(reference)[:2]


def test_a_failing_episode_is_named_and_the_others_are_written(cluster, tmp_path, capsys):
    out = tmp_path / "out"
    # A folder where episode 1's supports result must go: that episode fails, every time.
    (out / "episodes" / "0001" / "results" / "supports.json").mkdir(parents=True)
    argv = [*SMALL, "--episodes", "3", "--out", str(out), "--resume", "--ray"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "1 of 3 episodes failed" in err and "episode 1: IsADirectoryError" in err
    assert [c["index"] for c in _counts(out)] == [0, 2]
    (out / "episodes" / "0001" / "results" / "supports.json").rmdir()
    assert main(argv) == 0
    assert [c["index"] for c in _counts(out)] == [0, 1, 2]


def test_a_path_a_worker_cannot_see_fails_with_one_line_naming_it(
    cluster, threads, tmp_path, monkeypatch, capsys
):
    # /proc/self/cwd is each process's own working directory: the teacher is there for this
    # process and not for the workers, started elsewhere, as a folder on one node of a cluster.
    (tmp_path / "teacher").symlink_to(DEFAULT_TEACHER)
    monkeypatch.chdir(tmp_path)
    argv = [*SMALL, "--episodes", "1", "--out", "out", "--teacher", "/proc/self/cwd/teacher"]
    argv += ["--student-init", "scratch"]  # this teacher has no pretrained student to say so of
    assert main([*argv, "--ray"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "episode 0: TintError: /proc/self/cwd/teacher: not found on the worker" in err
    assert "shared filesystem" in err
    assert not (tmp_path / "out" / "episodes" / "0000" / "results").exists()
    assert main([*argv, "--resume", "--threads", "1"]) == 0  # this process sees it


def test_ctrl_c_of_the_driver_leaves_a_run_that_resume_completes(cluster, reference, tmp_path):
    # Eight episodes, so that the signal comes while some are still to run. The driver gets
    # Ctrl-C's default handling: a suite run in the background (`make test &`) ignores SIGINT, and
    # its children would inherit that and finish every episode.
    out = tmp_path / "ray"
    argv = [*SMALL, "--episodes", "8", "--out", str(out)]
    driver = subprocess.Popen(
        [sys.executable, "-m", "tint.cli", *argv, "--ray"],
        env={**os.environ, "RAY_ADDRESS": cluster},
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 300
    while not (out / "results.json").is_file() and time.time() < deadline:
        time.sleep(0.1)
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err
    assert "interrupted" in err and "--resume" in err
    assert 1 <= len(_counts(out)) < 8
    assert main([*argv, "--resume", "--ray"]) == 0
    assert len(_counts(out)) == 8
    assert _counts(out)[:3] == _counts(reference)


def test_without_ray_installed_ray_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    assert main([*SMALL, "--episodes", "1", "--out", str(tmp_path / "o"), "--ray"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'tint[ray]'" in err
    assert not (tmp_path / "o").exists()


def test_generate_on_ray_shards_classes_and_writes_what_one_process_writes(
    cluster, threads, model_dir, supports, tmp_path, monkeypatch
):
    # Paths relative to this process's working directory, which is not the workers'.
    monkeypatch.chdir(tmp_path)
    model = os.path.relpath(model_dir, tmp_path)
    argv = ["generate", str(supports), "--model", model, "--classes-per-shard", "1"]
    argv += ["--ti-steps", "4", "--ddim-steps", "3", "--num", "2", "--quiet"]
    assert main([*argv, "--out", "local", "--threads", "1"]) == 0
    assert main([*argv, "--out", "ray", "--ray"]) == 0
    local, ray_run = _files(tmp_path / "local"), _files(tmp_path / "ray")
    assert len([f for f in local if f.endswith(".png")]) == 4
    assert ray_run.keys() == local.keys() and ray_run == local
    manifests = [
        json.loads((tmp_path / run / "manifest.json").read_text()) for run in ("local", "ray")
    ]
    for manifest in manifests:
        del manifest["settings"]["out"]
    assert manifests[0] == manifests[1]


def _files(out: Path) -> dict[str, bytes]:
    skip = {"run.json", "manifest.json", ".tint.lock"}
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.name not in skip
    }
