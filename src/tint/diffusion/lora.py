"""LoRA: a stronger specialisation than TINT's token, to compare it with (the `lora` generator).
Low-rank adapters on the UNet's attention projections (peft, through diffusers' adapter
support) are trained with the denoising loss on the supports of the classes rendered together,
each under its class's prompt with the token textual inversion learnt; images are then drawn
from fresh noise with that prompt, as textual inversion's are, through the adapted UNet.

    <specialization>/lora-<classes>/adapter.safetensors   the adapters' weights
    <specialization>/lora-<classes>/lora.json             what made them: reused only if equal

The model given is never changed: the adapters go on a copy of its UNet."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from tint.config import setting
from tint.data.images import LabelledImage
from tint.diffusion.model import DiffusionModel
from tint.diffusion.specialization import Specialization
from tint.diffusion.textual_inversion import fit
from tint.errors import TintError
from tint.io import seeds
from tint.io.hardware import autocast
from tint.io.stages import stage
from tint.io.storage import read_json_object, read_safetensors, write_json, write_safetensors

TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # the attention projections of every block
WEIGHTS, SETTINGS = "adapter.safetensors", "lora.json"


@dataclass
class LoraConfig:
    rank: int = setting(4, "rank of the UNet's adapters (LoRA)", minimum=1)
    steps: int = setting(
        200,
        "the adapters' optimisation steps (classes rendered together advance together)",
        minimum=1,
    )
    lr: float = setting(1e-3, "the adapters' AdamW learning rate, constant", above=0)
    batch: int = setting(4, "the adapters' images per class per step", minimum=1)


def _peft():
    try:
        from peft import LoraConfig as PeftConfig
        from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
    except ImportError as error:
        raise TintError(
            "the lora generator needs peft: pip install 'tint[lora]' (or pip install peft)"
        ) from error
    return PeftConfig, get_peft_model_state_dict, set_peft_model_state_dict


def with_adapters(model: DiffusionModel, config: LoraConfig, seed: int) -> DiffusionModel:
    """`model` with a copy of its UNet carrying fresh adapters (the up-projections zero, so it
    starts as the UNet it copies; the down-projections drawn from `seed`), float32 to train."""
    PeftConfig, _, _ = _peft()
    unet = copy.deepcopy(model.unet)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet.add_adapter(
            PeftConfig(r=config.rank, lora_alpha=config.rank, target_modules=list(TARGETS))
        )
    for name, parameter in unet.named_parameters():
        if "lora_" in name:
            parameter.data = parameter.data.float()
    return dataclasses.replace(model, unet=unet)


def adapters(model: DiffusionModel) -> list[torch.nn.Parameter]:
    return [p for name, p in model.unet.named_parameters() if "lora_" in name]


def specialized(
    directory: str | Path,
    model: DiffusionModel,
    classes: dict[str, list[LabelledImage]],
    specs: dict[str, Specialization],
    latents,
    config,
    *,
    resume: bool = False,
    progress: bool = True,
) -> DiffusionModel:
    """`model` with adapters for `classes` (whose tokens, in `specs`, are installed in it),
    trained on their support latents (`latents()` gives them, only if training is needed) and
    saved under `directory`, or, with `resume`, the ones saved there with the same settings.
    `config` is the generation settings (`tint.diffusion.generation.GenerateConfig`)."""
    from tint.diffusion.generation import arithmetic

    _, state_of, load_state = _peft()
    names = list(classes)
    folder = Path(directory) / f"lora-{seeds.seed_of(*names, width=4):08x}"
    settings = {
        "classes": {n: specs[n].token_embedding.settings for n in names},
        "lora": dataclasses.asdict(config.lora),
        "targets": list(TARGETS),
        "precision": arithmetic(model, config, stage="inversion"),
    }
    adapted = with_adapters(model, config.lora, seeds.seed_of(config.seed, "lora", *names))
    saved = folder / SETTINGS
    if (
        resume
        and saved.is_file()
        and read_json_object(saved, "LoRA file").get("settings") == settings
    ):
        load_state(adapted.unet, read_safetensors(folder / WEIGHTS))
        return adapted
    support_latents = latents()
    prompts = model.tokenize([specs[n].token_embedding.prompt for n in names])
    generators = [
        seeds.generator(config.seed, "lora", specs[n].token_embedding.token) for n in names
    ]
    optimizer = torch.optim.AdamW(adapters(adapted), lr=config.lora.lr)
    lora = config.lora
    with stage("lora"), autocast(model.device, settings["precision"]):
        fit(
            adapted,
            prompts,
            [support_latents[n] for n in names],
            generators,
            optimizer,
            lora.steps,
            lora.batch,
            0,
            "LoRA",
            progress,
        )
    if not all(torch.isfinite(p).all() for p in adapters(adapted)):
        raise TintError("LoRA training diverged (a non-finite weight): lower --lora-lr")
    weights = {k: v.detach().cpu().contiguous() for k, v in state_of(adapted.unet).items()}
    write_safetensors(folder / WEIGHTS, weights)
    write_json(folder / SETTINGS, {"classes": names, "settings": settings})  # last: complete
    return adapted
