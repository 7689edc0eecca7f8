"""`tint generate` as a user runs it: outputs, manifest, determinism, resume and bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from tint.cli import main
from tint.data.images import load_rgb

from .conftest import write_supports

# float32: a support inverted alone or in a batch gives the same image to the last bits
FAST = ["--ti-steps", "8", "--ddim-steps", "5", "--num", "3", "--precision", "float32", "--quiet"]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["generate", *[str(a) for a in argv]])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def mixed_supports(tmp_path_factory):
    """Two classes whose supports come in different sizes and image modes."""
    root = tmp_path_factory.mktemp("mixed") / "supports"
    write_supports(root, shots=3, sizes=((16, 16), (24, 20), (40, 12)))
    disc, square = root / "orange-disc", root / "purple-square"
    Image.open(disc / "1.png").convert("L").save(disc / "1.png")  # grayscale
    Image.open(disc / "2.png").convert("RGBA").save(disc / "2.png")  # alpha
    gray = np.asarray(Image.open(square / "0.png").convert("L"), dtype=np.uint16) * 257
    Image.fromarray(gray).save(square / "0.png")  # 16-bit
    Image.open(square / "1.png").convert("P").save(square / "1.png")  # palette
    return root


@pytest.fixture(scope="module")
def first_run(mixed_supports, model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "first"
    assert (
        main(["generate", str(mixed_supports), "--out", str(out), "--model", str(model_dir), *FAST])
        == 0
    )
    return out


def manifest(out):
    return json.loads((out / "manifest.json").read_text())


def test_manifest_lists_every_image_with_its_source(first_run, mixed_supports):
    m = manifest(first_run)
    assert len(m["images"]) == 6
    for e in m["images"]:
        assert (first_run / e["path"]).is_file()
        assert e["path"].startswith(f"images/{e['class']}/")
        assert (mixed_supports / e["class"] / e["support"]).is_file()
        assert e["alpha"] == 0.5 and isinstance(e["seed"], int)
    assert sorted({e["class"] for e in m["images"]}) == ["orange-disc", "purple-square"]


def test_each_image_is_rgb_at_the_size_of_its_support(first_run, mixed_supports):
    for e in manifest(first_run)["images"]:
        image = Image.open(first_run / e["path"])
        assert image.mode == "RGB"
        assert image.size == Image.open(mixed_supports / e["class"] / e["support"]).size


def test_specialisation_files_are_written_per_class(first_run):
    for name in ("orange-disc", "purple-square"):
        folder = first_run / "specialization" / name
        names = {p.name for p in folder.iterdir()}
        assert {"learned_embeds.safetensors", "null_text.safetensors"} <= names
        assert json.loads((folder / "specialization.json").read_text())["supports"] == [
            "0.png",
            "1.png",
            "2.png",
        ]


def test_same_seed_same_images_and_another_seed_others(
    first_run, mixed_supports, model_dir, tmp_path, capsys
):
    args = [mixed_supports, "--model", model_dir, *FAST]
    assert run(capsys, *args, "--out", tmp_path / "again")[0] == 0
    assert run(capsys, *args, "--out", tmp_path / "other", "--seed", "1")[0] == 0
    for e in manifest(first_run)["images"]:
        original = (first_run / e["path"]).read_bytes()
        assert (tmp_path / "again" / e["path"]).read_bytes() == original
        assert (tmp_path / "other" / e["path"]).read_bytes() != original


def test_resume_reuses_specialisations_and_adds_images(
    first_run, mixed_supports, model_dir, tmp_path, capsys
):
    out = shutil.copytree(first_run, tmp_path / "resumed")
    spec_files = sorted((out / "specialization").rglob("*"))
    stamps = {p: p.stat().st_mtime_ns for p in spec_files}
    before = {e["path"]: (out / e["path"]).read_bytes() for e in manifest(out)["images"]}
    more = [*FAST[:4], "--num", "5", *FAST[6:8], "--quiet", "--resume"]
    assert run(capsys, mixed_supports, "--out", out, "--model", model_dir, *more)[0] == 0
    assert {p: p.stat().st_mtime_ns for p in spec_files} == stamps
    images = manifest(out)["images"]
    assert len(images) == 10
    for path, data in before.items():
        assert (out / path).read_bytes() == data


def test_an_interrupted_null_text_stage_resumes_without_retraining_the_token(
    first_run, mixed_supports, model_dir, tmp_path, capsys
):
    out = shutil.copytree(first_run, tmp_path / "interrupted")
    folder = out / "specialization" / "orange-disc"
    (folder / "specialization.json").unlink()
    (folder / "null_text.safetensors").unlink()
    removed = out / "images" / "orange-disc" / "00001.png"
    removed.unlink()
    embeds = folder / "learned_embeds.safetensors"
    stamp = embeds.stat().st_mtime_ns
    args = [mixed_supports, "--out", out, "--model", model_dir, *FAST, "--resume"]
    assert run(capsys, *args)[0] == 0
    assert embeds.stat().st_mtime_ns == stamp
    assert (folder / "specialization.json").is_file()
    # Inverted alone instead of in one batch with the other class: the same image up to the
    # last bits of float arithmetic.
    again = np.asarray(load_rgb(removed), dtype=np.int16)
    first = np.asarray(load_rgb(first_run / "images" / "orange-disc" / "00001.png"), dtype=np.int16)
    assert np.abs(again - first).max() <= 2


def test_textual_inversion_only_generator(mixed_supports, model_dir, tmp_path, capsys):
    out = tmp_path / "ti"
    code, _, _ = run(
        capsys, mixed_supports, "--out", out, "--model", model_dir, *FAST, "--generator", "ti"
    )
    assert code == 0
    for e in manifest(out)["images"]:
        assert e["support"] is None and e["alpha"] is None
        assert Image.open(out / e["path"]).mode == "RGB"


@pytest.mark.e2e
def test_null_blend_moves_tint_from_the_support_towards_textual_inversion(
    supports, model_dir, tmp_path, capsys
):
    """--null-blend 1 at alpha 1 is textual inversion only (fresh noise, the empty prompt); at
    alpha 0 it changes nothing, and --null-blend 0 at alpha 1 keeps the support's embeddings."""

    def pixels(name, *flags):
        out = tmp_path / name
        assert run(capsys, supports, "--out", out, "--model", model_dir, *FAST, *flags)[0] == 0
        images = sorted((out / "images").rglob("*.png"))
        return [np.asarray(Image.open(path), dtype=np.int16) for path in images]

    ti = pixels("ti", "--generator", "ti")
    blended = pixels("blended", "--alpha", "1", "--null-blend", "1")
    kept = pixels("kept", "--alpha", "1", "--null-blend", "0")
    assert len(ti) == len(blended) == 6
    assert all((a == b).all() for a, b in zip(ti, blended))
    assert all(np.abs(a - b).mean() > 1 for a, b in zip(ti, kept))
    at_support = pixels("support", "--alpha", "0", "--null-blend", "0")
    assert all(
        (a == b).all()
        for a, b in zip(at_support, pixels("b1", "--alpha", "0", "--null-blend", "1"))
    )
    moved = pixels("moved", "--alpha", "0.5", "--null-blend", "1")
    still = pixels("still", "--alpha", "0.5", "--null-blend", "0")
    assert all(np.abs(a - b).mean() > 1 for a, b in zip(moved, still))


def test_random_alpha_is_uniform_per_image_and_the_one_each_image_is_made_with(
    mixed_supports, model_dir, tmp_path, capsys
):
    from tint.diffusion.generation import GenerateConfig, draw, plan_images
    from tint.diffusion.specialization import Specialization

    out = tmp_path / "random"
    args = [mixed_supports, "--out", out, "--model", model_dir, *FAST, "--random-alpha"]
    assert run(capsys, *args)[0] == 0
    config = GenerateConfig(random_alpha=True)
    spec = Specialization.load(out / "specialization" / "orange-disc")
    for e in manifest(out)["images"]:
        if e["class"] == "orange-disc":  # the blend the image was rendered with is the recorded one
            assert draw(e["seed"], spec, config).alpha == e["alpha"]
    many = plan_images({"orange-disc": spec}, GenerateConfig(num=4000, random_alpha=True))
    alphas = torch.tensor([e["alpha"] for e in many])
    # U(0, 1): each tenth of the range holds a tenth of the images (binomial sd 0.005).
    counts = torch.histc(alphas, bins=10, min=0, max=1) / len(alphas)
    assert ((counts - 0.1).abs() < 0.02).all(), counts


def test_a_used_output_directory_needs_resume(first_run, mixed_supports, model_dir, capsys):
    code, _, err = run(capsys, mixed_supports, "--out", first_run, "--model", model_dir, *FAST)
    assert code == 1 and "--resume" in err and len(err.strip().splitlines()) == 1


def test_resume_with_other_settings_is_refused(first_run, mixed_supports, model_dir, capsys):
    code, _, err = run(
        capsys,
        mixed_supports,
        "--out",
        first_run,
        "--model",
        model_dir,
        *FAST,
        "--resume",
        "--alpha",
        "0.9",
    )
    assert code == 1 and "alpha" in err


def _missing_model(tmp, supports, model_dir):
    return ["--model", tmp / "nowhere"]


def _not_a_diffusion_model(tmp, supports, model_dir):
    (tmp / "transformers-model").mkdir()
    (tmp / "transformers-model" / "config.json").write_text("{}")
    return ["--model", tmp / "transformers-model"]


def _model_without_vae(tmp, supports, model_dir):
    broken = shutil.copytree(model_dir, tmp / "no-vae")
    shutil.rmtree(broken / "vae")
    return ["--model", broken]


def _corrupt_image(tmp, supports, model_dir):
    (supports / "orange-disc" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return ["--model", model_dir]


def _text_file(tmp, supports, model_dir):
    (supports / "purple-square" / "notes.txt").write_text("hello")
    return ["--model", model_dir]


def _empty_class(tmp, supports, model_dir):
    (supports / "empty-class").mkdir()
    return ["--model", model_dir]


def _options(*extra):
    return lambda tmp, supports, model_dir: ["--model", model_dir, *extra]


BAD = {
    "missing model dir": (_missing_model, "nowhere"),
    "not an SD model": (_not_a_diffusion_model, "model_index.json"),
    "model without a VAE": (_model_without_vae, "vae/config.json"),
    "corrupt image": (_corrupt_image, "orange-disc/1.png"),
    "non-image file": (_text_file, "notes.txt"),
    "empty class folder": (_empty_class, "empty-class"),
    "zero images": (_options("--num", "0"), "--num"),
    "negative images": (_options("--num", "-2"), "--num"),
    "negative steps": (_options("--ti-steps", "-5"), "--ti-steps"),
    "alpha above one": (_options("--alpha", "1.5"), "--alpha"),
    "resolution not a multiple of the VAE factor": (_options("--resolution", "15"), "15x15"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_writes_nothing(case, supports, model_dir, tmp_path, capsys):
    make_args, named = BAD[case]
    out = tmp_path / "out"
    code, _, err = run(
        capsys,
        supports,
        "--out",
        out,
        "--ddim-steps",
        "5",
        "--quiet",
        *make_args(tmp_path, supports, model_dir),
    )
    assert code != 0
    assert len(err.strip().splitlines()) == 1, err
    assert named in err
    assert not out.exists()


def test_an_unwritable_output_directory_is_named(supports, model_dir, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run(capsys, supports, "--out", blocker / "out", "--model", model_dir, *FAST)
    assert code == 1 and "file/out" in err and len(err.strip().splitlines()) == 1


def test_help_explains_every_option(capsys):
    assert main(["generate", "--help"]) == 0
    text = capsys.readouterr().out
    for option in [
        "--num",
        "--alpha",
        "--random-alpha",
        "--generator",
        "--preset",
        "--ti-steps",
        "--ti-lr",
        "--ti-batch",
        "--ddim-steps",
        "--guidance",
        "--seed",
        "--device",
        "--dtype",
        "--resume",
        "--model",
        "--out",
    ]:
        assert option in text


def test_a_non_square_working_resolution(mixed_supports, model_dir, tmp_path, capsys):
    from tint.diffusion.specialization import Specialization

    out = tmp_path / "wide"
    code, _, _ = run(
        capsys, mixed_supports, "--out", out, "--model", model_dir, *FAST, "--resolution", "16x24"
    )
    assert code == 0
    spec = Specialization.load(out / "specialization" / "orange-disc")
    assert tuple(spec.latents_T.shape) == (3, 4, 8, 12)  # (K, C, H/2, W/2)
    for e in manifest(out)["images"]:
        image = Image.open(out / e["path"])
        assert image.size == Image.open(mixed_supports / e["class"] / e["support"]).size
