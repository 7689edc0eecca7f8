"""`tint info`: the version, the device and the shipped default models."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tint.commands import Command, Options
from tint.commands.world import DEFAULT_MODEL, DEFAULT_TEACHER


@dataclass
class InfoSettings:
    pass


def run(settings: InfoSettings, options: Options) -> None:
    import torch

    from tint import __version__

    info = {
        "version": __version__,
        "torch": torch.__version__,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cpu_threads": torch.get_num_threads(),
        "default_model": str(DEFAULT_MODEL),
        "default_model_present": (DEFAULT_MODEL / "model_index.json").is_file(),
        "default_teacher": str(DEFAULT_TEACHER),
        "default_teacher_present": (DEFAULT_TEACHER / "config.json").is_file(),
    }
    if options.json:
        print(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        print(f"{key:<24} {value}")


COMMAND = Command(
    name="info",
    help="version, device and the shipped default models",
    description="The version, the device torch sees and where the shipped models are.",
    settings=InfoSettings,
    base=InfoSettings,
    run=run,
    options=("json",),
)
