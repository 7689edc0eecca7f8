"""Loading a Stable-Diffusion-format model directory and the few operations TINT needs from it."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tint.diffusion.memory import FittingBatch
from tint.errors import TintError
from tint.io.pretrained import loading, model_folder

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# Each component folder and the file that shows it is there.
COMPONENTS = {
    "unet": "config.json",
    "vae": "config.json",
    "text_encoder": "config.json",
    "tokenizer": "tokenizer_config.json",
    "scheduler": "scheduler_config.json",
}


# What --model and --model-config take, in every command that has them.
MODEL_HELP = (
    "Stable Diffusion model: a diffusers-layout folder, a hub id in the local Hugging Face "
    "cache, or a single-file checkpoint (.safetensors, .ckpt) (default: the shipped one)"
)
MODEL_CONFIG_HELP = (
    "a single-file --model's configuration: a diffusers-layout folder or hub id in the local "
    "cache (default: the one diffusers infers from the file, looked for in the cache)"
)


def check_model_dir(path: str | Path, config: str | Path | None = None) -> Path:
    """The folder of a diffusers-layout SD model named by its path or hub id (in the local
    Hugging Face cache), or of a single-file checkpoint with its configuration `config`
    (converted once, `tint.diffusion.single_file`); a TintError naming what is missing if it is
    not one."""
    from tint.diffusion.single_file import SUFFIXES, is_single_file, model_from_file

    if Path(path).suffix.lower() in SUFFIXES and not Path(path).expanduser().exists():
        raise TintError(f"{path}: no such single-file checkpoint")
    if is_single_file(path):
        path = model_from_file(path, config)
    elif config is not None:
        raise TintError(f"--model-config is for a single-file --model, and {path} is not one")
    path = model_folder(path, "model directory")
    if not (path / "model_index.json").is_file():
        raise TintError(
            f"{path}: not a Stable Diffusion model directory (missing model_index.json)"
        )
    missing = [f"{d}/{f}" for d, f in COMPONENTS.items() if not (path / d / f).is_file()]
    if missing:
        raise TintError(
            f"{path}: not a Stable Diffusion model directory (missing {', '.join(missing)})"
        )
    return path


def resolve_device(device: str) -> torch.device:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TintError(f"--device {device}: CUDA is not available on this machine")
    if device != "cpu" and not device.startswith("cuda"):
        raise TintError(f"--device {device}: expected cpu or cuda")
    return torch.device(device)


@dataclass
class DiffusionModel:
    """A loaded SD-format model. UNet and VAE run in `dtype`; the text encoder stays in float32
    because textual inversion trains its input embeddings."""

    path: Path
    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    alphas_cumprod: torch.Tensor  # (T,) float32 on device
    final_alpha_cumprod: float  # alpha-bar used one step past t = 0 (DDIM's "set_alpha_to_one")
    prediction_type: str  # "epsilon" or "v_prediction"
    device: torch.device
    dtype: torch.dtype
    fingerprint: dict = field(default_factory=dict)
    # VAE decoding runs in slices that fit: no limit until one runs out of accelerator memory.
    decoding: FittingBatch = field(
        default_factory=lambda: FittingBatch(sys.maxsize, "VAE decoding"), repr=False
    )

    @classmethod
    def load(
        cls, path: str | Path, device: str = "cpu", dtype: str | torch.dtype = "float32"
    ) -> DiffusionModel:
        """Load a local diffusers-layout directory, offline."""
        from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        path = check_model_dir(path)
        dev = resolve_device(device)
        dt = DTYPES[dtype] if isinstance(dtype, str) else dtype
        with loading(path, "model"):
            kw = {"local_files_only": True}
            unet = UNet2DConditionModel.from_pretrained(path / "unet", **kw)
            vae = AutoencoderKL.from_pretrained(path / "vae", **kw)
            text_encoder = CLIPTextModel.from_pretrained(path / "text_encoder", **kw)
            tokenizer = CLIPTokenizer.from_pretrained(path / "tokenizer", **kw)
            scheduler = DDIMScheduler.from_pretrained(path / "scheduler", **kw)
        for module in (unet, vae, text_encoder):
            module.requires_grad_(False).eval()
        unet.to(dev, dt)
        vae.to(dev, dt)
        text_encoder.to(dev, torch.float32)
        alphas = scheduler.alphas_cumprod.to(dev, torch.float32)
        final = 1.0 if scheduler.config.set_alpha_to_one else float(scheduler.alphas_cumprod[0])
        config_files = [path / d / f for d, f in COMPONENTS.items() if d != "tokenizer"]
        fingerprint = {
            "path": str(path.resolve()),
            "configs": {p.parent.name: json.loads(p.read_text()) for p in config_files},
        }
        return cls(
            path=path,
            unet=unet,
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            alphas_cumprod=alphas,
            final_alpha_cumprod=final,
            prediction_type=scheduler.config.prediction_type,
            device=dev,
            dtype=dt,
            fingerprint=fingerprint,
        )

    @property
    def num_train_timesteps(self) -> int:
        return int(self.alphas_cumprod.shape[0])

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def native_resolution(self) -> int:
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    def check_resolution(self, size: tuple[int, int]) -> None:
        f = self.vae_scale_factor
        if size[0] % f or size[1] % f or min(size) < f:
            raise TintError(
                f"resolution {size[0]}x{size[1]} is not a positive multiple of {f}, "
                "the model's VAE downsampling factor"
            )

    @torch.no_grad()
    def encode_images(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, C, H/f, W/f) scaled latents (the posterior mean)."""
        x = (x.to(self.device, self.dtype) * 2 - 1).contiguous()
        latents = self.vae.encode(x).latent_dist.mean
        return latents.float() * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> (B, 3, H, W) images in [0, 1], float32. Decoded in slices that fit
        the accelerator's memory apart from the UNet's batch: at 512 px the VAE decoder needs
        more memory per image than a guided UNet step, and a batch that ran out of memory only
        here would otherwise be sampled again at half size."""
        z = (z / self.vae.config.scaling_factor).to(self.device, self.dtype)
        parts = self.decoding.slices(len(z), lambda p: self.vae.decode(z[p]).sample.float())
        return ((torch.cat([x for _, x in parts]) + 1) / 2).clamp(0, 1)

    def tokenize(self, prompts: list[str]) -> torch.Tensor:
        ids = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        return ids.to(self.device)

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """Prompts -> (B, L, D) float32 conditioning (gradients flow if enabled)."""
        return self.text_encoder(self.tokenize(prompts))[0]

    def predict_noise(self, z: torch.Tensor, t: torch.Tensor | int, text: torch.Tensor):
        """The UNet's noise estimate eps(z, t, text), float32, whatever the prediction type."""
        t = torch.as_tensor(t, device=self.device)
        out = self.unet(z.to(self.dtype), t, encoder_hidden_states=text.to(self.dtype)).sample
        out = out.float()
        if self.prediction_type == "v_prediction":
            a = self.alphas_cumprod[t].reshape(-1, *[1] * (z.dim() - 1))
            out = a.sqrt() * out + (1 - a).sqrt() * z.float()
        return out

    def training_target(self, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor):
        """What the UNet is trained to output for noisy latents made from z0, noise at t."""
        if self.prediction_type == "v_prediction":
            a = self.alphas_cumprod[t].reshape(-1, *[1] * (z0.dim() - 1))
            return a.sqrt() * noise - (1 - a).sqrt() * z0
        return noise

    def add_noise(self, z0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor):
        a = self.alphas_cumprod[t].reshape(-1, *[1] * (z0.dim() - 1))
        return a.sqrt() * z0 + (1 - a).sqrt() * noise
