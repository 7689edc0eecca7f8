"""Settings: one tree per command, from which its flags, its --config files and its run.json all
come; one name per concept across commands; older flags still work, with a deprecation line."""

from __future__ import annotations

import json

import pytest

from tint.cli import main
from tint.commands import commands
from tint.config import from_dict, leaves, to_dict

from .conftest import write_supports

FAST = ["--ti-steps", "4", "--ddim-steps", "3", "--num", "2", "--quiet"]


def _flags(name: str) -> set[str]:
    command = next(c for c in commands() if c.name == name)
    return {f"--{flag}" for _, flag, f, _ in leaves(command.settings)}


@pytest.mark.parametrize("command", commands(), ids=lambda c: c.name)
def test_a_commands_saved_settings_read_back_as_the_same_settings(command):
    base = command.base()
    again = from_dict(command.settings, json.loads(json.dumps(to_dict(base))), "run.json")
    assert again == base


def test_one_name_per_concept_across_commands():
    # DDIM steps, guidance, textual inversion and the students' training are named alike
    # wherever they are set.
    for name in ("generate", "distill", "benchmark", "demo"):
        assert {"--ddim-steps", "--guidance", "--ti-steps", "--ti-lr", "--num"} <= _flags(name)
    for name in ("distill", "benchmark", "demo"):
        assert {"--distill-steps", "--distill-batch", "--student-arch"} <= _flags(name)
    assert {"--ddim-steps", "--ti-steps"} <= _flags("speed") & _flags("eval-model")
    # A student's sources and start are chosen with the same flags wherever it is trained.
    recipe = {"--student-init", "--student-pretrained", "--retrieval-num", "--seed"}
    assert recipe <= _flags("distill") & _flags("benchmark")
    everything = set().union(*(_flags(c.name) for c in commands()))
    assert not everything & {"--steps", "--cfg", "--synthetic", "--num-synthetic", "--base-use"}


def test_every_setting_has_help_text():
    for command in commands():
        for _, flag, f, _ in leaves(command.settings):
            assert f.metadata.get("help"), f"tint {command.name} --{flag}"


@pytest.mark.parametrize("command", commands(), ids=lambda c: c.name)
def test_help_prints_every_settings_text_as_written(command, capsys):
    # argparse formats help with %, so a text such as "95% half-width" must reach it escaped.
    assert main([*command.name.split(), "--help"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "option_strings" not in printed  # what argparse shows for a stray "% h"
    for _, flag, f, _ in leaves(command.settings):
        assert " ".join(f.metadata["help"].split()) in printed, f"tint {command.name} --{flag}"


@pytest.fixture(scope="module")
def first(model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("settings")
    write_supports(root / "supports")
    out = root / "first"
    argv = ["generate", root / "supports", "--out", out, "--model", model_dir, *FAST]
    assert main([str(a) for a in [*argv, "--alpha", "0.3"]]) == 0
    return root, out


def _pngs(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


def test_a_runs_run_json_repeats_it(first):
    root, out = first
    again = root / "again"
    assert main(["generate", "--config", str(out / "run.json"), "--out", str(again)]) == 0
    assert _pngs(again / "images") == _pngs(out / "images")
    saved = json.loads((again / "run.json").read_text())
    assert saved["generation"]["alpha"] == 0.3 and saved["out"] == str(again)


def test_a_toml_file_sets_any_setting_and_flags_override_it(first, model_dir, tmp_path):
    root, _ = first
    (tmp_path / "settings.toml").write_text(
        f'model = "{model_dir}"\n[generation]\nnum = 1\nalpha = 0.7\n'
        "ddim_steps = 3\n[generation.ti]\nsteps = 4\n"
    )
    out = tmp_path / "out"
    argv = ["generate", str(root / "supports"), "--out", str(out), "--num", "2", "--quiet"]
    assert main([*argv, "--config", str(tmp_path / "settings.toml")]) == 0
    saved = json.loads((out / "run.json").read_text())["generation"]
    assert (saved["num"], saved["alpha"], saved["ti"]["steps"]) == (2, 0.7, 4)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[generation]\nsteps = 3\n", "unknown setting generation.'steps'"),
        ("[generation]\nnum = 'many'\n", "generation.num: expected a whole number"),
        ("[generation]\nnum = 0\n", "generation.num: must be at least 1, got 0"),
        ("[generation\n", "not a TOML settings file"),
    ],
)
def test_a_bad_settings_file_is_one_line_naming_the_setting(text, named, tmp_path, capsys):
    (tmp_path / "bad.toml").write_text(text)
    argv = ["generate", str(tmp_path), "--out", str(tmp_path / "out")]
    assert main([*argv, "--config", str(tmp_path / "bad.toml")]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and named in err, err
    assert not (tmp_path / "out").exists()


def test_an_older_flag_still_works_with_a_deprecation_line(first, model_dir, capsys):
    root, out = first
    argv = ["generate", str(root / "supports"), "--out", str(root / "old"), "--model"]
    argv += [str(model_dir), "--ti-steps", "4", "--steps", "3", "--num", "2", "--cfg", "5"]
    assert main([*argv, "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "--steps is deprecated; use --ddim-steps" in err
    assert "--cfg is deprecated; use --guidance" in err
    saved = json.loads((root / "old" / "run.json").read_text())["generation"]
    assert (saved["ddim_steps"], saved["guidance"]) == (3, 5.0)


def test_the_reference_preset_sets_what_the_flags_leave(tmp_path, capsys):
    from tint.commands.generate import GenerateSettings, check

    settings = check(GenerateSettings(preset="reference"), set(), {"generation.ti.lr"})
    ti = settings.generation.ti
    assert (ti.steps, ti.batch, ti.lr) == (5000, 1, 5e-3)  # lr was given, so it stays


def test_tint_bench_is_still_the_speed_command(capsys):
    """`tint speed` (how fast) was `tint bench`, a name too near `tint benchmark` (how good)."""
    assert main(["speed", "--help"]) == 0
    speed = capsys.readouterr().out
    assert main(["bench", "--help"]) == 0
    assert capsys.readouterr().out.replace("tint bench", "tint speed") == speed
