"""`tint bench`: how fast TINT specialises and generates, and how far that is from the hardware.

One run measures the fast path (the default: every class's textual inversion in one batch,
every support's null-text inversion in one batch with per-support early stopping, generation in
large batches with the conditional and unconditional halves in one UNet call) and, with
`compare="reference"`, the reference way on the same inputs (batch 1, float32, classes trained
one after another, supports inverted one after another, images generated one at a time). Both
do the same work: the same textual-inversion steps and images per class per step, the same
inversions, the same images from the same seeds; only the way it is computed differs.

FLOPs are counted once per kind of call with torch's FLOP counter (a UNet forward of one sample,
a UNet forward and backward to the text conditioning, as both inversions make with the weights
frozen, and a VAE decode of one image) and multiplied by the samples the timed stages pushed
through."""

from __future__ import annotations

import dataclasses
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from tint import world
from tint.data import glyphs
from tint.data.images import resize
from tint.diffusion import ddim, null_text, textual_inversion
from tint.diffusion.memory import FittingBatch
from tint.diffusion.model import DiffusionModel
from tint.diffusion.sampler import blend_noise
from tint.errors import TintError
from tint.eval.model_quality import psnr


@dataclass
class BenchConfig:
    ways: int = 5  # classes of the task
    shots: int = 5  # supports per class
    steps: int = 25  # DDIM steps (inversion and sampling)
    guidance: float = 7.5
    ti_steps: int = 50  # textual-inversion steps per class, one image per class per step
    images: int = 64  # generated images timed
    batch: int = 64  # generation batch of the fast path (halved while it does not fit memory)
    device: str = "cpu"
    dtype: str = "float32"  # of the fast path's UNet and VAE
    channels_last: bool = False
    compile: bool = False  # torch.compile the UNet (fixed shapes)
    seed: int = 0


def sd15_model(device: str, dtype: str) -> DiffusionModel:
    """Stable Diffusion 1.5's UNet, VAE and text encoder, built from their public configurations
    with random weights: the real model's compute, nothing downloaded. The tokenizer is the glyph
    model's (any ids below 49408 serve), padded to 77 tokens as SD's."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from tint.diffusion.architectures import sd_scheduler
    from tint.diffusion.model import DTYPES, quiet_libraries, resolve_device

    quiet_libraries()

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=64,
        cross_attention_dim=768,
        block_out_channels=(320, 640, 1280, 1280),
        attention_head_dim=8,
        layers_per_block=2,
    )
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        latent_channels=4,
        sample_size=512,
        scaling_factor=0.18215,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=768,
            intermediate_size=3072,
            num_attention_heads=12,
            num_hidden_layers=12,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            projection_dim=768,
        )
    )
    tokenizer = CLIPTokenizer.from_pretrained(world.DEFAULT_MODEL / "tokenizer")
    tokenizer.model_max_length = 77
    scheduler = sd_scheduler()
    dev, dt = resolve_device(device), DTYPES[dtype]
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False).eval()
    unet.to(dev, dt)
    vae.to(dev, dt)
    text_encoder.to(dev)
    return DiffusionModel(
        path=Path("sd15-random"),
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        alphas_cumprod=scheduler.alphas_cumprod.to(dev, torch.float32),
        final_alpha_cumprod=float(scheduler.alphas_cumprod[0]),
        prediction_type="epsilon",
        device=dev,
        dtype=dt,
        fingerprint={"path": "sd15-random"},
    )


def load_bench_model(arch: str | None, model_dir, device: str, dtype: str) -> DiffusionModel:
    from tint.diffusion.model import resolve_device

    resolve_device(device)  # before building a large model for a device that is not there
    if arch == "sd15":
        return sd15_model(device, dtype)
    if arch not in (None, "tiny"):
        raise TintError(f"unknown --arch {arch!r} (choose from sd15, tiny)")
    return DiffusionModel.load(model_dir or world.DEFAULT_MODEL, device=device, dtype=dtype)


class _Counter:
    """Samples pushed through the UNet (forward only, or with a backward to come) and the VAE
    decoder while `counting` is on, counted by forward hooks."""

    def __init__(self, model: DiffusionModel):
        self.unet_forward = self.unet_trained = self.vae_decoded = 0
        self.on = False
        self.hooks = [
            model.unet.register_forward_hook(self._unet),
            model.vae.decoder.register_forward_pre_hook(self._decoder),
        ]

    @contextmanager
    def counting(self):
        self.on = True
        try:
            yield
        finally:
            self.on = False

    def _unet(self, module, args, output):
        if not self.on:
            return
        n = len(args[0])
        if torch.is_grad_enabled() and output.sample.requires_grad:
            self.unet_trained += n
        else:
            self.unet_forward += n

    def _decoder(self, module, args):
        if self.on:
            self.vae_decoded += len(args[0])

    def remove(self) -> None:
        for h in self.hooks:
            h.remove()


def _flops_per_sample(model: DiffusionModel) -> dict[str, float]:
    """FLOPs of one UNet forward (one sample, with a 77-or-fewer-token prompt), of one forward and
    backward to the prompt's embedding with the weights frozen (what both inversions do), and of
    one VAE decode, counted by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    side = model.native_resolution // model.vae_scale_factor
    z = torch.zeros(1, model.unet.config.in_channels, side, side, device=model.device)
    text = model.encode_text([""]).detach()
    counts = {}
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.predict_noise(z, 500, text)
    counts["unet"] = float(counter.get_total_flops())
    conditioning = text.clone().requires_grad_(True)
    with FlopCounterMode(display=False) as counter:
        model.predict_noise(z, 500, conditioning).sum().backward()
    counts["unet_trained"] = float(counter.get_total_flops())
    with FlopCounterMode(display=False) as counter:
        model.decode_latents(z)
    counts["vae_decode"] = float(counter.get_total_flops())
    return counts


def _synchronize(model: DiffusionModel) -> None:
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)


def _peak_memory_mb(model: DiffusionModel) -> float:
    if model.device.type == "cuda":
        return torch.cuda.max_memory_allocated(model.device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@contextmanager
def _timed(model: DiffusionModel, record: dict, key: str):
    _synchronize(model)
    start = time.perf_counter()
    yield
    _synchronize(model)
    record[key] = time.perf_counter() - start


def _task(config: BenchConfig, size: int) -> list[torch.Tensor]:
    """The task's supports: the first `shots` benchmark instances of `ways` novel glyph
    classes, upsampled to the model's resolution (as TINT does with small inputs)."""
    novel = glyphs.split("novel")
    if config.ways > len(novel):
        raise TintError(f"--ways {config.ways}: the glyph world has {len(novel)} novel classes")
    return [
        resize(glyphs.benchmark_instances(g, config.shots), (size, size))
        for g in novel[: config.ways]
    ]


def run_path(model: DiffusionModel, config: BenchConfig, reference: bool, progress: bool) -> dict:
    """Specialise to the task and generate `config.images` images, the fast way or the
    reference way. Returns timings, sample counts and the outputs compared between the two."""
    supports = _task(config, model.native_resolution)
    latents = [model.encode_images(x) for x in supports]
    tokens = [f"<bench-{i}>" for i in range(config.ways)]
    ti = textual_inversion.TextualInversionConfig(steps=config.ti_steps, batch=1)
    nt = null_text.NullTextConfig(guidance=config.guidance)
    times: dict[str, float] = {}
    counter = _Counter(model)
    try:
        with _timed(model, times, "textual_inversion"), counter.counting():
            if reference:
                embeddings = torch.cat(
                    [
                        textual_inversion.train(model, [t], [z], ti, config.seed, progress=False)
                        for t, z in zip(tokens, latents)
                    ]
                )
            else:
                embeddings = textual_inversion.train(
                    model, tokens, latents, ti, config.seed, progress
                )
        textual_inversion.set_embeddings(model, tokens, embeddings)
        z0 = torch.cat(latents)
        with torch.no_grad():
            cond = model.encode_text([ti.template.format(t) for t in tokens])
        cond = cond.repeat_interleave(config.shots, 0)
        with _timed(model, times, "null_text_inversion"), counter.counting():
            if reference:
                parts = [
                    null_text.invert(model, z0[i : i + 1], cond[i : i + 1], config.steps, nt, False)
                    for i in range(len(z0))
                ]
                zT = torch.cat([p.latents_T for p in parts])
                nulls = torch.cat([p.null_embeddings for p in parts], 1)
            else:
                inverted = null_text.invert(model, z0, cond, config.steps, nt, progress)
                zT, nulls = inverted.latents_T, inverted.null_embeddings
        with torch.no_grad():
            recon = model.decode_latents(
                ddim.sample(model, zT, cond, nulls, config.steps, config.guidance)
            )
        g = torch.Generator().manual_seed(config.seed)
        which = torch.randint(len(z0), (config.images,), generator=g)
        noise = torch.randn((config.images, *z0.shape[1:]), generator=g)
        with _timed(model, times, "generation"), counter.counting(), torch.no_grad():

            def generate(part: slice) -> torch.Tensor:
                pick = which[part]
                z = blend_noise(zT[pick], noise[part].to(zT), torch.full((len(pick),), 0.5))
                z = ddim.sample(model, z, cond[pick], nulls[:, pick], config.steps, config.guidance)
                return model.decode_latents(z).cpu()

            fitting = FittingBatch(1 if reference else config.batch, "generation")
            images = [x for _, x in fitting.slices(config.images, generate)]
    finally:
        counter.remove()
    return {
        "seconds": times,
        "samples": {
            "unet_forward": counter.unet_forward,
            "unet_trained": counter.unet_trained,
            "vae_decoded": counter.vae_decoded,
        },
        "reconstruction_psnr": psnr(recon.cpu(), torch.cat(supports)),
        "images": torch.cat(images),
        "peak_memory_mb": _peak_memory_mb(model),
    }


@contextmanager
def _fast_settings(model: DiffusionModel, config: BenchConfig):
    """Channels-last and torch.compile for the fast path only: the reference way that follows
    runs the model as loaded."""
    import torch._inductor.config

    unet, graphs = model.unet, torch._dynamo.config.cache_size_limit
    freezing = torch._inductor.config.freezing
    if config.channels_last:
        unet.to(memory_format=torch.channels_last)
        model.vae.to(memory_format=torch.channels_last)
    if config.compile:
        # One graph per shape and grad mode; past the limit torch would fall back to eager.
        torch._dynamo.config.cache_size_limit = max(graphs, 64)
        # Graphs compiled without gradients (generation) take the frozen UNet's weights as
        # constants: folded and packed for the CPU's kernels once. Graphs with gradients (the
        # inversions) are not frozen; the weights stay frozen in TINT either way.
        torch._inductor.config.freezing = True
        model.unet = torch.compile(unet, dynamic=False)
    try:
        yield
    finally:
        model.unet = unet
        torch._dynamo.config.cache_size_limit = graphs
        torch._inductor.config.freezing = freezing
        if config.channels_last:
            unet.to(memory_format=torch.contiguous_format)
            model.vae.to(memory_format=torch.contiguous_format)


def bench(
    model: DiffusionModel,
    config: BenchConfig,
    compare: str | None = None,
    reference_model: DiffusionModel | None = None,
    progress: bool = True,
) -> dict:
    """The figures of `tint bench` as one JSON-ready dict (see the module doc)."""
    if compare not in (None, "reference"):
        raise TintError(f"unknown --compare {compare!r} (choose from reference)")
    flops = _flops_per_sample(model)
    warmup: dict[str, float] = {}
    with _fast_settings(model, config):
        if config.compile:
            # The first pass compiles a graph for every shape the fast path uses; it is timed
            # apart, and the figures come from the second, compiled pass.
            with _timed(model, warmup, "compile"):
                run_path(model, config, reference=False, progress=progress)
        fast = run_path(model, config, reference=False, progress=progress)
    specialization = fast["seconds"]["textual_inversion"] + fast["seconds"]["null_text_inversion"]
    total_flops = (
        flops["unet"] * fast["samples"]["unet_forward"]
        + flops["unet_trained"] * fast["samples"]["unet_trained"]
        + flops["vae_decode"] * fast["samples"]["vae_decoded"]
    )
    seconds = sum(fast["seconds"].values())
    result = {
        "device": _device_name(model),
        "dtype": config.dtype,
        "config": dataclasses.asdict(config),
        "seconds": {k: round(v, 3) for k, v in fast["seconds"].items()},
        "specialization_s": round(specialization, 3),
        "images_per_s": config.images / fast["seconds"]["generation"],
        "peak_memory_mb": round(fast["peak_memory_mb"], 1),
        "tflops": total_flops / seconds / 1e12,
        "flops_per_sample": flops,
        "samples": fast["samples"],
        "reconstruction_psnr": fast["reconstruction_psnr"],
    }
    if config.compile:
        result["compile_s"] = round(warmup["compile"], 3)
    if compare == "reference":
        ref_model = reference_model or model
        ref = run_path(
            ref_model, dataclasses.replace(config, batch=1), reference=True, progress=progress
        )
        ref_special = ref["seconds"]["textual_inversion"] + ref["seconds"]["null_text_inversion"]
        result["reference"] = {
            "seconds": {k: round(v, 3) for k, v in ref["seconds"].items()},
            "specialization_s": round(ref_special, 3),
            "images_per_s": config.images / ref["seconds"]["generation"],
            "reconstruction_psnr": ref["reconstruction_psnr"],
            "samples": ref["samples"],
        }
        result["speedup"] = {
            "specialization": ref_special / specialization,
            "textual_inversion": ref["seconds"]["textual_inversion"]
            / fast["seconds"]["textual_inversion"],
            "null_text_inversion": ref["seconds"]["null_text_inversion"]
            / fast["seconds"]["null_text_inversion"],
            "generation": ref["seconds"]["generation"] / fast["seconds"]["generation"],
        }
        result["psnr_drop_db"] = ref["reconstruction_psnr"] - fast["reconstruction_psnr"]
        result["generated_mean_abs_difference"] = float(
            (ref["images"] - fast["images"]).abs().mean()
        )
    return result


def _device_name(model: DiffusionModel) -> str:
    if model.device.type == "cuda":
        return torch.cuda.get_device_name(model.device)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
