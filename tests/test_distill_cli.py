"""`tint distill`: a user's class folders in, a student that onnxruntime runs out, by the recipe
chosen on val unless told otherwise; its progress is a line per stage in a log."""

import contextlib
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tint.cli import main
from tint.commands import world
from tint.data import glyphs
from tint.data.images import load_rgb, to_image, to_tensor
from tint.models.students import Student
from tint.models.teachers import load_backbone, specialize
from tint.train.distill import agreement

pytestmark = pytest.mark.e2e

CLASSES = 3


def _write_classes(root, per_class, start=0):
    for glyph in glyphs.split("novel")[:CLASSES]:
        for i, x in enumerate(glyphs.benchmark_instances(glyph, start + per_class)[start:]):
            (root / glyph.name).mkdir(parents=True, exist_ok=True)
            to_image(x).save(root / glyph.name / f"{i}.png")
    return root


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A whole small run at the defaults but for its size: 3 classes x 3 supports, 6 generated
    images each, 30 steps; stderr a log, not a terminal."""
    root = tmp_path_factory.mktemp("distill")
    supports = _write_classes(root / "supports", 3)
    held_out = _write_classes(root / "held-out", 4, start=10)
    out = root / "out"
    args = ["distill", supports, "--out", out, "--num", "6", "--ti-steps", "10"]
    args += ["--ddim-steps", "4", "--distill-steps", "30", "--eval", held_out]
    log = io.StringIO()
    with contextlib.redirect_stderr(log):
        assert main([str(a) for a in args]) == 0
    return out, held_out, [*args, "--quiet"], log.getvalue()


def test_the_defaults_are_the_recipe_chosen_on_val(finished):
    """TINT's images and a start from the glyph world's base-pretrained conv4."""
    out, *_ = finished
    report = json.loads((out / "report.json").read_text())
    assert (report["method"], report["init"]) == ("tint", "pretrained")
    saved = json.loads((out / "run.json").read_text())["setup"]
    assert (saved["generation"]["num"], saved["distill"]["steps"]) == (6, 30)  # as given
    from tint.pipeline.distill import DistillSettings

    defaults = DistillSettings().setup
    assert (defaults.generation.num, defaults.distill.steps) == (40, 400)


def test_a_log_gets_one_line_per_stage_not_a_stream_of_bar_updates(finished):
    *_, log = finished
    assert "\r" not in log
    lines = log.splitlines()
    for stage, count in (
        ("textual inversion", "10/10 it"),
        ("generating", f"{6 * CLASSES}/{6 * CLASSES} img"),
        ("student (tint)", "30/30 it"),
    ):
        (line,) = [line for line in lines if line.startswith(f"{stage}: ")]
        assert line.startswith(f"{stage}: {count} in ") and " s" in line, line
    assert not [line for line in lines if line.startswith("DDIM")]  # inner loops: no line


def test_the_student_runs_in_onnxruntime_as_student_json_says(finished):
    import onnxruntime

    out, held_out, *_ = finished
    meta = json.loads((out / "student.json").read_text())
    assert meta["classes"] == sorted(g.name for g in glyphs.split("novel")[:CLASSES])
    h, w = meta["input_size"]
    session = onnxruntime.InferenceSession(str(out / "student.onnx"))
    batch, truth = [], []
    for label, name in enumerate(meta["classes"]):
        for path in sorted((held_out / name).glob("*.png")):
            rgb = np.asarray(Image.open(path).convert("RGB").resize((w, h)), dtype=np.float32)
            x = (rgb / 255 - np.array(meta["mean"])) / np.array(meta["std"])
            batch.append(x.transpose(2, 0, 1).astype(np.float32))
            truth.append(label)
    (logits,) = session.run(None, {"input": np.stack(batch)})
    accuracy = float((logits.argmax(1) == np.array(truth)).mean())
    report = json.loads((out / "report.json").read_text())
    assert accuracy == pytest.approx(report["held_out"]["student_accuracy"])
    assert accuracy > 1 / CLASSES  # better than chance after 30 steps


def test_the_report_and_generated_images_are_written(finished):
    out, *_ = finished
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == {"tint": 6 * CLASSES}
    assert len(list((out / "tint" / "images").rglob("*.png"))) == 6 * CLASSES
    assert report["onnx_max_difference"] < 1e-3
    probe = report["student_vs_teacher"]
    assert probe["images"] == 6 * CLASSES
    # Distillation moved the student to the teacher: far nearer than the start it came from.
    student = Student.from_pretrained(out)
    start = Student(student.config)
    start.init_from(world.shipped_student("conv4"))
    names = student.classes
    images = torch.stack(
        [to_tensor(load_rgb(p), (32, 32)) for p in sorted((out / "tint").rglob("*.png"))]
    )
    supports = [
        torch.stack(
            [
                to_tensor(load_rgb(p), (32, 32))
                for p in sorted((out.parent / "supports" / n).glob("*.png"))
            ]
        )
        for n in names
    ]
    teacher = specialize(load_backbone(world.DEFAULT_TEACHER), names, supports)
    before = agreement(start, teacher, images, 4.0)["kl"]
    assert probe["kl"] == pytest.approx(agreement(student, teacher, images, 4.0)["kl"], rel=1e-3)
    assert probe["kl"] < 0.5 * before
    stages = report["stages"]
    assert set(stages) == {
        *("teacher", "textual_inversion", "null_text_inversion", "generation"),
        *("teacher_labels", "distillation", "export", "throughput", "scoring"),
    }
    assert sum(stages.values()) <= report["seconds"] + 0.5  # each rounded to 0.1 s
    assert stages["throughput"] >= 0.25  # images_per_second times at least a quarter second
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "ONNX" in html


def test_resume_reuses_the_finished_run(finished, capsys):
    out, _, args, _ = finished
    before = (out / "student.safetensors").read_bytes()
    made = [p for d in ("specialization", "tint/images") for p in (out / d).rglob("*.*")]
    stamps = {p: p.stat().st_mtime_ns for p in made}
    code, stdout, _ = run(capsys, *args, "--resume")
    assert code == 0 and "student.onnx" in stdout
    assert (out / "student.safetensors").read_bytes() == before
    # Nothing was made again: every specialisation file and image is the one first written.
    assert {p: p.stat().st_mtime_ns for p in made} == stamps


@pytest.mark.parametrize(
    ("method", "images", "views"),
    [
        (None, {"retrieval": 3 * CLASSES}, 0),
        ("tint+retrieval", {"tint": 2 * CLASSES, "retrieval": 3 * CLASSES}, 0),
        ("base+tint", {"tint": 6}, 24),
    ],
)
def test_a_base_folder_and_the_shipped_pretrained_start(method, images, views, tmp_path):
    """--base DIR: by default the student learns from the --retrieval-num images per class
    nearest the supports alone, no generation (--method tint+retrieval: beside the generated
    ones; --method base+tint: every one, 2 labelled views each, a batch of their own); the
    student's backbone starts as the glyph world's base-pretrained conv4 (a step at a negligible
    learning rate leaves its convolutions there)."""
    supports = _write_classes(tmp_path / "supports", 2)
    base = tmp_path / "base"
    base.mkdir()
    for i, glyph in enumerate(glyphs.split("base")[:12]):
        to_image(glyphs.benchmark_instances(glyph, 1)[0]).save(base / f"{i}.png")
    out = tmp_path / "out"
    args = ["distill", supports, "--out", out, "--num", "2", "--ti-steps", "2", "--ddim-steps"]
    args += ["2", "--distill-steps", "1", "--distill-lr", "1e-12", "--distill-warmup", "0"]
    args += ["--base", base, "--retrieval-num", 3, "--quiet"]
    args += [] if method is None else ["--method", method]
    assert main([str(a) for a in args]) == 0
    report = json.loads((out / "report.json").read_text())
    assert (report["base_pool"], report["init"]) == (12, "pretrained")
    assert (report["images"], report["base_views"]) == (images, views)
    shipped = Student.from_pretrained(world.shipped_student("conv4"))
    student = Student.from_pretrained(out)
    for name, weight in shipped.backbone.state_dict().items():
        if name.endswith("weight") and weight.dim() == 4:
            torch.testing.assert_close(student.backbone.state_dict()[name], weight)
