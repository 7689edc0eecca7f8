"""Teachers: the glyph teacher and transformers DINOv2 / CLIP vision models built offline from
tiny configs, specialised on supports with a prototype head."""

import json

import pytest
import torch

from tint.commands import world
from tint.data import glyphs
from tint.errors import TintError
from tint.models.teachers import TeacherConfig, load_backbone, specialize


def _dinov2(path):
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    config = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=28,
        patch_size=7,
    )
    Dinov2Model(config).save_pretrained(path)
    return path


def _clip(path, whole: bool):
    from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    vision = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "image_size": 32,
        "patch_size": 8,
    }
    if whole:
        text = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
        config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
        CLIPModel(config).save_pretrained(path)
    else:
        CLIPVisionModel(CLIPVisionConfig(**vision)).save_pretrained(path)
    return path


def _supports(per_class=2, classes=4):
    novel = glyphs.split("novel")[:classes]
    return [n.name for n in novel], [glyphs.benchmark_instances(g, per_class) for g in novel]


@pytest.fixture(params=["dinov2", "clip", "clip-vision", "glyph"])
def backbone(request, tmp_path):
    if request.param == "dinov2":
        return load_backbone(_dinov2(tmp_path / "dino"))
    if request.param == "glyph":
        return load_backbone(world.DEFAULT_TEACHER)
    return load_backbone(_clip(tmp_path / "clip", whole=request.param == "clip"))


def test_one_shot_supports_are_their_own_prototypes(backbone):
    names, supports = _supports(per_class=1)
    teacher = specialize(backbone, names, supports)
    logits = teacher.logits(torch.cat(supports))
    assert logits.argmax(1).tolist() == list(range(len(names)))
    torch.testing.assert_close(logits.max(1).values, torch.full((len(names),), 10.0))


def test_clip_embeddings_are_the_projected_ones(tmp_path):
    backbone = load_backbone(_clip(tmp_path / "clip", whole=True))
    assert backbone.kind == "clip" and backbone.dim == 16  # projection_dim, not hidden_size


def test_head_fine_tuning_lowers_the_support_loss_and_keeps_the_backbone(tmp_path):
    backbone = load_backbone(_dinov2(tmp_path / "dino"))
    names, supports = _supports(per_class=3)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    labels = torch.arange(len(names)).repeat_interleave(3)

    def loss(teacher):
        return torch.nn.functional.cross_entropy(teacher.logits(torch.cat(supports)), labels)

    plain = specialize(backbone, names, supports)
    tuned = specialize(backbone, names, supports, TeacherConfig(finetune="head", steps=30))
    assert loss(tuned) < loss(plain)
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_last_block_fine_tuning_changes_only_the_last_block(tmp_path):
    backbone = load_backbone(_dinov2(tmp_path / "dino"))
    names, supports = _supports(per_class=2)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    specialize(backbone, names, supports, TeacherConfig(finetune="last", steps=5))
    changed = {k for k, v in backbone.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(
        k.startswith(("model.encoder.layer.1.", "model.layernorm")) for k in changed
    )


def test_preprocessing_follows_preprocessor_config(tmp_path):
    path = _dinov2(tmp_path / "dino")
    (path / "preprocessor_config.json").write_text(
        json.dumps({"size": {"shortest_edge": 40}, "crop_size": {"height": 35, "width": 35}})
    )
    backbone = load_backbone(path)
    assert backbone.input_size == (35, 35)
    assert backbone.preprocess(torch.rand(2, 3, 64, 80)).shape == (2, 3, 35, 35)


def test_a_directory_of_another_kind_names_the_supported_ones(tmp_path):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(TintError, match="not a supported teacher \\(model type 'bert'\\).*DINOv2"):
        load_backbone(tmp_path / "bert")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TintError, match="no config.json"):
        load_backbone(tmp_path / "empty")
    with pytest.raises(TintError, match="nowhere: no such teacher directory"):
        load_backbone(tmp_path / "nowhere")
