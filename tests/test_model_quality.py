"""`tint eval-model`: every figure, on a tiny random glyph-world model, computed as defined."""

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from tint.cli import main
from tint.commands.pretrain import _diffusion_base
from tint.data import glyphs
from tint.data.datasets import open_dataset
from tint.data.episodes import sample_episode
from tint.data.images import to_tensor
from tint.diffusion.architectures import build_tiny
from tint.diffusion.model import DiffusionModel
from tint.eval.model_quality import TINT, psnr
from tint.models.resnet import ResNet, ResNetConfig
from tint.models.teachers import GlyphBackbone


def test_psnr_of_a_uniform_error_of_a_tenth_is_20_db():
    x = torch.rand(3, 3, 8, 8) * 0.8
    assert psnr(x + 0.1, x) == pytest.approx(20.0, abs=1e-4)


@pytest.fixture(scope="module")
def glyph_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("glyph-world")
    arch = dataclasses.replace(
        _diffusion_base().architecture,
        words=[*(g.word for g in glyphs.split("base")), "a", "drawing", "of"],
        vae_channels=(16, 32, 32),
        unet_channels=(32, 64),
        text_width=32,
        text_heads=2,
        text_layers=1,
    )
    build_tiny(root / "model", arch)
    base = glyphs.split("base")
    net = ResNetConfig(
        widths=(8, 16), blocks=(1, 1), num_classes=len(base), classes=[g.name for g in base]
    )
    torch.manual_seed(0)
    ResNet(net).eval().save_pretrained(root / "teacher")
    return root


@pytest.mark.slow
def test_eval_model_computes_each_figure_as_defined_and_reuses_its_workdir(
    glyph_world, tmp_path, capsys
):
    args = ["eval-model", "--model", glyph_world / "model", "--teacher", glyph_world / "teacher"]
    args += ["--base-classes", "3", "--per-base-class", "2", "--tasks", "1", "--ways", "2"]
    args += ["--shots", "2", "--queries", "3", "--per-class", "2", "--ddim-steps", "3"]
    args += ["--ti-steps", "2", "--workdir", tmp_path, "--json", "--quiet"]
    assert main([str(a) for a in args]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["base_fidelity"]["classes"] == 3 and result["base_fidelity"]["images"] == 6
    # Novel fidelity at the alpha students are distilled at, at 1.0 and of textual inversion
    # alone, each a share of 2 classes x 2 images per episode.
    assert set(result["novel_fidelity"]) == {TINT, "tint_1.0", "ti"}
    assert set(result["copy_distance"]) == {TINT, "real"}
    for scores in result["novel_fidelity"].values():
        assert set(scores) == {"random", "hard"}
        assert all((v * 4).is_integer() for v in scores.values())
    # The VAE's round trip and the real queries' distance, computed again from the episode.
    model = DiffusionModel.load(glyph_world / "model")
    backbone = GlyphBackbone(ResNet.from_pretrained(glyph_world / "teacher"))
    dataset = open_dataset("glyphs", "novel")
    episode = sample_episode(dataset, 2, 2, 3, 0, 0)
    supports = [
        torch.stack([to_tensor(dataset.image(c, i), (32, 32)) for i in episode.support[c]])
        for c in episode.classes
    ]
    vae = [psnr(model.decode_latents(model.encode_images(x)), x) for x in supports]
    assert result["vae_psnr"] == pytest.approx(sum(vae) / len(vae), abs=1e-5)
    queries = torch.stack(
        [
            to_tensor(dataset.image(c, i), (32, 32))
            for c in episode.classes
            for i in episode.query[c]
        ]
    )
    with torch.no_grad():
        f = F.normalize(backbone.embed(queries), dim=1)
        s = F.normalize(backbone.embed(torch.cat(supports)), dim=1)
    distance = float((1 - (f @ s.T).max(1).values).mean())
    assert result["copy_distance"]["real"] == pytest.approx(distance, abs=1e-5)

    files = sorted((tmp_path / "episodes").rglob("*.safetensors"))
    assert len(files) == 2 * 2 * 2  # 2 episodes x 2 classes x 2 files
    stamps = [f.stat().st_mtime_ns for f in files]
    assert main([str(a) for a in args]) == 0
    again = json.loads(capsys.readouterr().out)
    # The reloaded specialisation reconstructs the same images up to float rounding.
    assert again.pop("reconstruction_psnr") == pytest.approx(result.pop("reconstruction_psnr"))
    assert again == result
    assert [f.stat().st_mtime_ns for f in files] == stamps
