"""`tint speed`: how fast TINT specialises and generates, and how far that is from the hardware.

One run times the functions `tint generate` runs (`tint.diffusion.generation`: `learn_tokens`,
`invert_supports`, `render`) the fast way (the default: every class's textual inversion in one
batch, every support's null-text inversion in one batch with per-support early stopping,
generation in large batches with the conditional and unconditional halves in one UNet call)
and, with `compare="reference"`, the reference way on the same inputs (`reference=True`: classes
trained one after another, supports inverted one after another, images generated one at a time,
on a float32 model). Both do the same work: the same textual-inversion steps and images per
class per step, the same inversions, the same images from the same seeds; only the way it is
computed differs.

FLOPs are counted once per kind of call with torch's FLOP counter (a UNet forward of one sample,
a UNet forward and backward to the text conditioning, as both inversions make with the weights
frozen, and a VAE decode of one image) and multiplied by the samples the timed stages pushed
through.

The distillation that follows generation is timed too, on the fast way's images, by the pipeline
`tint distill` and the benchmark run: the shipped teacher specialised to the task labels them
and a student learns from them for `distill.steps` steps, with the teacher's labels and the
student's training timed apart (on the CPU, where tint distils)."""

from __future__ import annotations

import dataclasses
import resource
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from tint.config import SettingError, group, setting
from tint.data import glyphs
from tint.data.images import LabelledImage, to_image, to_tensor
from tint.data.tasks import Task
from tint.diffusion.generation import (
    DRAWN_PER_IMAGE,
    GenerateConfig,
    arithmetic,
    class_tokens,
    encode_supports,
    invert_supports,
    learn_tokens,
    plan_images,
    reconstruct,
    render,
    working_size,
)
from tint.diffusion.memory import FittingBatch
from tint.diffusion.model import DTYPES, DiffusionModel, resolve_device
from tint.diffusion.textual_inversion import TextualInversionConfig
from tint.eval.model_quality import psnr
from tint.io.hardware import float32_matmul_peak
from tint.io.pretrained import quiet_libraries
from tint.io.stages import recording
from tint.models.teachers import load_backbone
from tint.pipeline.recipe import RecipeSettings, parse_recipe
from tint.pipeline.students import Pipeline
from tint.sources.source import uint8
from tint.train.distill import DistillConfig


@dataclass
class SpeedConfig:
    ways: int = setting(5, "classes of the task", minimum=1)
    shots: int = setting(5, "supports per class", minimum=1)
    images: int = setting(64, "images generated and timed, over the classes", minimum=1)
    generation: GenerateConfig = group(
        GenerateConfig,
        "the work timed (ti.batch images per class per textual-inversion step)",
        prefix="",
        factory=lambda: GenerateConfig(batch=64, ti=TextualInversionConfig(steps=50, batch=1)),
        exclude=(
            *("num", "generator", "alpha", "resolution", "upscale", "upscale_steps"),
            *DRAWN_PER_IMAGE,
        ),
    )
    device: str = setting("cpu", "cpu or cuda")
    dtype: str = setting("float32", "of the fast way's UNet and VAE", choices=tuple(DTYPES))
    channels_last: bool = setting(False, "channels-last memory format, on the fast way")
    distill: DistillConfig = group(
        DistillConfig,
        "the distillation timed on the generated images",
        factory=lambda: DistillConfig(steps=100),
        exclude=("seed", "ema_decay", "checkpoint_every"),
    )
    compile: bool = setting(
        False,
        "torch.compile the fast way's UNet, generation graphs frozen (a first, compiling pass "
        "is timed apart)",
    )


def sd15_model(device: str, dtype: str, tokenizer: str | Path) -> DiffusionModel:
    """Stable Diffusion 1.5's UNet, VAE and text encoder, built from their public configurations
    with random weights: the real model's compute, nothing downloaded. The tokenizer is any
    CLIP tokenizer folder's (ids below 49408 serve), padded to 77 tokens as SD's."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from tint.diffusion.architectures import sd_scheduler

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
    tokenizer = CLIPTokenizer.from_pretrained(tokenizer)
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


def load_speed_model(arch: str, model_dir: str | Path, device: str, dtype: str) -> DiffusionModel:
    """`arch` "sd15" (see `sd15_model`; `model_dir` lends its tokenizer), or the model in
    `model_dir`."""
    resolve_device(device)  # before building a large model for a device that is not there
    if arch == "sd15":
        return sd15_model(device, dtype, Path(model_dir) / "tokenizer")
    return DiffusionModel.load(model_dir, device=device, dtype=dtype)


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


def _task(config: SpeedConfig) -> dict[str, list[LabelledImage]]:
    """The task's supports: the first `shots` benchmark instances of `ways` novel glyph
    classes (TINT upsamples them to the model's resolution)."""
    novel = glyphs.split("novel")
    if config.ways > len(novel):
        raise SettingError("ways", f"the glyph world has {len(novel)} novel classes")
    return {
        g.name: [
            LabelledImage(Path(f"{g.name}/{k}.png"), to_image(x))
            for k, x in enumerate(glyphs.benchmark_instances(g, config.shots))
        ]
        for g in novel[: config.ways]
    }


def time_distillation(
    teacher_dir: str | Path,
    supports: dict[str, list[LabelledImage]],
    images: torch.Tensor,
    config: DistillConfig,
    *,
    progress: bool,
) -> dict:
    """The pipeline's student of `tint@scratch` on `images` (N, 3, H, W) in [0, 1] as the task's
    TINT images: the teacher in `teacher_dir`, specialised to the supports, labels them while a
    conv4 student learns from them and the supports for `config.steps` steps. Returns the
    seconds of the teacher's labels and of the rest of the distillation."""
    backbone = load_backbone(teacher_dir)
    pipeline = Pipeline(RecipeSettings(distill=config), backbone, progress=progress)
    with tempfile.TemporaryDirectory() as folder:
        work = pipeline.on(Task(list(supports), supports), folder)
        work.use_images("tint", uint8(images, backbone.input_size))
        work.teacher()
        with recording() as seconds:
            work.student(parse_recipe("tint@scratch"))
    return {
        "teacher_labels": seconds["teacher_labels"],
        "distillation": seconds["distillation"],
    }


def run_path(
    model: DiffusionModel, config: SpeedConfig, *, reference: bool, progress: bool
) -> dict:
    """Specialise to the task and generate `config.images` images, the fast way or the
    reference way. Returns timings, sample counts and the outputs compared between the two."""
    classes = _task(config)
    generation = dataclasses.replace(
        config.generation, num=-(-config.images // config.ways), alpha=0.5
    )
    size = working_size(model, generation)
    latents = {n: encode_supports(model, images, size, generation) for n, images in classes.items()}
    tokens = class_tokens(model, classes)
    times: dict[str, float] = {}
    counter = _Counter(model)
    try:
        with _timed(model, times, "textual_inversion"), counter.counting():
            embeddings = learn_tokens(
                model, classes, tokens, generation, latents, reference=reference, progress=progress
            )
        with _timed(model, times, "null_text_inversion"), counter.counting():
            specs = invert_supports(
                model,
                classes,
                embeddings,
                generation,
                latents,
                reference=reference,
                progress=progress,
            )
        recon = torch.cat([reconstruct(model, specs[n], generation).cpu() for n in classes])
        supports = torch.cat(
            [to_tensor(im.image, size)[None] for ims in classes.values() for im in ims]
        )
        entries = plan_images(specs, generation)[: config.images]
        before = counter.unet_forward, counter.vae_decoded
        with _timed(model, times, "generation"), counter.counting():
            fitting = FittingBatch(1 if reference else generation.batch, "generation")
            images = [
                image
                for _, part in fitting.slices(
                    len(entries),
                    lambda p: render(model, specs, entries[p], generation, reference=reference),
                )
                for image in part
            ]
    finally:
        counter.remove()
    return {
        "seconds": times,
        "samples": {
            "unet_forward": counter.unet_forward,
            "unet_trained": counter.unet_trained,
            "vae_decoded": counter.vae_decoded,
        },
        "generation_samples": {
            "unet_forward": counter.unet_forward - before[0],
            "vae_decoded": counter.vae_decoded - before[1],
        },
        "reconstruction_psnr": psnr(recon, supports),
        "images": torch.stack([to_tensor(im, (im.size[1], im.size[0])) for im in images]),
        "peak_memory_mb": _peak_memory_mb(model),
    }


@contextmanager
def _fast_settings(model: DiffusionModel, config: SpeedConfig):
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


def measure_speed(
    model: DiffusionModel,
    config: SpeedConfig,
    teacher_dir: str | Path,
    compare: str | None = None,
    reference_model: DiffusionModel | None = None,
    *,
    progress: bool = True,
) -> dict:
    """The figures of `tint speed` as one JSON-ready dict (see the module doc); `teacher_dir`
    holds the teacher whose labels the timed distillation uses."""
    if compare not in (None, "reference"):
        raise SettingError("compare", f"must be reference, got {compare!r}")
    flops = _flops_per_sample(model)
    warmup: dict[str, float] = {}
    with _fast_settings(model, config):
        if config.compile:
            # The first pass compiles a graph for every shape the fast path uses; it is timed
            # apart, and the figures come from the second, compiled pass.
            with _timed(model, warmup, "compile"):
                run_path(model, config, reference=False, progress=progress)
        fast = run_path(model, config, reference=False, progress=progress)
    distilled = time_distillation(
        teacher_dir, _task(config), fast["images"], config.distill, progress=progress
    )
    specialization = fast["seconds"]["textual_inversion"] + fast["seconds"]["null_text_inversion"]
    total_flops = (
        flops["unet"] * fast["samples"]["unet_forward"]
        + flops["unet_trained"] * fast["samples"]["unet_trained"]
        + flops["vae_decode"] * fast["samples"]["vae_decoded"]
    )
    seconds = sum(fast["seconds"].values())  # the diffusion model's stages: what the FLOPs count
    rendered = fast["generation_samples"]
    generation_flops = (
        flops["unet"] * rendered["unet_forward"] + flops["vae_decode"] * rendered["vae_decoded"]
    )
    generation_tflops = generation_flops / fast["seconds"]["generation"] / 1e12
    peak = float32_matmul_peak(model.device) / 1e12
    result = {
        "device": _device_name(model),
        "dtype": config.dtype,
        "precision": arithmetic(model, config.generation),
        "inversion_precision": arithmetic(model, config.generation, stage="inversion"),
        "config": dataclasses.asdict(config),
        "seconds": {k: round(v, 3) for k, v in (fast["seconds"] | distilled).items()},
        "specialization_s": round(specialization, 3),
        "distillation_steps_per_s": config.distill.steps / sum(distilled.values()),
        "images_per_s": config.images / fast["seconds"]["generation"],
        "peak_memory_mb": round(fast["peak_memory_mb"], 1),
        "tflops": total_flops / seconds / 1e12,
        "generation_tflops": generation_tflops,
        "float32_matmul_peak_tflops": peak,
        "generation_share_of_peak": generation_tflops / peak,
        "flops_per_sample": flops,
        "samples": fast["samples"],
        "reconstruction_psnr": fast["reconstruction_psnr"],
    }
    if config.compile:
        result["compile_s"] = round(warmup["compile"], 3)
    if compare == "reference":
        ref_model = reference_model or model
        ref = run_path(ref_model, config, reference=True, progress=progress)
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
