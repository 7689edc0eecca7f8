"""The glyph benchmark: distinct shapes, fixed splits, deterministic instances."""

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


def test_splits_are_disjoint_and_roughly_70_10_20():
    names = {s: {g.name for g in glyphs.split(s)} for s in glyphs.SPLITS}
    total = sum(len(v) for v in names.values())
    assert not (names["base"] & names["val"] or names["base"] & names["novel"])
    assert not names["val"] & names["novel"]
    for split, share in glyphs.settings().splits.items():
        assert abs(len(names[split]) / total - share) < 0.01
    words = [g.word for s in glyphs.SPLITS for g in glyphs.split(s)]
    assert len(set(words)) == len(words)


def test_instances_are_32px_rgb_ink_on_white_and_differ():
    glyph = glyphs.split("novel")[0]
    x = glyphs.benchmark_instances(glyph, 4)
    assert x.shape == (4, 3, 32, 32) and x.min() >= 0 and x.max() <= 1
    assert (x.median() == 1.0) and x.min() < 0.2  # white paper, black ink
    assert torch.equal(x[:, 0], x[:, 1])  # grey
    assert not torch.equal(x[0], x[1])


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
    import json

    assert glyphs.build_catalogue() == json.loads(glyphs.CATALOGUE.read_text())
