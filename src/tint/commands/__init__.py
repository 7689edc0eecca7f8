"""The `tint` commands, one module each: its settings (a tree of dataclasses from which come its
flags, what `--config FILE` may set and what a run saves in run.json) and what it runs.

    generate  distill  benchmark  plan  curve  sources  speed  demo  pretrain  data  eval-model
    info"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Options:
    """How a command runs, not what it computes: never saved in run.json."""

    resume: bool = False  # continue a run in OUT
    quiet: bool = False  # no progress bars
    json: bool = False  # print one JSON object
    threads: int | None = None  # CPU threads for torch
    ray: str | None = None  # run on Ray: an address, or "" for RAY_ADDRESS or a local instance
    task_cpus: float = 1.0  # with ray: CPUs per task (an episode, a shard of classes)
    task_gpus: float = 0.0  # with ray: GPUs per task

    @contextlib.contextmanager
    def cluster(self):
        """Where to run: a Ray cluster, or None for this process. A Ray instance started for
        the run is stopped at its end."""
        from tint.io.cluster import Cluster

        if self.ray is None:
            yield None
            return
        cluster = Cluster(self.ray, self.task_cpus, self.task_gpus)
        try:
            yield cluster
        finally:
            cluster.stop()


@dataclass
class Command:
    name: str  # as typed after `tint`: "generate", "pretrain diffusion"
    help: str  # one line, in `tint --help`
    description: str  # a paragraph, in `tint NAME --help`
    settings: type  # the dataclass tree of its settings
    base: Callable[[], object]  # its default settings (some come from the world file)
    run: Callable[[object, Options], None]
    options: tuple[str, ...] = ("quiet",)  # which of Options it takes
    required: tuple[str, ...] = ()  # settings without a default: flags, or --config, give them
    aliases: dict[str, str] = field(default_factory=dict)  # older flag -> dotted path
    task_unit: str = "task"  # what one Ray task runs, in the flags: --episode-cpus
    names: tuple[str, ...] = ()  # older names of the command that still work
    # Checks the settings against each other, knowing the dotted paths the flags set and those
    # the flags or a settings file set; returns them, completed. Raises SettingError.
    check: Callable[[object, set[str], set[str]], object] | None = None


def commands() -> list[Command]:
    """Every command, in the order `tint --help` lists them."""
    from tint.commands import (
        benchmark,
        curve,
        data,
        demo,
        distill,
        eval_model,
        generate,
        info,
        plan,
        pretrain,
        sources,
        speed,
    )

    return [
        generate.COMMAND,
        demo.COMMAND,
        distill.COMMAND,
        benchmark.COMMAND,
        plan.COMMAND,
        curve.COMMAND,
        sources.COMMAND,
        speed.COMMAND,
        *pretrain.COMMANDS,
        data.COMMAND,
        eval_model.COMMAND,
        info.COMMAND,
    ]
