"""Training checkpoints on disk: module weights and optimizer state as safetensors plus a JSON
state, swapped in whole so an interrupted save never leaves half a checkpoint.

A checkpoint whose weights were left out (the repository keeps only state.json; the weights a run
publishes are its product) still resumes: from the published weights, with a fresh optimizer."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from tint.io.run_folder import replace_folder
from tint.io.storage import read_json_object, read_safetensors, write_json, write_safetensors


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    state = optimizer.state_dict()["state"]
    return {f"{i}.{k}": torch.as_tensor(v) for i, s in state.items() for k, v in s.items()}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]):
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = value
    groups = optimizer.state_dict()["param_groups"]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


class Checkpoint:
    """A folder holding <name>.safetensors per module, optimizer.safetensors and state.json."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self._scratch = self.dir.with_name(self.dir.name + ".partial")
        self._old = self.dir.with_name(self.dir.name + ".old")

    def state(self) -> dict | None:
        self._recover()
        path = self.dir / "state.json"
        return read_json_object(path, "checkpoint state") if path.is_file() else None

    def _recover(self) -> None:
        """Finish a save that a killed process left half done: the new checkpoint is whole once
        its state.json is written (last), so it wins; otherwise the previous one stands."""
        if not self.dir.exists():
            if (self._scratch / "state.json").is_file():
                self._scratch.rename(self.dir)
            elif self._old.is_dir():
                self._old.rename(self.dir)
        shutil.rmtree(self._old, ignore_errors=True)
        if self.dir.exists():
            shutil.rmtree(self._scratch, ignore_errors=True)

    def has_weights(self) -> bool:
        return (self.dir / "optimizer.safetensors").is_file()

    def save(self, state: dict, modules: dict[str, torch.nn.Module], optimizer) -> None:
        self._recover()
        scratch, old = self._scratch, self._old
        shutil.rmtree(scratch, ignore_errors=True)
        for name, module in modules.items():
            write_safetensors(scratch / f"{name}.safetensors", module.state_dict())
        write_safetensors(scratch / "optimizer.safetensors", _flatten_optimizer(optimizer))
        write_json(scratch / "state.json", state)  # last: the scratch copy is whole from here
        replace_folder(scratch, self.dir, old)

    def load_into(self, modules: dict[str, torch.nn.Module], optimizer) -> None:
        for name, module in modules.items():
            module.load_state_dict(read_safetensors(self.dir / f"{name}.safetensors"))
        _restore_optimizer(optimizer, read_safetensors(self.dir / "optimizer.safetensors"))
