"""Pretraining a classifier from scratch on drawn, labelled images with `tint.train.trainer`
(checkpoints in OUT/training, the model published with `save_pretrained(OUT)` at each one).

The classifier is any network class built from a config dataclass, taking RGB images in [0, 1]
and giving logits, with `save_pretrained(dir)` and `from_pretrained(dir)`: the glyph world's base
teacher (tint.models.resnet.ResNet) and the base-pretrained students (tint.models.students)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from tint.config import group, setting
from tint.data.draws import Draw, PooledDraw
from tint.errors import TintError
from tint.train.trainer import TrainConfig, train, training_folder


@dataclass
class ClassifierTraining:
    train: TrainConfig = group(
        TrainConfig,
        "the optimisation",
        factory=lambda: TrainConfig(
            steps=6000, batch=128, lr=2e-3, warmup=300, schedule="cosine", weight_decay=5e-4
        ),
    )
    label_smoothing: float = setting(0.1, "of the cross-entropy's targets", minimum=0, maximum=1)
    reuse: int = setting(4, "steps each drawn image serves (see PooledDraw)", minimum=1)


@torch.no_grad()
def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    predicted = torch.cat([model(x).argmax(1) for x in images.split(512)])
    return float((predicted == labels).float().mean())


def pretrain_classifier(
    out: str | Path,
    network: type,
    net,
    config: ClassifierTraining,
    draw: Draw,
    held_out: tuple[torch.Tensor, torch.Tensor] | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Train `network(net)` on batches from `draw` (labels are class indices) into `out`; with
    `resume`, continue from its last checkpoint. `held_out` (images, labels) is scored at every
    fourth checkpoint and the last. Returns the final state."""
    out = Path(out)
    folder, checkpoint, state = training_folder(out, resume)
    net_json = json.loads(json.dumps(dataclasses.asdict(net)))
    if state and state["net"] != net_json:
        raise TintError(f"{out}: was trained with another network; use another --out")
    settings = config.train
    with folder:
        torch.manual_seed(settings.seed)
        model = network(net)
        pool = PooledDraw(draw, settings.batch, config.reuse, settings.seed, "classifier")

        def step(index: int, g: torch.Generator) -> torch.Tensor:
            images, labels = pool(index, g)
            return F.cross_entropy(
                model(images), torch.tensor(labels), label_smoothing=config.label_smoothing
            )

        def record(done: int) -> dict:
            every = 4 * settings.checkpoint_every
            if held_out is None or (done % every and done != settings.steps):
                return {"net": net_json}
            return {"net": net_json, "held_out_accuracy": accuracy(model, *held_out)}

        def warm_start() -> None:
            model.load_state_dict(network.from_pretrained(out).state_dict())

        return train(
            step,
            {"model": model},
            settings,
            "classifier",
            checkpoint=checkpoint,
            publish=lambda modules: modules["model"].save_pretrained(out),
            record=record,
            warm_start=warm_start,
            progress=progress,
            desc="classifier",
        )
