"""`tint eval-model`: every figure, on a tiny random glyph-world model."""

import dataclasses
import json

import pytest
import torch

from tint.cli import main
from tint.diffusion.architectures import build_tiny
from tint.eval.model_quality import psnr
from tint.models.resnet import ResNet, ResNetConfig
from tint.world import diffusion_architecture, teacher_network


def test_psnr_of_a_uniform_error_of_a_tenth_is_20_db():
    x = torch.rand(3, 3, 8, 8) * 0.8
    assert psnr(x + 0.1, x) == pytest.approx(20.0, abs=1e-4)


@pytest.fixture(scope="module")
def glyph_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("glyph-world")
    arch = dataclasses.replace(
        diffusion_architecture(),
        vae_channels=(16, 32, 32),
        unet_channels=(32, 64),
        text_width=32,
        text_heads=2,
        text_layers=1,
    )
    build_tiny(root / "model", arch)
    net = dataclasses.replace(teacher_network(), widths=(8, 16), blocks=(1, 1))
    torch.manual_seed(0)
    ResNet(ResNetConfig(**dataclasses.asdict(net))).eval().save_pretrained(root / "teacher")
    return root


@pytest.mark.slow
def test_eval_model_reports_every_figure_and_reuses_its_workdir(glyph_world, tmp_path, capsys):
    args = [
        "eval-model",
        "--model",
        str(glyph_world / "model"),
        "--teacher",
        str(glyph_world / "teacher"),
        "--base-classes",
        "3",
        "--novel-classes",
        "2",
        "--tasks",
        "1",
        "--per-class",
        "2",
        "--per-base-class",
        "2",
        "--steps",
        "3",
        "--ti-steps",
        "2",
        "--workdir",
        str(tmp_path),
        "--json",
        "--quiet",
    ]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    base = result["base_fidelity"]
    assert base["classes"] == 3 and base["images"] == 6
    assert 0 <= base["top1"] <= base["top5"] <= 1
    assert result["vae_psnr"] > 0 and result["reconstruction_psnr"] > 0
    assert set(result["novel_fidelity"]) == {"tint_0.5", "tint_1.0", "ti"}
    for scores in result["novel_fidelity"].values():
        assert set(scores) == {"random", "hard"}
        assert all(0 <= v <= 1 for v in scores.values())
    assert set(result["copy_distance"]) == {"tint_0.5", "real"}
    assert all(0 <= v <= 2 for v in result["copy_distance"].values())

    files = sorted((tmp_path / "specialization").rglob("*.safetensors"))
    assert len(files) >= 2 * 2  # at least the two reconstructed classes, two files each
    stamps = [f.stat().st_mtime_ns for f in files]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["vae_psnr"] == result["vae_psnr"]
    assert [f.stat().st_mtime_ns for f in files] == stamps
