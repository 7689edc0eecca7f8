"""`tint distill`: a user's class folders in, a student that onnxruntime runs out; bad input is
one line and writes nothing."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tint.cli import main
from tint.commands import world
from tint.data import glyphs
from tint.data.images import to_image
from tint.models.students import Student

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
    """A whole small run: 3 classes x 3 supports, 6 generated images each, 30 steps."""
    root = tmp_path_factory.mktemp("distill")
    supports = _write_classes(root / "supports", 3)
    held_out = _write_classes(root / "held-out", 4, start=10)
    out = root / "out"
    args = ["distill", supports, "--out", out, "--num", "6", "--ti-steps", "10"]
    args += ["--ddim-steps", "4", "--distill-steps", "30", "--eval", held_out, "--quiet"]
    assert main([str(a) for a in args]) == 0
    return out, held_out, args


def test_the_student_runs_in_onnxruntime_as_student_json_says(finished):
    import onnxruntime

    out, held_out, _ = finished
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
    out, _, _ = finished
    report = json.loads((out / "report.json").read_text())
    assert report["generated"] == 6 * CLASSES
    assert len(list((out / "generated" / "images").rglob("*.png"))) == 6 * CLASSES
    assert report["onnx_max_difference"] < 1e-3
    probe = report["student_vs_teacher_on_generated"]
    assert probe["images"] == 6 * CLASSES
    assert probe["after"]["kl"] < probe["before"]["kl"]  # distillation moved it to the teacher
    stages = report["stages"]
    assert set(stages) == {
        *("teacher", "textual_inversion", "null_text_inversion", "generation"),
        *("teacher_labels", "distillation", "export", "throughput", "scoring"),
    }
    assert sum(stages.values()) <= report["seconds"] + 0.5  # each rounded to 0.1 s
    assert stages["throughput"] >= 1.0  # images_per_second times at least a second
    html = (out / "report.html").read_text()
    assert "data:image/png;base64" in html and "ONNX" in html


def test_resume_reuses_the_finished_run(finished, capsys):
    out, _, args = finished
    before = (out / "student.safetensors").read_bytes()
    generated = out / "generated"
    made = [p for d in ("specialization", "images") for p in (generated / d).rglob("*.*")]
    stamps = {p: p.stat().st_mtime_ns for p in made}
    code, stdout, _ = run(capsys, *args, "--resume")
    assert code == 0 and "student.onnx" in stdout
    assert (out / "student.safetensors").read_bytes() == before
    # Nothing was made again: every specialisation file and image is the one first written.
    assert {p: p.stat().st_mtime_ns for p in made} == stamps


def test_a_base_folder_and_the_shipped_pretrained_start(tmp_path):
    """--base DIR: the --retrieval-num images per class nearest the supports join the generated
    ones (--base-use all: every one, beside them); --init pretrained: the student's backbone starts
    as the glyph world's base-pretrained conv4 (a step at a negligible learning rate leaves its
    convolutions there)."""
    supports = _write_classes(tmp_path / "supports", 2)
    base = tmp_path / "base"
    base.mkdir()
    for i, glyph in enumerate(glyphs.split("base")[:12]):
        to_image(glyphs.benchmark_instances(glyph, 1)[0]).save(base / f"{i}.png")
    out = tmp_path / "out"
    args = ["distill", supports, "--out", out, "--num", "2", "--ti-steps", "2", "--ddim-steps"]
    args += ["2", "--distill-steps", "1", "--distill-lr", "1e-12", "--distill-warmup", "0"]
    args += ["--base", base, "--retrieval-num", 3, "--init", "pretrained", "--quiet"]
    assert main([str(a) for a in args]) == 0
    report = json.loads((out / "report.json").read_text())
    assert (report["base"], report["base_use"], report["init"]) == (12, "nearest", "pretrained")
    assert report["retrieved"] == 3 * CLASSES
    shipped = Student.from_pretrained(world.shipped_student("conv4"))
    student = Student.from_pretrained(out)
    for name, weight in shipped.backbone.state_dict().items():
        if name.endswith("weight") and weight.dim() == 4:
            torch.testing.assert_close(student.backbone.state_dict()[name], weight)
