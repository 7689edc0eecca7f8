"""Knowledge distillation of a teacher into a student (Hinton et al. 2015), resumably.

Each step draws a batch of pool images (generated, or any unlabelled ones), augments it, and
shows the *same* augmented view to the teacher and the student; the loss is

    T^2 KL(softmax(teacher / T) || softmax(student / T))  +  w * CE(student(aug(supports)), y)

With no pool, the student learns from its supports alone (cross-entropy with the same ordinary
augmentation): the baseline every generator has to beat. Every step's batch and augmentation
depend only on (seed, step), so a run resumed from a checkpoint is the run it would have been."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from tint.batches import step_generator
from tint.checkpoint import Checkpoint
from tint.data.augment import AugmentConfig, augment
from tint.data.images import as_float
from tint.models.students import Student

# TINT's noise blend for images a student learns from: the best of 0.3, 0.5, 0.7 and 0.9 in a
# sweep on the glyph world's val classes (hard 5-way 1-shot, 4 episodes; README, Benchmark).
# Near-copies of the supports (low alpha) teach the student less than varied images do.
DISTILL_ALPHA = 0.9


@dataclass
class DistillConfig:
    steps: int = 1000
    batch: int = 64  # pool images per step
    support_batch: int = 64  # supports per step (all of them when there are fewer)
    lr: float = 3e-3  # AdamW peak, cosine decay to 0 after a linear warm-up
    warmup: int = 50
    weight_decay: float = 5e-4
    temperature: float = 4.0  # softens both distributions in the KL term
    support_weight: float = 1.0  # weight of the supports' cross-entropy
    checkpoint_every: int = 250  # steps, when a checkpoint directory is given
    seed: int = 0


def kd_loss(student_logits, teacher_logits, temperature: float) -> torch.Tensor:
    """T^2 KL(p_teacher || p_student) over softened distributions, mean over the batch."""
    log_p = F.log_softmax(student_logits / temperature, dim=1)
    q = F.log_softmax(teacher_logits / temperature, dim=1)
    return F.kl_div(log_p, q, log_target=True, reduction="batchmean") * temperature**2


@torch.no_grad()
def agreement(student: Student, teacher, images: torch.Tensor, temperature: float) -> dict:
    """How far the student is from the teacher on `images` (no augmentation): the KD term and
    the share of images on which their top classes agree."""
    student.eval()
    s = torch.cat([student(x) for x in images.split(256)])
    t = teacher.logits(images)
    return {
        "kl": float(kd_loss(s, t, temperature)),
        "top1_agreement": float((s.argmax(1) == t.argmax(1)).float().mean()),
    }


def distill(
    student: Student,
    teacher,
    supports: torch.Tensor,
    labels: torch.Tensor,
    pool: torch.Tensor | None,
    config: DistillConfig,
    augmentation: AugmentConfig | None = None,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    desc: str = "distilling",
) -> dict:
    """Train `student` (in place) for `config.steps`.

    Args:
        teacher: a module giving logits over the student's classes for images in [0, 1], or None
            when there is no pool.
        supports: (K, 3, H, W) in [0, 1] with their class indices `labels` (K,).
        pool: (M, 3, H, W) images the teacher labels (uint8, or float in [0, 1]); None for
            supports only.
        checkpoint_dir: where to checkpoint every `config.checkpoint_every` steps and resume from.
    Returns:
        the final state: step, seconds, recent loss.
    """
    augmentation = augmentation or AugmentConfig()
    student.to(memory_format=torch.channels_last)  # faster on CPUs, same numbers
    optimizer = torch.optim.AdamW(
        student.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    checkpoint = Checkpoint(checkpoint_dir) if checkpoint_dir else None
    state = {"step": 0, "seconds": 0.0, "loss": None}
    if checkpoint and checkpoint.state() and checkpoint.has_weights():
        saved = checkpoint.state()
        if saved.get("config") == dataclasses.asdict(config):
            checkpoint.load_into({"student": student}, optimizer)
            state = saved
    if teacher is not None:
        teacher.eval()
    supports, labels = supports.float(), labels.long()
    started, recent = time.perf_counter(), []
    bar = tqdm(
        range(state["step"], config.steps),
        initial=state["step"],
        total=config.steps,
        desc=desc,
        disable=not progress,
        leave=False,
    )
    for step in bar:
        student.train()
        g = step_generator(config.seed, "distill", step)
        pick = torch.randperm(len(supports), generator=g)[: config.support_batch]
        loss = config.support_weight * F.cross_entropy(
            student(augment(supports[pick], g, augmentation)), labels[pick]
        )
        if pool is not None:
            pick = torch.randint(len(pool), (config.batch,), generator=g)
            view = augment(as_float(pool[pick]), g, augmentation)
            with torch.no_grad():
                target = teacher(view)
            loss = loss + kd_loss(student(view), target, config.temperature)
        warm = min(1.0, (step + 1) / max(1, config.warmup))
        for group in optimizer.param_groups:
            group["lr"] = config.lr * warm * 0.5 * (1 + math.cos(math.pi * step / config.steps))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        recent = (recent + [float(loss.detach())])[-50:]
        bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}")
        done = step + 1
        if checkpoint and (done % config.checkpoint_every == 0 or done == config.steps):
            state = {
                "step": done,
                "seconds": state["seconds"] + time.perf_counter() - started,
                "loss": sum(recent) / len(recent),
                "config": dataclasses.asdict(config),
            }
            started = time.perf_counter()
            checkpoint.save(state, {"student": student}, optimizer)
    student.eval()
    if not checkpoint:
        state = {
            "step": config.steps,
            "seconds": time.perf_counter() - started,
            "loss": sum(recent) / len(recent) if recent else None,
        }
    return state
