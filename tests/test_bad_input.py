"""Every command given bad input: missing, empty, unreadable, wrong-format and malformed files
and folders, out-of-range and contradictory options. Each gets one line on stderr that names the
thing and the problem, exit 1 (2 for a malformed command line), and nothing is written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tint.cli import main
from tint.data import glyphs
from tint.data.images import to_image

ASSETS = glyphs.ASSETS


def _glyph_classes(root: Path, classes: int = 2, per_class: int = 2) -> Path:
    for glyph in glyphs.split("novel")[:classes]:
        (root / glyph.name).mkdir(parents=True, exist_ok=True)
        for i, x in enumerate(glyphs.benchmark_instances(glyph, per_class)):
            to_image(x).save(root / glyph.name / f"{i}.png")
    return root


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _read_only(path: Path) -> Path:
    """A folder nobody may write to, root included (root ignores permission bits, so it is made
    immutable as well); undone at the end of the test by `_writable_again`."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o555)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True, capture_output=True)
    return path


@pytest.fixture(autouse=True)
def _writable_again(tmp_path):
    yield
    for folder in tmp_path.rglob("*"):
        if folder.is_dir() and not folder.is_symlink():
            if os.geteuid() == 0:
                subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
            folder.chmod(0o755)


# Each case: (what it builds in the test's folder -> the arguments, what the line must name).
# `t` is the test's folder; the tree under it is compared before and after the command.


def _supports(t):
    return _glyph_classes(t / "s")


def _image_case(make_image):
    def build(t):
        root = _supports(t)
        make_image(root / glyphs.split("novel")[0].name / "bad.png")
        return root

    return build


def _loop(path: Path) -> None:
    path.symlink_to(path)


def _dangling(path: Path) -> None:
    path.symlink_to(path.with_name("nowhere.png"))


def _model_without_index(t):
    model = shutil.copytree(ASSETS / "glyph-diffusion", t / "m", ignore=_no_weights)
    (model / "model_index.json").unlink()
    return model


def _model_truncated(t):
    model = shutil.copytree(ASSETS / "glyph-diffusion", t / "m")
    _truncate(model / "unet" / "diffusion_pytorch_model.safetensors")
    return model


def _no_weights(folder, names):
    return [n for n in names if n.endswith(".safetensors") or n.endswith(".png")]


def _teacher(t, change):
    teacher = shutil.copytree(ASSETS / "glyph-teacher", t / "teacher", ignore=_no_pictures)
    change(teacher)
    return teacher


def _no_pictures(folder, names):
    return [n for n in names if n.endswith(".png") or n == "training"]


def _student(t, change=lambda d: None):
    from tint.models.students import Student, StudentConfig

    Student(StudentConfig("conv4", classes=["a", "b"])).save_pretrained(t / "init")
    change(t / "init")
    return t / "init"


def _results(t, data, name="results.json"):
    path = t / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


COUNTS = [{"correct": 9, "total": 10}, {"correct": 7, "total": 10}, {"correct": 8, "total": 10}]

GENERATE = {
    "missing support folder": (lambda t: [t / "nope"], "nope: no such directory"),
    "empty support folder": (lambda t: [(t / "e").mkdir() or t / "e"], "e: class folder has no"),
    "support folder is a file": (
        lambda t: [(t / "f").write_text("x") and t / "f"],
        "f: not a directory",
    ),
    "support folder is a symlink loop": (
        lambda t: [_loop(t / "loop") or t / "loop"],
        "loop: a symbolic link that loops",
    ),
    "a text file named .png": (
        lambda t: [_image_case(lambda p: p.write_text("hello"))(t)],
        "bad.png: not a readable image",
    ),
    "a 1x1 image": (
        lambda t: [_image_case(lambda p: Image.new("RGB", (1, 1)).save(p))(t)],
        "bad.png: 1x1 pixels is too small",
    ),
    "a 10000x10000 image": (
        lambda t: [_image_case(lambda p: Image.new("1", (10000, 10000)).save(p))(t)],
        "bad.png: 10000x10000 pixels is more than",
    ),
    "a symlink loop among the images": (
        lambda t: [_image_case(_loop)(t)],
        "bad.png: a symbolic link that loops",
    ),
    "a dangling symlink among the images": (
        lambda t: [_image_case(_dangling)(t)],
        "bad.png: does not exist",
    ),
    "a fifo among the images": (
        lambda t: [_image_case(lambda p: os.mkfifo(p))(t)],
        "bad.png: neither a file nor a folder",
    ),
    "missing model": (lambda t: [_supports(t), "--model", t / "m"], "m: no such model directory"),
    "model without model_index.json": (
        lambda t: [_supports(t), "--model", _model_without_index(t)],
        "missing model_index.json",
    ),
    "model with truncated weights": (
        lambda t: [_supports(t), "--model", _model_truncated(t)],
        "m: cannot load the model",
    ),
    "out is a file": (
        lambda t: [_supports(t), "--out-file"],
        "exists and is not a directory",
    ),
    "read-only out": (
        lambda t: [_supports(t), "--out", _read_only(t / "ro") / "out"],
        "cannot write there",
    ),
    "out holds another run": (
        lambda t: [_supports(t), "--out-used"],
        "not empty (pass --resume",
    ),
    "alpha and random alpha": (
        lambda t: [_supports(t), "--alpha", "0.3", "--random-alpha"],
        "--alpha: contradicts --random-alpha",
    ),
    "alpha for the ti generator": (
        lambda t: [_supports(t), "--generator", "ti", "--alpha", "0.3"],
        "--alpha: does not apply to --generator ti",
    ),
    "a template without {}": (
        lambda t: [_supports(t), "--ti-template", "a photo"],
        "--ti-template: must contain {}",
    ),
    "a resolution the VAE cannot take": (
        lambda t: [_supports(t), "--resolution", "30"],
        "not a positive multiple of 4",
    ),
    "a device that is not there": (
        lambda t: [_supports(t), "--device", "tpu"],
        "--device tpu: expected cpu or cuda",
    ),
}

ARGPARSE = {
    "generate": [["--num", "0"], ["--alpha", "2"], ["--ddim-steps", "-1"], ["--resolution", "axb"]],
    "distill": [
        ["--student-width", "0"],
        ["--alpha", "1.5"],
        ["--student-input-size", "abc"],
        ["--distill-steps", "0"],
        ["--student-arch", "vgg"],
        ["--teacher-finetune", "all"],
    ],
    "benchmark": [["--ways", "1"], ["--queries", "none"], ["--episodes", "x"], ["--split", "test"]],
    "plan": [["--half-width", "0"], ["--half-width", "0.7"], ["--cost-query", "-1"]],
    "speed": [["--arch", "sd3"], ["--dtype", "float8"], ["--images", "0"]],
    "demo": [["--num", "0"], ["--distill-steps", "-5"]],
    "data glyphs": [["--split", "test"], ["--instances", "0"]],
    "pretrain teacher": [["--train-steps", "0"], ["--train-lr", "-1"]],
    "eval-model": [["--tasks", "0"], ["--ddim-steps", "zero"]],
}

DISTILL = {
    "one class": (
        lambda t: [_glyph_classes(t / "s", classes=1)],
        "a classifier needs at least 2 classes, found 1",
    ),
    "more shots than images": (
        lambda t: [_supports(t), "--shots", "3"],
        f"--shots: 3, but class '{glyphs.split('novel')[0].name}' of",
    ),
    "missing teacher": (
        lambda t: [_supports(t), "--teacher", t / "nope"],
        "nope: no such teacher directory",
    ),
    "teacher config is not JSON": (
        lambda t: [
            _supports(t),
            "--teacher",
            _teacher(t, lambda d: (d / "config.json").write_text("{kind: resnet")),
        ],
        "config.json: not a model config (invalid JSON",
    ),
    "teacher config is a JSON list": (
        lambda t: [
            _supports(t),
            "--teacher",
            _teacher(t, lambda d: (d / "config.json").write_text("[1, 2]")),
        ],
        "config.json: not a model config (holds a JSON list",
    ),
    "teacher config of the wrong shape": (
        lambda t: [
            _supports(t),
            "--teacher",
            _teacher(
                t,
                lambda d: (d / "config.json").write_text(
                    json.dumps({"kind": "resnet", "widths": "wide"})
                ),
            ),
        ],
        "config.json: widths: expected a list",
    ),
    "truncated teacher weights": (
        lambda t: [
            _supports(t),
            "--teacher",
            _teacher(t, lambda d: _truncate(d / "model.safetensors")),
        ],
        "model.safetensors: not a readable safetensors file",
    ),
    "missing pretrained student": (
        lambda t: [_supports(t), "--student-pretrained", t / "nope"],
        "nope: not a tint student",
    ),
    "truncated pretrained weights": (
        lambda t: [
            _supports(t),
            "--student-pretrained",
            _student(t, lambda d: _truncate(d / "student.safetensors")),
        ],
        "student.safetensors: not a readable safetensors file",
    ),
    "pretrained student of another width": (
        lambda t: [_supports(t), "--student-pretrained", _student(t), "--student-width", "0.5"],
        "not a conv4 of width 0.5",
    ),
    "held-out class unknown": (
        lambda t: [_supports(t), "--eval", _glyph_classes(t / "other", classes=3)],
        "is not one of the supports' classes",
    ),
    "missing base folder": (
        lambda t: [_supports(t), "--base", t / "nope"],
        "nope: no such directory",
    ),
    "no shipped pretrained student of the architecture": (
        lambda t: [_supports(t), "--student-init", "pretrained", "--student-arch", "resnet12"],
        "a pretrained start needs a base-pretrained student: --student-pretrained DIR",
    ),
    "a method that mines without a base folder": (
        lambda t: [_supports(t), "--method", "tint+retrieval"],
        "method tint+retrieval: its base images need --base DIR",
    ),
    "a base folder no source of the method uses": (
        lambda t: [_supports(t), "--method", "tint", "--base", _glyph_classes(t / "base")],
        "method tint uses no base images",
    ),
    "an unknown method": (
        lambda t: [_supports(t), "--method", "tint+magic"],
        "unknown method 'tint+magic'",
    ),
    "read-only out": (
        lambda t: [_supports(t), "--out", _read_only(t / "ro") / "out"],
        "cannot write there",
    ),
}


def _folder(t, classes=3, images=4):
    root = t / "data"
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(images):
            Image.new("RGB", (8, 8), (40 * c, 10 * i, 0)).save(root / f"c{c}" / f"{i}.png")
    return root


BENCHMARK = {
    "unknown dataset": (lambda t: ["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    "missing folder dataset": (
        lambda t: ["--dataset", f"folder:{t / 'nope'}"],
        "nope: no such directory",
    ),
    "unknown method": (
        lambda t: ["--dataset", "glyphs", "--methods", "teacher,magic"],
        "unknown method 'magic'",
    ),
    "a method twice": (
        lambda t: ["--dataset", "glyphs", "--methods", "teacher,teacher"],
        "a method is listed twice",
    ),
    "tint alpha out of range": (
        lambda t: ["--dataset", "glyphs", "--methods", "tint:2"],
        "tint:A needs an alpha A in [0, 1]",
    ),
    "more ways than classes": (
        lambda t: ["--dataset", f"folder:{_folder(t)}", "--ways", "5"],
        "5-way episodes need 5 classes",
    ),
    "too few images": (
        lambda t: ["--dataset", f"folder:{_folder(t)}", "--ways", "2", "--shots", "2"],
        "has 4 images but 2 shots + 15 queries",
    ),
    "a base-pool source on the base split": (
        lambda t: ["--dataset", "glyphs", "--split", "base", "--methods", "base+tint"],
        "--split: base is the pool that retrieval and base draw from",
    ),
    "supports in a combination": (
        lambda t: ["--dataset", "glyphs", "--methods", "supports+tint"],
        "leave 'supports' out of a combination",
    ),
    "a source twice": (
        lambda t: ["--dataset", "glyphs", "--methods", "tint+base+tint:0.3"],
        "names tint twice",
    ),
    "an unknown start": (
        lambda t: ["--dataset", "glyphs", "--methods", "supports@imagenet"],
        "@imagenet is not one of @scratch, @pretrained",
    ),
    "a pretrained start with no pretrained student": (
        lambda t: [
            *["--dataset", f"folder:{_folder(t)}", "--ways", "2", "--shots", "1"],
            *["--queries", "1", "--methods", "supports@pretrained"],
            *["--teacher", _teacher(t, lambda d: None)],  # none ships for another teacher
        ],
        "a pretrained start needs a base-pretrained student: --student-pretrained DIR",
    ),
    "miniimagenet without its lists": (
        lambda t: ["--dataset", f"miniimagenet:{(t / 'mini').mkdir() or t / 'mini'}"],
        "missing images/, test.csv",
    ),
    "cifarfs with a damaged pickle": (
        lambda t: ["--dataset", f"cifarfs:{_cifar(t)}"],
        "not a readable CIFAR pickle",
    ),
    "bad teacher": (
        lambda t: ["--dataset", "glyphs", "--teacher", _student(t)],
        "not a supported teacher",
    ),
    "read-only out": (
        lambda t: ["--dataset", "glyphs", "--out", _read_only(t / "ro") / "out"],
        "cannot write there",
    ),
}


def _cifar(t):
    root = t / "cifar"
    (root / "cifar-100-python").mkdir(parents=True)
    for part in ("train", "test", "meta"):
        (root / "cifar-100-python" / part).write_bytes(b"\x80\x02not a pickle")
    (root / "splits" / "bertinetto").mkdir(parents=True)
    for part in ("train", "val", "test"):
        (root / "splits" / "bertinetto" / f"{part}.txt").write_text("apple\n")
    return root


PLAN = {
    "missing results": (lambda t: [t / "nope.json"], "nope.json: no such results file"),
    "empty file": (lambda t: [_results(t, "")], "results.json: not a results file"),
    "not JSON": (lambda t: [_results(t, "episodes: 3")], "results.json: not a results file"),
    "not text": (lambda t: [_results(t, b"\xff\xfe\x00\x81")], "results.json: not a results file"),
    "a JSON list of numbers": (
        lambda t: [_results(t, [1, 2, 3])],
        "episode 0 is not an object of per-method counts",
    ),
    "JSON of another shape": (lambda t: [_results(t, {"accuracy": 0.9})], "not a results file"),
    "counts that are not numbers": (
        lambda t: [_results(t, {"m": [{"correct": "9", "total": 10}] * 2})],
        "needs whole-number 'correct' and 'total'",
    ),
    "more correct than total": (
        lambda t: [_results(t, {"m": [{"correct": 11, "total": 10}] * 2})],
        "11 correct of 10 queries",
    ),
    "one episode": (
        lambda t: [_results(t, {"m": COUNTS[:1]})],
        "a plan needs at least 2 episodes",
    ),
    "methods of different lengths": (
        lambda t: [_results(t, {"a": COUNTS, "b": COUNTS[:2]})],
        "methods have different numbers of episodes",
    ),
    "counts alone: no ways": (
        lambda t: [_results(t, {"m": COUNTS})],
        "pass --ways",
    ),
    "counts alone: no timings": (
        lambda t: [_results(t, {"m": COUNTS}), "--ways", "2"],
        "pass --cost-episode",
    ),
    "counts alone: no class sizes": (
        lambda t: [_results(t, {"m": COUNTS}), "--ways", "2", "--cost-episode", "9"],
        "pass --max-queries",
    ),
    "queries not a multiple of ways": (
        lambda t: [
            _results(t, {"m": COUNTS}),
            *("--ways", "3", "--cost-episode", "9", "--max-queries", "9"),
        ],
        "not a multiple of 3 classes",
    ),
    "unknown method": (
        lambda t: [_results(t, {"m": COUNTS}), "--method", "tint"],
        "has no method 'tint'",
    ),
    "CSV without counts": (
        lambda t: [_results(t, "episode,score\n0,1\n", "r.csv")],
        "r.csv: a CSV pilot needs the columns method, correct and total",
    ),
}

SPEED = {
    "missing model": (lambda t: ["--model", t / "nope"], "nope: no such model directory"),
    "no CUDA": (lambda t: ["--device", "cuda"], "CUDA is not available"),
    "more ways than novel glyphs": (
        lambda t: ["--ways", "500"],
        f"the glyph world has {len(glyphs.split('novel'))}",
    ),
    "model of another kind": (
        lambda t: ["--model", _teacher(t, lambda d: None)],
        "not a Stable Diffusion model directory",
    ),
}

PRETRAIN = {
    "out holds something else": (
        lambda t: ["--out-used"],
        "not empty (pass --resume",
    ),
    "resume without a checkpoint": (
        lambda t: ["--out", (t / "o").mkdir() or t / "o", "--resume"],
        "no checkpoint to resume",
    ),
    "a damaged checkpoint": (
        lambda t: ["--out", _damaged_checkpoint(t), "--resume"],
        "state.json: not a checkpoint state",
    ),
    "read-only out": (lambda t: ["--out", _read_only(t / "ro") / "out"], "cannot write there"),
    "out is a file": (lambda t: ["--out-file"], "exists and is not a directory"),
}


def _damaged_checkpoint(t):
    (t / "o" / "training").mkdir(parents=True)
    (t / "o" / "training" / "state.json").write_text('{"step": ')
    return t / "o"


EVAL_MODEL = {
    "missing model": (lambda t: ["--model", t / "nope"], "nope: no such model directory"),
    "missing teacher": (lambda t: ["--teacher", t / "nope"], "nope: not a tint ResNet"),
    "teacher of another kind": (
        lambda t: ["--teacher", _student(t)],
        "not a tint ResNet (missing config.json)",
    ),
    "read-only workdir": (
        lambda t: ["--workdir", _read_only(t / "ro") / "w"],
        "cannot write there",
    ),
    "pictures is a file": (
        lambda t: ["--pictures", (t / "p").write_text("x") and t / "p"],
        "p: exists and is not a directory",
    ),
}

DATA = {
    "read-only out": (lambda t: ["--out", _read_only(t / "ro") / "out"], "cannot write there"),
    "out is a file": (lambda t: ["--out-file"], "exists and is not a directory"),
}

DEMO = {
    "out is a file": (lambda t: ["--out-file"], "exists and is not a directory"),
    "read-only out": (lambda t: ["--out", _read_only(t / "ro") / "out"], "cannot write there"),
    "out of another demo": (
        lambda t: ["--out", _other_demo(t), "--num", "5"],
        "made with different settings",
    ),
}


def _other_demo(t):
    (t / "d").mkdir()
    (t / "d" / "run.json").write_text(json.dumps({"synthetic": 3}))
    return t / "d"


COMMANDS = {
    "generate": (GENERATE, True),
    "distill": (DISTILL, True),
    "benchmark": (BENCHMARK, True),
    "plan": (PLAN, False),
    "speed": (SPEED, False),
    "pretrain teacher": (PRETRAIN, False),
    "pretrain diffusion": (PRETRAIN, False),
    "pretrain student": (PRETRAIN, False),
    "pretrain upscaler": (PRETRAIN, False),
    "eval-model": (EVAL_MODEL, False),
    "data glyphs": (DATA, False),
    "demo": (DEMO, False),
}
MATRIX = [(c, name) for c, (cases, _) in COMMANDS.items() for name in cases]


def _tree(root: Path) -> dict[str, tuple]:
    """Everything under root: what a command could have written or changed."""
    return {
        str(p.relative_to(root)): (p.is_dir(), p.stat().st_mtime_ns if p.exists() else None)
        for p in sorted(root.rglob("*"))
    }


def _arguments(command: str, build, t: Path, takes_out: bool) -> list[str]:
    args = [str(a) for a in build(t)]
    if "--out-file" in args:
        (t / "out-file").write_text("not a folder")
        args[args.index("--out-file") : args.index("--out-file") + 1] = [
            "--out",
            str(t / "out-file"),
        ]
    if "--out-used" in args:
        (t / "used").mkdir()
        (t / "used" / "notes.txt").write_text("someone else's")
        args[args.index("--out-used") : args.index("--out-used") + 1] = ["--out", str(t / "used")]
    needs_out = takes_out or command.startswith(("pretrain", "data"))
    if needs_out and "--out" not in args:
        args += ["--out", str(t / "out")]
    if command == "plan":
        args += ["--half-width", "0.05"]
    if command not in ("plan", "data glyphs"):
        args.append("--quiet")
    return [*command.split(), *args]


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("command", "case"), MATRIX, ids=[f"{c}: {n}" for c, n in MATRIX])
def test_bad_input_is_one_line_naming_it_and_writes_nothing(command, case, tmp_path, capsys):
    cases, takes_out = COMMANDS[command]
    build, named = cases[case]
    argv = _arguments(command, build, tmp_path, takes_out)
    before = _tree(tmp_path)
    code, err = _run(capsys, argv)
    assert code == 1, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"tint {command.split()[0]}: error: ") and named in err, err
    assert _tree(tmp_path) == before


ARGPARSE_CASES = [(c, args) for c, cases in ARGPARSE.items() for args in cases]


@pytest.mark.parametrize(("command", "args"), ARGPARSE_CASES)
def test_a_malformed_command_line_is_one_line_and_exit_2(command, args, tmp_path, capsys):
    needs = {
        "generate": ["s"],
        "distill": ["s"],
        "plan": ["r.json"],
        "benchmark": ["--dataset", "glyphs"],
    }
    argv = [*command.split(), *needs.get(command.split()[0], []), *args]
    if command.split()[0] in ("generate", "distill", "benchmark", "data", "pretrain"):
        argv += ["--out", str(tmp_path / "out")]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert f"error: argument {args[0]}" in err, err
    assert list(tmp_path.iterdir()) == []


def test_no_command_and_an_unknown_command_are_usage_errors(capsys):
    assert main([]) == 2
    assert main(["paint"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("tint: error:") for line in err)
