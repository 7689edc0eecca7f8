"""Where the time goes: seconds per named stage of a piece of work.

    with recording() as seconds:        # {stage: seconds}, filled in as the work runs
        ...
        with stage("distillation"):
            ...
            with stage("teacher_labels"):
                ...

The code that does the work marks its stages; whoever runs it and wants the breakdown records
it. A stage's seconds exclude the stages nested in it (the teacher's labels inside
distillation), so stages add up to the time spent in them. Outside a recording a stage costs two
clock reads; with CUDA in use, a stage waits for the GPU at its ends. The stages tint marks:

    teacher              specialising the teacher's head to the supports
    textual_inversion    learning the class tokens
    null_text_inversion  inverting the supports (DDIM inversion and null-text optimisation)
    generation           rendering images from the specialisations
    retrieval            picking the base pool's images nearest the supports
    teacher_labels       the teacher's logits on the images a student learns from
    distillation         training the student (less the teacher's labels)
    scoring              the model under test on the queries or held-out images
    export               writing and checking the ONNX file
    throughput           timing the student's images per second"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch


@dataclass
class _Recording:
    seconds: dict[str, float] = field(default_factory=dict)
    nested: list[float] = field(default_factory=list)  # per open stage: its nested stages' time


_ACTIVE: ContextVar[_Recording | None] = ContextVar("tint_stages", default=None)


@contextmanager
def recording() -> Iterator[dict[str, float]]:
    """Record the stages run inside the block into the dict it yields."""
    record = _Recording()
    token = _ACTIVE.set(record)
    try:
        yield record.seconds
    finally:
        _ACTIVE.reset(token)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Count the block's time, less its nested stages', to `name` in the active recording."""
    record = _ACTIVE.get()
    if record is None:
        yield
        return
    record.nested.append(0.0)
    _synchronize()
    start = time.perf_counter()
    try:
        yield
    finally:
        _synchronize()
        spent = time.perf_counter() - start
        inner = record.nested.pop()
        record.seconds[name] = record.seconds.get(name, 0.0) + spent - inner
        if record.nested:
            record.nested[-1] += spent


def _synchronize() -> None:
    """Wait for queued GPU work, so that it counts to the stage that queued it."""
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()


def summary(seconds: dict[str, float], total: float) -> str:
    """ "58.2 s: textual inversion 9.1 s, ..., other 1.3 s": a recording's stages, largest first,
    and what the total spent outside them."""
    parts = sorted(seconds.items(), key=lambda item: -item[1])
    other = total - sum(seconds.values())
    words = [f"{name.replace('_', ' ')} {value:.1f} s" for name, value in parts]
    return f"{total:.1f} s: " + ", ".join([*words, f"other {max(other, 0.0):.1f} s"])


def rounded(seconds: dict[str, float], digits: int = 2) -> dict[str, float]:
    """A recording as results keep it."""
    return {name: round(value, digits) for name, value in seconds.items()}
