"""The glyph benchmark: distinct shapes, fixed splits, deterministic instances."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tint.cli import main
from tint.commands.pretrain import _diffusion_base
from tint.data import glyphs
from tint.diffusion.architectures import write_tokenizer


def _glyph(name, strokes):
    return glyphs.Glyph(name, "", *glyphs._normalise(strokes), ())


E = [[(0, 0), (0, 20)], [(0, 0), (12, 0)], [(0, 10), (9, 10)], [(0, 20), (12, 20)]]
F = E[:3]
BIG_O = [[(10 * np.cos(a), 10 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 25)]]
SMALL_O = [[(3 + 4 * x / 10, 7 + 4 * y / 10) for x, y in BIG_O[0]]]


def test_a_letter_and_its_scaled_copy_are_one_shape_and_e_f_are_two():
    groups = glyphs.distinct_shapes(
        [_glyph("O", BIG_O), _glyph("o", SMALL_O), _glyph("E", E), _glyph("F", F)],
        glyphs.settings().merge_threshold,
    )
    assert sorted(groups) == [[0, 1], [2], [3]]


def test_no_two_classes_share_a_shape():
    every = [g for name in glyphs.SPLITS for g in glyphs.split(name)]
    d = glyphs.shape_distances(every)
    d.fill_diagonal_(float("inf"))
    assert d.min() >= glyphs.settings().merge_threshold


def test_splits_are_disjoint_and_each_class_has_its_own_word():
    names = {s: {g.name for g in glyphs.split(s)} for s in glyphs.SPLITS}
    assert not (names["base"] & names["val"] or names["base"] & names["novel"])
    assert not names["val"] & names["novel"]
    words = [g.word for s in glyphs.SPLITS for g in glyphs.split(s)]
    assert len(set(words)) == len(words)


def test_the_same_instances_every_time():
    glyph = glyphs.split("val")[3]
    assert torch.equal(glyphs.benchmark_instances(glyph, 3), glyphs.benchmark_instances(glyph, 3))


def test_every_base_word_is_one_token(tmp_path):
    arch = _diffusion_base().architecture
    words = [*(g.word for g in glyphs.split("base")), *arch.words]  # as `tint pretrain` has them
    tokenizer = write_tokenizer(tmp_path / "tok", words, arch.max_prompt_tokens)
    for glyph in glyphs.split("base"):
        assert tokenizer.tokenize(glyph.word) == [glyph.word + "</w>"]


def test_tint_data_glyphs_writes_identical_class_folders(tmp_path):
    for name in ("a", "b"):
        assert (
            main(
                [
                    "data",
                    "glyphs",
                    "--split",
                    "val",
                    "--out",
                    str(tmp_path / name),
                    "--instances",
                    "2",
                ]
            )
            == 0
        )
    folders = sorted((tmp_path / "a").iterdir())
    assert len(folders) == len(glyphs.split("val"))
    for folder in folders[:10]:
        for png in sorted(folder.iterdir()):
            image = Image.open(png)
            assert image.size == (32, 32) and image.mode == "RGB"
            assert png.read_bytes() == (tmp_path / "b" / folder.name / png.name).read_bytes()


@pytest.mark.slow
def test_the_shipped_catalogue_is_what_the_fonts_give():
    catalogue = glyphs.ASSETS / glyphs.settings().catalogue
    assert glyphs.build_catalogue() == json.loads(catalogue.read_text())


def test_a_character_is_a_letter_in_either_case_or_a_mark_of_any_script_or_a_symbol():
    same = [
        ("futural-0041", "timesi-0061"),
        ("greek-0062", "greekc-0042"),
        ("greek-0032", "cyrillic-0032"),
    ]
    for a, b in same:
        assert glyphs.character(a) == glyphs.character(b)
    different = [("futural-0041", "greek-0041"), ("astrology-0041", "futural-0041")]
    for a, b in different:
        assert glyphs.character(a) != glyphs.character(b)
    assert glyphs.character("astrology-0041") != glyphs.character("music-0041")


def test_identities_join_shared_characters_and_close_shapes_transitively():
    members = [
        ("futural-0041",),
        ("timesr-0061",),
        ("music-0041",),
        ("music-0042",),
        ("markers-0041",),
    ]
    distances = torch.full((5, 5), 9.0)
    distances[2, 3] = distances[3, 2] = 2.0  # music A and B look alike; markers looks like nothing
    distances.fill_diagonal_(0)
    assert glyphs.identities(members, distances, 3.5) == [[0, 1], [2, 3], [4]]
    assert glyphs.identities(members, distances, 1.5) == [[0, 1], [2], [3], [4]]


def test_no_character_and_no_close_shape_crosses_a_split():
    split_of = {}
    for name in glyphs.SPLITS:
        for glyph in glyphs.split(name):
            for member in glyph.members:
                assert split_of.setdefault(glyphs.character(member), name) == name, member
    every = [g for name in glyphs.SPLITS for g in glyphs.split(name)]
    which = torch.tensor([glyphs.SPLITS.index(n) for n in glyphs.SPLITS for _ in glyphs.split(n)])
    d = glyphs.shape_distances(every)
    crossing = which[:, None] != which[None, :]
    assert d[crossing].min() >= glyphs.settings().identity_distance
    # A split by glyph once made greek-0075 novel with the Latin u and v of other fonts in base.
    assert {glyphs.character(m) for g in glyphs.split("novel") for m in g.members}.isdisjoint(
        {glyphs.character(m) for g in glyphs.split("base") for m in g.members}
    )


def test_splits_hold_about_70_10_20_of_the_identities():
    world = glyphs.settings()
    every = [g for name in glyphs.SPLITS for g in glyphs.split(name)]
    groups = glyphs.identities(
        [g.members for g in every], glyphs.shape_distances(every), world.identity_distance
    )
    split_of = {g.name: name for name in glyphs.SPLITS for g in glyphs.split(name)}
    count = {name: 0 for name in glyphs.SPLITS}
    for group in groups:
        assert len({split_of[every[i].name] for i in group}) == 1
        count[split_of[every[group[0]].name]] += 1
    for name, share in world.splits.items():
        assert abs(count[name] / len(groups) - share) < 0.02
    assert len(glyphs.split("novel")) >= 50 and len(glyphs.split("val")) >= 25


def test_instances_are_32px_rgb_and_vary_in_colour_light_and_shape_yet_repeat_exactly():
    glyph = glyphs.split("val")[3]
    x = glyphs.benchmark_instances(glyph, 8)
    assert x.shape == (8, 3, 32, 32) and x.min() >= 0 and x.max() <= 1
    assert torch.equal(x, glyphs.benchmark_instances(glyph, 8))
    assert not torch.equal(x[:, 0], x[:, 1])  # colour, not grey
    paper = x.flatten(2).median(2).values  # (8, 3): most pixels are paper
    assert paper.std(0).min() > 0.05  # paper colour varies between instances
    assert (x - x.mean(0)).abs().mean() > 0.1


def test_tint_world_selects_the_world_file(tmp_path):
    # A world of one's own: the shipped one drawn black on white, without the photographic
    # variations (their settings left out take their defaults, which draw nothing).
    shipped = glyphs.WORLD.read_text().splitlines()
    photographic = ("elastic", "ink", "paper", "light", "occlusion", "clutter", "blur", "noise")
    plain = [line for line in shipped if not line.startswith(photographic)]
    assert len(plain) == len(shipped) - len(photographic)
    world = tmp_path / "plain.toml"
    world.write_text("\n".join(plain))
    command = [sys.executable, "-m", "tint.cli", "data", "glyphs", "--split", "novel"]
    images = {}
    for name, env in (("shipped", {}), ("plain", {"TINT_WORLD": str(world)})):
        out = tmp_path / name
        subprocess.run(
            [*command, "--out", str(out), "--instances", "2"],
            env={**os.environ, **env},
            check=True,
        )
        images[name] = {p.relative_to(out): np.asarray(Image.open(p)) for p in out.rglob("*.png")}
    assert images["plain"].keys() == images["shipped"].keys()
    assert len(images["plain"]) == 2 * len(glyphs.split("novel"))
    for x in images["plain"].values():
        assert (x[..., 0] == x[..., 1]).all() and (x[..., 0] == x[..., 2]).all()  # grey
    assert not all((x[..., 0] == x[..., 1]).all() for x in images["shipped"].values())
