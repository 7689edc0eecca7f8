"""Generators that vary: per-image noise blend from a range, a second support's inversion mixed
in, per-image guidance, prompts moved towards a partner class, and selection by a teacher
criterion. Each is off by default and, at its neutral value, makes the images TINT makes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tint.commands import world
from tint.config import SettingError
from tint.data import glyphs
from tint.data.images import load_class_folders
from tint.diffusion.generation import GenerateConfig, plan_images, render, specialize
from tint.diffusion.model import DiffusionModel
from tint.diffusion.textual_inversion import TextualInversionConfig
from tint.errors import TintError
from tint.models.teachers import load_backbone
from tint.models.teachers import specialize as specialize_teacher
from tint.pipeline.recipe import parse_recipe
from tint.sources.boundary import partners
from tint.sources.selection import select

from .conftest import write_supports

BASE = GenerateConfig(num=4, ddim_steps=3, ti=TextualInversionConfig(steps=4))


@pytest.fixture(scope="module")
def specialised(model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("variety") / "supports"
    write_supports(root, shots=3)
    model = DiffusionModel.load(model_dir)
    return model, specialize(model, load_class_folders(root), BASE, progress=False)


def _images(specialised, config, pairs=None):
    model, specs = specialised
    entries = plan_images(specs, config, pairs)
    return entries, [
        np.asarray(im, dtype=np.float64) for im in render(model, specs, entries, config)
    ]


def _apart(a, b) -> float:
    """Mean absolute difference of two lists of images, in 0-255 levels."""
    return float(np.mean([np.abs(x - y).mean() for x, y in zip(a, b)]))


def test_at_their_neutral_values_the_settings_make_tints_images(specialised):
    _, plain = _images(specialised, BASE)
    pairs = {"orange-disc": "purple-square", "purple-square": "orange-disc"}
    for changed, given in (
        ({"support_mix": 0.0}, None),
        ({"guidance_range": (BASE.guidance, BASE.guidance)}, None),
        ({"boundary": 0.0}, pairs),
    ):
        _, images = _images(specialised, dataclasses.replace(BASE, **changed), given)
        assert _apart(images, plain) < 0.5, changed
    # A range of [0, 1] is --random-alpha, draw for draw.
    ranged, images = _images(specialised, dataclasses.replace(BASE, alpha_range=(0.0, 1.0)))
    drawn, again = _images(specialised, dataclasses.replace(BASE, random_alpha=True))
    assert [e["alpha"] for e in ranged] == [e["alpha"] for e in drawn]
    assert _apart(images, again) == 0


def test_each_setting_varies_the_images_and_says_how_in_the_manifest(specialised):
    _, plain = _images(specialised, BASE)
    entries, ranged = _images(specialised, dataclasses.replace(BASE, alpha_range=(0.6, 0.8)))
    alphas = [e["alpha"] for e in entries]
    assert min(alphas) >= 0.6 and max(alphas) <= 0.8 and len(set(alphas)) == len(alphas)

    entries, mixed = _images(specialised, dataclasses.replace(BASE, support_mix=1.0))
    assert all(e["mixed_with"] != e["support"] and 0 <= e["mix"] <= 1 for e in entries)
    assert _apart(mixed, plain) > 1

    entries, guided = _images(specialised, dataclasses.replace(BASE, guidance_range=(1.0, 3.0)))
    assert all(1 <= e["guidance"] <= 3 for e in entries)
    assert _apart(guided, plain) > 1

    templates = ["a drawing of a {}", "a {} on paper"]
    entries, prompted = _images(specialised, dataclasses.replace(BASE, templates=templates))
    shown = {e["prompt"].replace(f"<{e['class']}>", "{}") for e in entries}
    assert shown <= {BASE.ti.template, *templates} and len(shown) > 1
    assert _apart(prompted, plain) > 0

    pairs = {"orange-disc": "purple-square", "purple-square": "orange-disc"}
    entries, moved = _images(specialised, dataclasses.replace(BASE, boundary=1.0), pairs)
    assert [e["partner"] for e in entries] == [pairs[e["class"]] for e in entries]
    assert _apart(moved, plain) > 1
    with pytest.raises(SettingError, match="needs a partner"):
        plan_images(specialised[1], dataclasses.replace(BASE, boundary=0.5))


def test_tint_spells_an_alpha_a_range_or_a_selection():
    assert parse_recipe("tint:0.5-1@pretrained").sources == ("tint:0.5-1",)
    assert parse_recipe("tint:spread").kinds == ("tint",)
    for bad in ("tint:1-0.5", "tint:0.2-0.4-0.6", "tint:2", "tint:best"):
        with pytest.raises(TintError, match="tint:A needs an alpha"):
            parse_recipe(bad)


@pytest.fixture(scope="module")
def teacher_and_images():
    """A 3-class glyph teacher, and 8 instances of each class as candidates."""
    novel = glyphs.split("novel")[:3]
    backbone = load_backbone(world.DEFAULT_TEACHER)
    teacher = specialize_teacher(
        backbone, [g.name for g in novel], [glyphs.benchmark_instances(g, 2) for g in novel]
    )
    images = torch.cat([glyphs.benchmark_instances(g, 10)[2:] for g in novel])
    return teacher, images, torch.arange(3).repeat_interleave(8)


def test_selection_keeps_per_class_what_its_criterion_prefers(teacher_and_images):
    teacher, images, classes = teacher_and_images
    with torch.no_grad():
        probabilities = teacher.logits(images).softmax(1)
        features = torch.nn.functional.normalize(teacher.backbone.embed(images), dim=1)
    confident = select(teacher, images, classes, 3, "confident")
    assert classes[confident].tolist() == [0] * 3 + [1] * 3 + [2] * 3
    for c in range(3):
        own = probabilities[classes == c, c]
        assert sorted(probabilities[confident[3 * c : 3 * c + 3], c].tolist()) == sorted(
            own.topk(3).values.tolist()
        )
    uncertain = select(teacher, images, classes, 3, "uncertain")
    entropy = -(probabilities * probabilities.log()).sum(1)
    assert entropy[uncertain].mean() > entropy[confident].mean()

    def spread(chosen):
        f = features[chosen]
        return float(1 - (f @ f.T).mean())

    spread_set = select(teacher, images, classes, 3, "spread")
    assert classes[spread_set].tolist() == classes[confident].tolist()
    for c in range(3):
        part = slice(3 * c, 3 * c + 3)
        assert spread(spread_set[part]) >= spread(confident[part])


def test_boundary_partners_are_each_classs_nearest_prototype():
    prototypes = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    assert partners(prototypes, ["a", "b", "c"]) == {"a": "b", "b": "a", "c": "b"}
