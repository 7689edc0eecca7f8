"""Models as users name them: a local folder, or a hub id found in the local Hugging Face cache
(offline; nothing is downloaded), with one line naming the id and the cache when it is not there."""

import shutil

from tint.cli import main
from tint.commands import world

from .conftest import write_supports

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _cached(home, repo: str, folder) -> None:
    """`folder` as the Hugging Face cache holds a downloaded repository under HF_HOME."""
    entry = home / "hub" / f"models--{repo.replace('/', '--')}"
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(COMMIT)
    shutil.copytree(folder, entry / "snapshots" / COMMIT)


def test_a_hub_id_in_the_cache_names_the_model_and_the_teacher(model_dir, tmp_path, monkeypatch):
    home = tmp_path / "hf"
    _cached(home, "someone/tiny-sd", model_dir)
    _cached(home, "someone/glyph-teacher", world.DEFAULT_TEACHER)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    write_supports(tmp_path / "supports")
    by_id, by_folder = tmp_path / "by-id", tmp_path / "by-folder"
    small = ["--num", "2", "--ti-steps", "2", "--ddim-steps", "2", "--quiet"]
    assert (
        main(
            [
                "generate",
                str(tmp_path / "supports"),
                "--out",
                str(by_id),
                "--model",
                "someone/tiny-sd",
                *small,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "generate",
                str(tmp_path / "supports"),
                "--out",
                str(by_folder),
                "--model",
                str(model_dir),
                *small,
            ]
        )
        == 0
    )
    made = sorted(p.relative_to(by_id) for p in (by_id / "images").rglob("*.png"))
    assert len(made) == 4
    for path in made:
        assert (by_id / path).read_bytes() == (by_folder / path).read_bytes()
    from tint.models.teachers import load_backbone

    assert load_backbone("someone/glyph-teacher").kind == "glyph"


def test_a_hub_id_not_in_the_cache_is_one_line_naming_it_and_the_cache(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    write_supports(tmp_path / "supports")
    args = ["distill", str(tmp_path / "supports"), "--out", str(tmp_path / "out")]
    assert main([*args, "--model", "someone/missing-sd"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert (
        "someone/missing-sd: not a local model directory, and not in the Hugging Face cache" in err
    )
    assert str(tmp_path / "empty-hf" / "hub") in err
    assert not (tmp_path / "out").exists()


def _generate(supports, out, *model) -> int:
    small = ["--num", "2", "--ti-steps", "2", "--ddim-steps", "2", "--quiet"]
    return main(["generate", str(supports), "--out", str(out), *model, *small])


def test_a_single_file_checkpoint_is_the_model_it_was_made_from(
    model_dir, tmp_path, monkeypatch, capsys
):
    from tint.diffusion.single_file import write_single_file

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    checkpoint = tmp_path / "tiny-sd.safetensors"
    write_single_file(model_dir, checkpoint)
    write_supports(tmp_path / "supports")
    by_file, by_folder = tmp_path / "by-file", tmp_path / "by-folder"
    with_config = ["--model", str(checkpoint), "--model-config", str(model_dir)]
    assert _generate(tmp_path / "supports", by_file, *with_config) == 0
    assert _generate(tmp_path / "supports", by_folder, "--model", str(model_dir)) == 0
    made = sorted(p.relative_to(by_file) for p in (by_file / "images").rglob("*.png"))
    assert len(made) == 4
    for path in made:
        assert (by_file / path).read_bytes() == (by_folder / path).read_bytes()
    # converted once, into the user's cache, and found there by the next run
    converted = list((tmp_path / "cache" / "tint" / "single-file").iterdir())
    assert len(converted) == 1 and (converted[0] / "model_index.json").is_file()
    stamp = (converted[0] / "model_index.json").stat().st_mtime_ns
    assert _generate(tmp_path / "supports", tmp_path / "again", *with_config) == 0
    assert (converted[0] / "model_index.json").stat().st_mtime_ns == stamp
    # without a configuration: the one diffusers infers, looked for in the (empty) cache
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    capsys.readouterr()
    assert _generate(tmp_path / "supports", tmp_path / "no-config", "--model", str(checkpoint)) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in err and "--model-config" in err
    missing = ["--model", str(tmp_path / "typo.safetensors")]
    assert _generate(tmp_path / "supports", tmp_path / "y", *missing) == 1
    assert "typo.safetensors: no such single-file checkpoint" in capsys.readouterr().err
    # a configuration is for a single file only
    folder_with_config = ["--model", str(model_dir), "--model-config", str(model_dir)]
    assert _generate(tmp_path / "supports", tmp_path / "x", *folder_with_config) == 1
    assert "--model-config is for a single-file --model" in capsys.readouterr().err
