"""The one training loop: AdamW, a warm-up then a constant or cosine learning rate, an exponential
moving average of the weights where asked, checkpoints that resume exactly, and a progress bar.

Every model tint trains goes through `train`: the diffusion model's VAE and denoiser, the base
classifiers, and the distilled students. A step's randomness comes from a generator seeded by
(seed, stage, step) alone (`tint.io.seeds`), so a run resumed from a full checkpoint (weights,
averages, optimizer state) makes exactly the steps an uninterrupted run makes. A checkpoint that
holds only its record (the shipped models keep state.json, not the optimizer state) resumes
from the published weights with a fresh optimizer whose warm-up starts again ("warm_from")."""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from tint.config import setting
from tint.errors import TintError
from tint.io import seeds
from tint.io.checkpoint import Checkpoint
from tint.io.progress import bar
from tint.io.run_folder import RunFolder


@dataclass
class TrainConfig:
    steps: int = setting(1000, "optimisation steps in all", minimum=1)
    batch: int = setting(64, "examples per step", minimum=1)
    lr: float = setting(1e-3, "AdamW's peak learning rate", above=0)
    warmup: int = setting(0, "steps of linear warm-up of the learning rate", minimum=0)
    schedule: str = setting(
        "constant",
        "after the warm-up: constant, or cosine decay to 0",
        choices=("constant", "cosine"),
    )
    weight_decay: float = setting(0.0, "AdamW's decoupled weight decay", minimum=0)
    ema_decay: float = setting(
        0.0, "decay of the moving average of the weights (0: none); it warms up from 0.9", minimum=0
    )
    checkpoint_every: int = setting(250, "steps between checkpoints", minimum=1)
    seed: int = setting(0, "seed of every step's randomness")


# step(index, generator) -> the loss to minimise at that step
Step = Callable[[int, torch.Generator], torch.Tensor]


def train(
    step: Step,
    modules: dict[str, torch.nn.Module],
    config: TrainConfig,
    stage: str,
    *,
    checkpoint: Checkpoint | None = None,
    publish: Callable[[dict[str, torch.nn.Module]], None] | None = None,
    record: Callable[[int], dict] | None = None,
    warm_start: Callable[[], None] | None = None,
    window: int = 100,
    progress: bool = True,
    desc: str | None = None,
) -> dict:
    """Train the parameters of `modules` that require gradients for `config.steps` steps.

    Args:
        step: the loss of one step, from the step's index and its random stream.
        stage: names the random streams (seed, stage, step) and the progress bar.
        checkpoint: where to save every `config.checkpoint_every` steps and at the end, and to
            resume from; None trains in memory only.
        publish: called at each checkpoint with what users should get: the modules, or with an
            EMA their averages.
        record: extra entries for a checkpoint's state at a step (a held-out score, say).
        warm_start: loads the published weights when the checkpoint holds only its record.
        window: steps the reported loss averages over.
    Returns:
        The final state: step, seconds, loss (the last `window` steps' mean), warm_from, config,
        and what `record` added.
    """
    state = {"step": 0, "seconds": 0.0, "loss": None, "warm_from": 0}
    previous = checkpoint.state() if checkpoint is not None else None
    if previous is not None and previous.get("step", 0) == 0:  # an earlier stage's record
        state["seconds"], previous = previous.get("seconds", 0.0), None
    full = previous is not None and checkpoint.has_weights()
    if previous is not None:
        state = {**state, **previous}
        if not full:
            if warm_start is not None:
                warm_start()
            state["warm_from"] = state["step"]
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    ema = {name: copy.deepcopy(m) for name, m in modules.items()} if config.ema_decay else {}
    saved = {**modules, **{f"{name}_ema": m for name, m in ema.items()}}
    if full:
        checkpoint.load_into(saved, optimizer)
    averaged = [p for m in ema.values() for p in m.parameters() if p.requires_grad]
    started, recent = time.perf_counter(), []
    shown = bar(
        range(state["step"], config.steps),
        desc or stage,
        progress,
        initial=state["step"],
        total=config.steps,
    )
    for index in shown:
        for m in modules.values():
            m.train()  # a checkpoint's `record` may have scored them in eval mode
        loss = step(index, seeds.generator(config.seed, stage, index))
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(config, index, state["warm_from"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema:
            with torch.no_grad():
                # The usual warm-up of the decay, so short runs are not dominated by the init.
                decay = min(config.ema_decay, (1 + index) / (10 + index))
                torch._foreach_lerp_(averaged, params, 1 - decay)
        recent = (recent + [float(loss.detach())])[-window:]
        shown.set_postfix(loss=f"{sum(recent) / len(recent):.4f}")
        done = index + 1
        if checkpoint is not None and (done % config.checkpoint_every == 0 or done == config.steps):
            state.update(
                step=done,
                seconds=state["seconds"] + time.perf_counter() - started,
                loss=sum(recent) / len(recent),
                config=dataclasses.asdict(config),
                **(record(done) if record else {}),
            )
            started = time.perf_counter()
            checkpoint.save(state, saved, optimizer)
            if publish is not None:
                publish(ema or modules)
    for m in modules.values():
        m.eval()
    if checkpoint is None or state["step"] < config.steps:
        state.update(
            step=config.steps,
            seconds=state["seconds"] + time.perf_counter() - started,
            loss=sum(recent) / len(recent) if recent else state["loss"],
        )
    return state


def training_folder(out: Path, resume: bool) -> tuple[RunFolder, Checkpoint, dict | None]:
    """The run folder of a training run, checked; its checkpoint; and, with `resume`, the state
    to go on from (a TintError if there is none)."""
    folder, checkpoint = RunFolder(out, None, resume), Checkpoint(out / "training")
    folder.check()
    state = checkpoint.state() if resume else None
    if resume and state is None:
        raise TintError(f"{out}: no checkpoint to resume (training/state.json is missing)")
    return folder, checkpoint, state


def learning_rate(config: TrainConfig, step: int, warm_from: int = 0) -> float:
    """The learning rate of a step: a linear warm-up over `warmup` steps from `warm_from` (the
    step a fresh optimizer took over), then constant or a cosine decay over the whole run."""
    warm = min(1.0, (step + 1 - warm_from) / max(1, config.warmup))
    if config.schedule == "cosine":
        return config.lr * warm * 0.5 * (1 + math.cos(math.pi * step / config.steps))
    return config.lr * warm
