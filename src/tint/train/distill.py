"""Knowledge distillation of a teacher into a student (Hinton et al. 2015), resumably.

Each step draws a batch of the transfer set (the images a student learns the teacher from:
generated, retrieved, any images without labels), augments it, and shows the *same* augmented
view to the teacher and the student. With `views` set, the teacher labels that many augmented
views of every transfer image once, before training, and each step draws its batch from those
labelled views instead: the same loss for far fewer teacher calls (a step
costs the teacher a forward of 64 images, the student a forward and a backward). The loss is

    T^2 KL(softmax(teacher / T) || softmax(student / T))  +  w * CE(student(aug(supports)), y)

With no transfer set, the student learns from its supports alone (cross-entropy with the same
ordinary augmentation): the baseline every generator has to beat. The student's forward runs under
bfloat16 autocast where the hardware is fast at it (`precision`; losses in float32). Every
step's batch and augmentation depend only on (seed, step), so a run resumed from a checkpoint is
the run it would have been."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from tint.config import setting
from tint.data.augment import AugmentConfig, augment
from tint.data.images import as_float
from tint.io import seeds
from tint.io.checkpoint import Checkpoint
from tint.io.hardware import PRECISIONS, resolved_precision
from tint.io.stages import stage
from tint.models.students import Student
from tint.train.trainer import TrainConfig, train


@dataclass
class DistillConfig(TrainConfig):
    """The optimisation (see TrainConfig) and the distillation loss."""

    steps: int = setting(400, "distillation steps", minimum=1)
    pretrained_steps: int | None = setting(
        None,
        "distillation steps of a student that starts from a base-pretrained backbone (default: "
        "steps)",
        minimum=1,
    )
    batch: int = setting(64, "transfer-set images per step", minimum=1)
    lr: float = setting(3e-3, "AdamW's peak learning rate", above=0)
    warmup: int = setting(50, "steps of linear warm-up of the learning rate", minimum=0)
    schedule: str = setting(
        "cosine",
        "after the warm-up: constant, or cosine decay to 0",
        choices=("constant", "cosine"),
    )
    weight_decay: float = setting(5e-4, "AdamW's decoupled weight decay", minimum=0)
    support_batch: int = setting(
        64, "supports per step (all of them when there are fewer)", minimum=1
    )
    temperature: float = setting(4.0, "softens both distributions in the KL term", above=0)
    support_weight: float = setting(1.0, "weight of the supports' cross-entropy", minimum=0)
    base_batch: int = setting(
        64,
        "base-pool images per step, beside the transfer set's, where the base source is used",
        minimum=1,
    )
    base_views: int = setting(
        2, "augmented views of each base-pool image the teacher labels once", minimum=1
    )
    views: int = setting(
        16,
        "augmented views of each transfer-set image the teacher labels once, before training, "
        "for the "
        "steps to draw from (0: a fresh view, labelled when drawn, at every step)",
        minimum=0,
    )
    precision: str = setting(
        "auto",
        "the student's arithmetic in training: bfloat16 autocast or float32; auto is bfloat16 "
        "where the hardware has fast bfloat16 (a CPU with AMX or AVX512-BF16 kernels in use, a "
        "GPU that supports it), float32 elsewhere",
        choices=PRECISIONS,
    )


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


@torch.no_grad()
def labelled_views(
    label, images: torch.Tensor, count: int, g: torch.Generator, augmentation: AugmentConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` augmented views of every image, as uint8, and `label`'s logits on each (in
    [0, 1] as the student will see it: rounded to uint8), views drawn from `g`."""
    views, logits = [], []
    for _ in range(count):
        for x in images.split(256):
            view = (augment(as_float(x), g, augmentation) * 255).round().to(torch.uint8)
            with stage("teacher_labels"):
                logits.append(label(as_float(view)))
            views.append(view)
    return torch.cat(views), torch.cat(logits)


def transfer_views(
    teacher, transfer: torch.Tensor, config: DistillConfig, augmentation: AugmentConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """The `config.views` labelled views of a transfer set a student learns from
    (`labelled_views`): the same for every student of one teacher, transfer set and seed, so
    they can share them."""
    g = seeds.generator(config.seed, "distill-views")
    return labelled_views(teacher, transfer, config.views, g, augmentation)


def distill(
    student: Student,
    teacher,
    supports: torch.Tensor,
    labels: torch.Tensor,
    transfer: torch.Tensor | None,
    config: DistillConfig,
    augmentation: AugmentConfig | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    desc: str = "distilling",
    base: tuple[torch.Tensor, torch.Tensor] | None = None,
    labelled: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict:
    """Train `student` (in place) for `config.steps`.

    Args:
        teacher: a module giving logits over the student's classes for images in [0, 1], or None
            when there is nothing for it to label.
        supports: (K, 3, H, W) in [0, 1] with their class indices `labels` (K,).
        transfer: (M, 3, H, W) images the teacher labels (uint8, or float in [0, 1]); None for
            none.
        checkpoint_dir: where to checkpoint every `config.checkpoint_every` steps and resume from.
        base: a base pool the teacher has labelled: uint8 views and the teacher's logits on
            each (`labelled_views`), `config.base_batch` of them in every step's KD term.
        labelled: the transfer set's `transfer_views`, where another student of the same
            teacher, transfer set and seed made them already.
    Returns:
        the final state: step, seconds, recent loss, and the precision it trained in.
    """
    augmentation = augmentation or AugmentConfig()
    student.to(memory_format=torch.channels_last)  # faster on CPUs, same numbers
    if teacher is not None:
        teacher.eval()
    supports, labels = supports.float(), labels.long()
    device = next(student.parameters()).device
    precision = resolved_precision(config.precision, device)

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, torch.bfloat16, enabled=precision == "bfloat16"):
            return student(x).float()

    if transfer is not None and config.views:
        with stage("distillation"):
            views, targets = labelled or transfer_views(teacher, transfer, config, augmentation)

    def transfer_batch(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if config.views:
            pick = torch.randint(len(views), (config.batch,), generator=g)
            return as_float(views[pick]), targets[pick]
        pick = torch.randint(len(transfer), (config.batch,), generator=g)
        view = augment(as_float(transfer[pick]), g, augmentation)
        with torch.no_grad(), stage("teacher_labels"):
            return view, teacher(view)

    def step(index: int, g: torch.Generator) -> torch.Tensor:
        pick = torch.randperm(len(supports), generator=g)[: config.support_batch]
        loss = config.support_weight * F.cross_entropy(
            forward(augment(supports[pick], g, augmentation)), labels[pick]
        )
        batches = [] if transfer is None else [transfer_batch(g)]
        if base is not None:
            pick = torch.randint(len(base[0]), (config.base_batch,), generator=g)
            batches.append((as_float(base[0][pick]), base[1][pick]))
        if not batches:
            return loss
        view, target = (torch.cat(parts) for parts in zip(*batches))
        return loss + kd_loss(forward(view), target, config.temperature)

    with stage("distillation"):
        state = train(
            step,
            {"student": student},
            config,
            "distill",
            checkpoint=Checkpoint(checkpoint_dir) if checkpoint_dir else None,
            window=50,
            progress=progress,
            desc=desc,
        )
    return {**state, "precision": precision}
