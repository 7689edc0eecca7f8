"""The ResNet classifier and its resumable training."""

import pytest
import torch

from tint.errors import TintError
from tint.models.resnet import ResNet, ResNetConfig
from tint.train.classifier import ClassifierTraining, pretrain_classifier
from tint.train.trainer import TrainConfig

from . import shapes

NET = ResNetConfig(
    widths=(8, 16), blocks=(1, 1), num_classes=3, classes=list(shapes.KINDS), input_size=(16, 16)
)
CLASSES = [("red", k) for k in shapes.KINDS]


def _draw(n, g):
    images, captions = shapes.draw(n, g, CLASSES, size=16)
    return images, [shapes.KINDS.index(c.split()[-1]) for c in captions]


def test_save_then_load_gives_the_same_outputs(tmp_path):
    torch.manual_seed(0)
    model = ResNet(NET).eval()
    model.save_pretrained(tmp_path / "m")
    again = ResNet.from_pretrained(tmp_path / "m")
    x = torch.rand(4, 3, 16, 16)
    assert torch.equal(model(x), again(x))
    assert again.config == NET


def test_a_folder_that_is_not_a_resnet_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "dinov2"}')
    with pytest.raises(TintError, match="not describe a tint ResNet"):
        ResNet.from_pretrained(tmp_path)


def _config(steps, batch, checkpoint_every, reuse=4) -> ClassifierTraining:
    train = TrainConfig(
        steps=steps,
        batch=batch,
        lr=3e-3,
        warmup=5,
        schedule="cosine",
        weight_decay=5e-4,
        checkpoint_every=checkpoint_every,
    )
    return ClassifierTraining(train, reuse=reuse)


def test_training_learns_and_an_interrupted_run_resumes_exactly(tmp_path):
    held_out = _draw(150, torch.Generator().manual_seed(99))
    held_out = (held_out[0], torch.tensor(held_out[1]))
    config = _config(steps=60, batch=32, checkpoint_every=20, reuse=1)
    straight = pretrain_classifier(
        tmp_path / "a", ResNet, NET, config, _draw, held_out, progress=False
    )
    assert straight["held_out_accuracy"] > 0.8  # chance is 1/3

    calls = []

    def interrupted(n, g):
        calls.append(n)
        if len(calls) == 45:  # step 44: after the checkpoint at step 40
            raise KeyboardInterrupt
        return _draw(n, g)

    with pytest.raises(KeyboardInterrupt):
        pretrain_classifier(
            tmp_path / "b", ResNet, NET, config, interrupted, held_out, progress=False
        )
    resumed = pretrain_classifier(
        tmp_path / "b", ResNet, NET, config, _draw, held_out, resume=True, progress=False
    )
    assert resumed["step"] == 60
    a, b = ResNet.from_pretrained(tmp_path / "a"), ResNet.from_pretrained(tmp_path / "b")
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-5, msg=name)


def test_a_checkpoint_without_weights_goes_on_from_the_published_model(tmp_path):
    config = _config(steps=20, batch=16, checkpoint_every=20)
    pretrain_classifier(tmp_path / "m", ResNet, NET, config, _draw, progress=False)
    published = dict(ResNet.from_pretrained(tmp_path / "m").named_parameters())
    for f in (tmp_path / "m" / "training").glob("*.safetensors"):
        f.unlink()  # what a fresh clone of the repository has
    longer = _config(steps=21, batch=16, checkpoint_every=20)
    state = pretrain_classifier(
        tmp_path / "m", ResNet, NET, longer, _draw, resume=True, progress=False
    )
    assert state["step"] == 21 and state["warm_from"] == 20
    after = dict(ResNet.from_pretrained(tmp_path / "m").named_parameters())
    gap = max(float((after[k] - published[k]).detach().abs().max()) for k in published)
    assert 0 < gap < 0.01  # one small, re-warmed step from the published weights
