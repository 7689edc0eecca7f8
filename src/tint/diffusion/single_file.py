"""Single-file checkpoints: a whole Stable Diffusion model in one `.safetensors` (or `.ckpt`)
file in the original (LDM) layout, as most people keep them.

    model_from_file(FILE, config)   the file as a diffusers-layout folder, made once and kept in
                                    the user's cache; every later run finds it there
    write_single_file(FOLDER, FILE) the inverse: a diffusers-layout model as one LDM-layout file

Reading goes through diffusers' single-file loading, with a configuration that is a local
diffusers-layout folder (or a hub id in the local cache): nothing is downloaded. Without one,
the configuration diffusers infers from the file's keys (Stable Diffusion 1.5's for an SD 1.x
file) is looked for in the Hugging Face cache. Writing exists so that the tests (and anyone
with a diffusers folder) can make a single file of a model: its UNet, VAE and text encoder keys
are renamed the way diffusers' reading renames them back."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import torch

from tint.errors import TintError
from tint.io.pretrained import hub_cache, loading, model_folder, user_cache
from tint.io.storage import read_safetensors, write_safetensors

SUFFIXES = (".safetensors", ".ckpt")
UNET, VAE, TEXT = "model.diffusion_model.", "first_stage_model.", "cond_stage_model.transformer."
RESNET = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)
VAE_ATTENTION = (
    ("group_norm", "norm"),
    ("to_q", "q"),
    ("to_k", "k"),
    ("to_v", "v"),
    ("to_out.0", "proj_out"),
)


def is_single_file(path: str | Path) -> bool:
    path = Path(path).expanduser()
    return path.suffix.lower() in SUFFIXES and path.is_file()


def model_from_file(path: str | Path, config: str | Path | None = None) -> Path:
    """The diffusers-layout folder of the single-file model at `path`, converted at the first
    call and kept in the cache (keyed by the file's size, time and name, and the
    configuration)."""
    path = Path(path).expanduser().resolve()
    stat = path.stat()
    configured = str(model_folder(config, "model configuration")) if config else _inferred(path)
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{configured}"
    folder = (
        user_cache()
        / "tint"
        / "single-file"
        / f"{path.stem}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    )
    if (folder / "model_index.json").is_file():
        return folder
    from diffusers import StableDiffusionPipeline

    with loading(path, "single-file model"):
        pipeline = StableDiffusionPipeline.from_single_file(
            str(path),
            config=configured,
            local_files_only=True,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            pipeline.save_pretrained(tmp, safe_serialization=True)
            os.replace(tmp, folder)  # whole or not at all
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _inferred(path: Path) -> str:
    """The folder of the configuration diffusers infers for the file, from the local cache."""
    from diffusers.loaders.single_file_utils import fetch_diffusers_config

    with loading(path, "single-file model"):
        checkpoint = _read(path)
        repo = fetch_diffusers_config(checkpoint)["pretrained_model_name_or_path"]
    try:
        return str(model_folder(repo, "model configuration"))
    except TintError:
        raise TintError(
            f"{path}: a single-file model needs its configuration, here {repo}'s, which is not "
            f"in the Hugging Face cache ({hub_cache()}): download it there (huggingface-cli "
            f"download {repo} --exclude '*.safetensors' '*.bin' '*.ckpt') or give a "
            "diffusers-layout folder of it with --model-config"
        ) from None


def _read(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix.lower() == ".safetensors":
        return read_safetensors(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state)


def write_single_file(folder: str | Path, out: str | Path) -> None:
    """The diffusers-layout model in `folder` as one LDM-layout safetensors file at `out`."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    folder = Path(folder)
    unet = UNet2DConditionModel.from_pretrained(folder / "unet", local_files_only=True)
    vae = AutoencoderKL.from_pretrained(folder / "vae", local_files_only=True)
    text = CLIPTextModel.from_pretrained(folder / "text_encoder", local_files_only=True)
    tensors = {UNET + _unet_key(k, unet.config): v for k, v in unet.state_dict().items()}
    for key, value in vae.state_dict().items():
        name = _vae_key(key, len(vae.config.up_block_types))
        attention = ".attn_1." in name and value.dim() == 2
        tensors[VAE + name] = value[:, :, None, None] if attention else value
    # as the original files name them (newer transformers leave "text_model." out)
    for key, value in text.state_dict().items():
        tensors[TEXT + ("" if key.startswith("text_model.") else "text_model.") + key] = value
    write_safetensors(out, tensors)


def _unet_key(key: str, config) -> str:
    """A diffusers UNet key as the LDM UNet names it."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"]
    if key in fixed:
        return fixed[key]
    per = config.layers_per_block + 1  # LDM blocks per diffusers block (with its sampler)
    parts = key.split(".")
    if parts[0] == "down_blocks":
        block, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), parts[4:]
        if kind == "downsamplers":  # down_blocks.B.downsamplers.0.conv.X
            return ".".join([f"input_blocks.{(block + 1) * per}.0.op", *rest[1:]])
        slot = 0 if kind == "resnets" else 1
        return _resnet(f"input_blocks.{block * per + index + 1}.{slot}", rest, kind)
    if parts[0] == "mid_block":
        kind, index, rest = parts[1], int(parts[2]), parts[3:]
        return _resnet(f"middle_block.{2 * index if kind == 'resnets' else 1}", rest, kind)
    if parts[0] == "up_blocks":
        block, kind, index, rest = int(parts[1]), parts[2], int(parts[3]), parts[4:]
        if kind == "upsamplers":  # after the block's last layer, and its attention if it has one
            slot = 2 if "CrossAttn" in config.up_block_types[block] else 1
            return ".".join([f"output_blocks.{block * per + per - 1}.{slot}", *rest])
        slot = 0 if kind == "resnets" else 1
        return _resnet(f"output_blocks.{block * per + index}.{slot}", rest, kind)
    raise TintError(f"a UNet key with no LDM name: {key}")


def _resnet(prefix: str, rest: list[str], kind: str) -> str:
    name = ".".join(rest)
    return f"{prefix}.{_renamed(name, RESNET) if kind == 'resnets' else name}"


def _renamed(name: str, table) -> str:
    """`name` with its first part renamed by the (diffusers, LDM) pairs of `table`."""
    for diffusers, ldm in table:
        if name.startswith(diffusers + "."):
            return ldm + name[len(diffusers) :]
    return name


def _vae_key(key: str, blocks: int) -> str:
    """A diffusers VAE key as the LDM autoencoder names it."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = DIFFUSERS_TO_LDM_MAPPING["vae"]
    if key in fixed:
        return fixed[key]
    side, rest = key.split(".", 1)
    parts = rest.split(".")
    if parts[0] in ("down_blocks", "up_blocks"):
        block = int(parts[1]) if side == "encoder" else blocks - 1 - int(parts[1])
        level = f"{'down' if side == 'encoder' else 'up'}.{block}"
        if parts[2] in ("downsamplers", "upsamplers"):  # X_blocks.B.Xsamplers.0.conv.W
            sampler = "downsample" if side == "encoder" else "upsample"
            return ".".join([side, level, sampler, *parts[4:]])
        name = ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut")
        return f"{side}.{level}.block.{parts[3]}.{name}"
    if parts[0] == "mid_block":
        name = ".".join(parts[3:])
        if parts[1] == "resnets":
            name = name.replace("conv_shortcut", "nin_shortcut")
            return f"{side}.mid.block_{int(parts[2]) + 1}.{name}"
        return f"{side}.mid.attn_1.{_renamed(name, VAE_ATTENTION)}"
    raise TintError(f"a VAE key with no LDM name: {key}")
