"""`tint pretrain diffusion|teacher|student|upscaler`: train the default world's models on the
base glyph classes. Their defaults come from the world file (configs/glyphs.toml); flags and
--config override them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from tint.commands import Command, Options
from tint.commands.world import DEFAULT_MODEL, section
from tint.config import from_dict, group, setting
from tint.data import glyphs
from tint.diffusion.architectures import TinyArchitecture, UpscalerArchitecture
from tint.io.storage import write_json, write_png
from tint.models.students import ARCHITECTURES
from tint.train.classifier import ClassifierTraining
from tint.train.diffusion import DiffusionTraining, UpscalerTraining

WHERE = f"{glyphs.WORLD} [{{}}]"


@dataclass
class DiffusionSettings:
    out: str | None = setting(None, "output directory (new, or with --resume)")
    init: str | None = setting(
        None, "start the UNet and text encoder from this model (same architecture)"
    )
    architecture: TinyArchitecture = group(
        TinyArchitecture, "the model (the base classes' words come first)", prefix="arch"
    )
    training: DiffusionTraining = group(DiffusionTraining, "the VAE, then the denoiser", prefix="")


@dataclass
class UpscalerSettings:
    out: str | None = setting(None, "output directory (new, or with --resume)")
    parts: str | None = setting(
        None,
        "the diffusion model whose text encoder, tokenizer and scheduler it takes "
        "(default: the shipped glyph model)",
    )
    architecture: UpscalerArchitecture = group(UpscalerArchitecture, "the model", prefix="arch")
    training: UpscalerTraining = group(UpscalerTraining, "the VAE, then the UNet", prefix="")


@dataclass
class ResNetShape:
    widths: tuple[int, ...] = setting((32, 64, 128), "channels per stage", minimum=1)
    blocks: tuple[int, ...] = setting((2, 2, 2), "residual blocks per stage", minimum=1)


@dataclass
class TeacherSettings:
    out: str | None = setting(None, "output directory (new, or with --resume)")
    network: ResNetShape = group(ResNetShape, "the ResNet")
    training: ClassifierTraining = group(ClassifierTraining, "its training", prefix="")


@dataclass
class StudentSettings:
    out: str | None = setting(None, "output directory (new, or with --resume)")
    arch: str = setting("conv4", "the network", choices=ARCHITECTURES)
    width: float = setting(1.0, "its channel multiplier", above=0)
    training: ClassifierTraining = group(ClassifierTraining, "its training", prefix="")


def _diffusion_base() -> DiffusionSettings:
    world = section("diffusion")
    return DiffusionSettings(
        architecture=from_dict(TinyArchitecture, world["architecture"], WHERE.format("diffusion")),
        training=from_dict(DiffusionTraining, world["training"], WHERE.format("diffusion")),
    )


def _upscaler_base() -> UpscalerSettings:
    world = section("upscaler")
    return UpscalerSettings(
        architecture=from_dict(
            UpscalerArchitecture, world["architecture"], WHERE.format("upscaler")
        ),
        training=from_dict(UpscalerTraining, world["training"], WHERE.format("upscaler")),
    )


def _classifier_base(name: str, settings: type):
    world = section(name)
    training = from_dict(ClassifierTraining, world["training"], WHERE.format(name))
    if "network" in world:
        network = from_dict(ResNetShape, world["network"], WHERE.format(name))
        return settings(network=network, training=training)
    return settings(training=training)


def run_diffusion(settings: DiffusionSettings, options: Options) -> None:
    from tint.train.diffusion import pretrain

    # Class words first: BPE merges rank in this order, so each class word stays one token.
    words = [*(g.word for g in glyphs.split("base")), *settings.architecture.words]
    arch = dataclasses.replace(settings.architecture, words=words)
    state = pretrain(
        settings.out,
        arch,
        settings.training,
        glyphs.draw_captioned,
        resume=options.resume,
        progress=not options.quiet,
        init=settings.init,
    )
    print(
        f"{settings.out}: {state['stage']} step {state['step']}, "
        f"{state['seconds'] / 60:.1f} min of training, losses {state['losses']}"
    )


def run_upscaler(settings: UpscalerSettings, options: Options) -> None:
    from tint.data.images import to_image
    from tint.diffusion.upscale import restored
    from tint.eval.model_quality import psnr
    from tint.io.pictures import grid
    from tint.train.diffusion import pretrain_upscaler

    state = pretrain_upscaler(
        settings.out,
        settings.architecture,
        settings.training,
        glyphs.draw_captioned,
        settings.parts or DEFAULT_MODEL,
        resume=options.resume,
        progress=not options.quiet,
    )
    print(
        f"{settings.out}: {state['stage']} step {state['step']}, "
        f"{state['seconds'] / 60:.1f} min of training, losses {state['losses']}"
    )
    # How well it restores glyphs it never saw: the first 4 instances of each val class.
    images = torch.cat([glyphs.benchmark_instances(g, 4) for g in glyphs.split("val")])
    side = images.shape[-1] // 2
    made = restored(images, side, str(settings.out), steps=20)
    quality = {"images": len(images), "side": side, "steps": 20}
    quality["psnr"] = {way: psnr(x, images) for way, x in made.items() if way != "small"}
    write_json(Path(settings.out) / "quality.json", quality)
    # The first val glyphs, one a column: as rendered, shrunk, then made large each way.
    picks = range(0, 4 * 12, 4)
    rows = [[to_image(x[i]) for i in picks] for x in (images, *made.values())]
    write_png(Path(settings.out) / "samples.png", grid(rows, cell=48))
    made = ", ".join(f"{way} {db:.2f} dB" for way, db in quality["psnr"].items())
    print(f"{len(images)} val glyphs made {side} px and large again: {made}")


def run_classifier(settings: TeacherSettings | StudentSettings, options: Options) -> None:
    from tint.models.resnet import ResNet, ResNetConfig
    from tint.models.students import Student, StudentConfig
    from tint.train.classifier import pretrain_classifier

    base = glyphs.split("base")
    names, size = [g.name for g in base], glyphs.settings().size
    if isinstance(settings, TeacherSettings):
        shape = settings.network
        network, net = (
            ResNet,
            ResNetConfig(
                widths=shape.widths,
                blocks=shape.blocks,
                num_classes=len(base),
                classes=names,
                input_size=(size, size),
            ),
        )
    else:
        network, net = Student, StudentConfig(settings.arch, settings.width, names, (size, size))
    state = pretrain_classifier(
        settings.out,
        network,
        net,
        settings.training,
        glyphs.draw_labelled,
        held_out=glyphs.base_held_out(),
        resume=options.resume,
        progress=not options.quiet,
    )
    print(
        f"{settings.out}: step {state['step']}, {state['seconds'] / 60:.1f} min of training, "
        f"held-out base accuracy {state['held_out_accuracy']:.3f}"
    )


OPTIONS = ("resume", "quiet", "threads")
CLASSIFIER_ALIASES = {  # tint 0.1's flags
    "--steps": "training.train.steps",
    "--batch": "training.train.batch",
    "--lr": "training.train.lr",
    "--checkpoint-every": "training.train.checkpoint_every",
    "--seed": "training.train.seed",
}
COMMANDS = [
    Command(
        name="pretrain diffusion",
        help="a tiny latent diffusion model in Stable Diffusion format",
        description="Train a tiny Stable-Diffusion-format model (VAE, CLIP text encoder and "
        "tokenizer with one word per base class, UNet with cross-attention, DDIM scheduler) on "
        "fresh renderings of the base glyph classes, captioned 'a drawing of a <word>'. "
        "Checkpoints as it goes; OUT is a diffusers directory throughout; --resume continues, "
        "and more --denoiser-steps extend a finished run.",
        settings=DiffusionSettings,
        base=_diffusion_base,
        run=run_diffusion,
        options=OPTIONS,
        required=("out",),
        aliases={
            "--steps": "training.denoiser.steps",
            "--batch": "training.denoiser.batch",
            "--lr": "training.denoiser.lr",
            "--seed": "training.denoiser.seed",
        },
    ),
    Command(
        name="pretrain teacher",
        help="the base teacher, a ResNet classifier of the base glyph classes",
        description="Train the base teacher (a pre-activation ResNet) to classify the base glyph "
        "classes from fresh renderings; scores held-out benchmark instances as it goes. Saves "
        "OUT/model.safetensors and OUT/config.json.",
        settings=TeacherSettings,
        base=lambda: _classifier_base("teacher", TeacherSettings),
        run=run_classifier,
        options=OPTIONS,
        required=("out",),
        aliases=CLASSIFIER_ALIASES,
    ),
    Command(
        name="pretrain student",
        help="a base-pretrained student (tint distill --init), on the base glyph classes",
        description="Train a student network to classify the base glyph classes from fresh "
        "renderings, as a starting point for distillation (tint distill --init OUT). Saves "
        "OUT/student.safetensors and OUT/student.json.",
        settings=StudentSettings,
        base=lambda: _classifier_base("student", StudentSettings),
        run=run_classifier,
        options=OPTIONS,
        required=("out",),
        aliases=CLASSIFIER_ALIASES,
    ),
    Command(
        name="pretrain upscaler",
        help="a super-resolution model of glyphs (tint generate --upscale OUT)",
        description="Train a StableDiffusionUpscalePipeline that doubles the side of small glyph "
        "images: its VAE on fresh renderings of the base glyph classes, then its UNet to draw "
        "their latents from the renderings made half as large (antialiased bicubic) and "
        "noised. OUT is a diffusers directory throughout, for --upscale OUT; --resume "
        "continues, and more --denoiser-steps extend a finished run.",
        settings=UpscalerSettings,
        base=_upscaler_base,
        run=run_upscaler,
        options=OPTIONS,
        required=("out",),
    ),
]
