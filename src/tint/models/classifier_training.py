"""Training a classifier from scratch on drawn, labelled images, resumably (checkpoints in
OUT/training, the final model saved with `save_pretrained(OUT)`).

The classifier is any network class built from a config dataclass, taking RGB images in [0, 1]
and giving logits, with `save_pretrained(dir)` and `from_pretrained(dir)`: the glyph world's base
teacher (tint.models.resnet.ResNet) and the base-pretrained students (tint.models.students)."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from tint.batches import Draw, PooledDraw, step_generator
from tint.checkpoint import Checkpoint
from tint.errors import TintError
from tint.run_folder import RunFolder


@dataclass
class ClassifierTraining:
    steps: int = 6000
    batch: int = 128
    lr: float = 2e-3  # AdamW peak, cosine decay to 0 after a linear warm-up
    warmup: int = 300
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    reuse: int = 4  # each drawn image serves about this many steps
    checkpoint_every: int = 250
    seed: int = 0


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
    resume: bool = False,
    progress: bool = True,
) -> dict:
    """Train `network(net)` on batches from `draw` (labels are class indices) into `out`; with
    `resume`, continue from its last checkpoint. `held_out` (images, labels) is scored at every
    fourth checkpoint and the last. Returns the final state."""
    out = Path(out)
    checkpoint = Checkpoint(out / "training")
    folder = RunFolder(out, None, resume)
    folder.check()
    state = checkpoint.state() if resume else None
    if resume and state is None:
        raise TintError(f"{out}: no checkpoint to resume (training/state.json is missing)")
    net_json = json.loads(json.dumps(dataclasses.asdict(net)))
    if state and state["net"] != net_json:
        raise TintError(f"{out}: was trained with another network; use another --out")
    with folder:
        torch.manual_seed(config.seed)
        model = network(net)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        state = state or {"step": 0, "seconds": 0.0, "held_out_accuracy": None, "warm_from": 0}
        if state["step"] > 0 and checkpoint.has_weights():
            checkpoint.load_into({"model": model}, optimizer)
        elif state["step"] > 0:  # weights-only checkpoint: go on from the published weights
            model.load_state_dict(network.from_pretrained(out).state_dict())
            state["warm_from"] = state["step"]
        pool = PooledDraw(draw, config.batch, config.reuse, config.seed, "classifier")
        started, recent = time.perf_counter(), []
        bar = tqdm(
            range(state["step"], config.steps),
            initial=state["step"],
            total=config.steps,
            desc="classifier",
            disable=not progress,
        )
        for step in bar:
            model.train()
            images, labels = pool(step, step_generator(config.seed, "classifier", step))
            progress_ = (step + 1 - state.get("warm_from", 0)) / max(1, config.warmup)
            cosine = 0.5 * (1 + math.cos(math.pi * step / config.steps))
            for group in optimizer.param_groups:
                group["lr"] = config.lr * min(1.0, progress_) * cosine
            loss = F.cross_entropy(
                model(images), torch.tensor(labels), label_smoothing=config.label_smoothing
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            recent = (recent + [float(loss.detach())])[-100:]
            bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}")
            done = step + 1
            if done % config.checkpoint_every == 0 or done == config.steps:
                if held_out is not None and (
                    done % (4 * config.checkpoint_every) == 0 or done == config.steps
                ):
                    state["held_out_accuracy"] = accuracy(model, *held_out)
                state.update(
                    step=done,
                    loss=sum(recent) / len(recent),
                    net=net_json,
                    config=dataclasses.asdict(config),
                    seconds=state["seconds"] + time.perf_counter() - started,
                )
                started = time.perf_counter()
                checkpoint.save(state, {"model": model}, optimizer)
                model.save_pretrained(out)
        return state
