"""The `tint` command: parses arguments and calls the library; errors are one line on stderr."""

from __future__ import annotations

import argparse
import os
import sys

from tint.errors import TintError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + message
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _unit_float(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def _resolution(text: str) -> tuple[int, int]:
    h, _, w = text.lower().partition("x")
    try:
        size = (int(h), int(w or h))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or HxW, got {text!r}") from None
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return size


def _add_generate(sub) -> None:
    from tint.diffusion.pipeline import GENERATORS, PRESETS

    p = sub.add_parser(
        "generate",
        help="specialise a diffusion model to your classes (TINT) and generate images",
        description=(
            "Specialise a Stable-Diffusion-format model to each class of SUPPORT_DIR with "
            "textual inversion + null-text inversion, then generate --num new images per class. "
            "Writes OUT/images/<class>/*.png, OUT/specialization/<class>/ and OUT/manifest.json."
        ),
    )
    p.add_argument(
        "support_dir",
        metavar="SUPPORT_DIR",
        help="one sub-folder of images per class (a flat folder of images is one class)",
    )
    p.add_argument("--out", required=True, help="output directory (new, or with --resume)")
    p.add_argument(
        "--model",
        help="local Stable Diffusion directory in diffusers layout (default: the shipped "
        "glyph model)",
    )
    p.add_argument("--num", type=_positive_int, default=10, help="images per class (default 10)")
    p.add_argument(
        "--generator",
        choices=GENERATORS,
        default="tint",
        help="tint: from each support's inversion (default); "
        "ti: textual inversion only, from fresh noise (the baseline)",
    )
    p.add_argument(
        "--alpha",
        type=_unit_float,
        default=0.5,
        help="noise blend: 0 reproduces a support, 1 is fresh noise (default 0.5)",
    )
    p.add_argument(
        "--random-alpha",
        action="store_true",
        help="draw alpha uniformly from [0, 1] for each image",
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="fast",
        help="fast (default): 300 textual-inversion steps, 4 images per class per "
        "step, lr 5e-3; reference: the paper's 5000 steps, batch 1, lr 1e-3",
    )
    p.add_argument("--ti-steps", type=_positive_int, help="textual-inversion steps (preset)")
    p.add_argument("--ti-lr", type=_positive_float, help="textual-inversion learning rate")
    p.add_argument(
        "--ti-batch",
        type=_positive_int,
        help="textual-inversion images per class per step (preset)",
    )
    p.add_argument(
        "--min-timestep",
        type=_non_negative_int,
        default=250,
        help="textual inversion draws timesteps from [this, T) (default 250)",
    )
    p.add_argument(
        "--template",
        default="a photo of a {}",
        help="prompt, {} is the class token (default 'a photo of a {}')",
    )
    p.add_argument(
        "--init-word", default="object", help="word the class tokens start from (default 'object')"
    )
    p.add_argument("--steps", type=_positive_int, help="DDIM steps (default 25)")
    p.add_argument("--cfg", type=float, default=7.5, help="guidance scale (default 7.5)")
    p.add_argument(
        "--resolution",
        type=_resolution,
        help="N or HxW the model works at; supports are resized to it and images "
        "back to their support's size (default: the model's native size)",
    )
    p.add_argument("--batch", type=_positive_int, default=16, help="images per generation batch")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    p.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default="float32",
        help="UNet and VAE precision (default float32)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue a run in OUT, reusing finished specialisations and images",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_generate)


def _run_generate(args) -> None:
    from tint.data.images import load_class_folders
    from tint.diffusion.model import DiffusionModel, check_model_dir
    from tint.diffusion.pipeline import GenerateConfig, generate

    config = GenerateConfig.from_preset(
        args.preset,
        num=args.num,
        generator=args.generator,
        alpha=args.alpha,
        random_alpha=args.random_alpha,
        steps=args.steps,
        guidance=args.cfg,
        seed=args.seed,
        resolution=args.resolution,
        batch=args.batch,
        ti_steps=args.ti_steps,
        ti_lr=args.ti_lr,
        ti_batch=args.ti_batch,
        min_timestep=args.min_timestep,
        template=args.template,
        init_word=args.init_word,
    )
    config.validate()
    check_model_dir(args.model)
    load_class_folders(args.support_dir)  # bad images fail before the model is loaded
    model = DiffusionModel.load(args.model, device=args.device, dtype=args.dtype)
    manifest = generate(
        args.support_dir, args.out, model, config, resume=args.resume, progress=not args.quiet
    )
    classes = manifest["classes"]
    print(
        f"wrote {len(manifest['images'])} images of {len(classes)} classes to "
        f"{os.path.join(args.out, 'images')} (manifest: {os.path.join(args.out, 'manifest.json')})"
    )


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="one few-shot episode of the glyph world with the shipped models",
        description="A few minutes on a laptop CPU: specialises the shipped diffusion model with "
        "TINT to 5 novel glyph classes from 5 supports each, generates new images, checks them "
        "with the shipped base teacher (5-way nearest prototype) and writes OUT/overview.png "
        "(supports | generated) and OUT/summary.json.",
    )
    p.add_argument("--out", default="demo-output", help="output directory (reused if present)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_demo)


def _run_demo(args) -> None:
    from tint import demo

    summary = demo.run(args.out, progress=not args.quiet)
    print(
        f"{len(summary['classes'])} novel glyph classes, {summary['supports_per_class']} "
        f"supports each -> {summary['generated_per_class']} generated each "
        f"({summary['specialise_and_generate_seconds']} s)"
    )
    print("generated images the teacher puts in their class (5-way, nearest prototype):")
    for name, share in summary["generated_recognised"].items():
        print(f"  {name:<20} {share:6.0%}")
    print(f"  {'mean':<20} {summary['generated_recognised_mean']:6.0%}")
    print(f"supports | generated: {summary['picture']}")


def _add_pretrain(sub) -> None:
    from tint.world import DIFFUSION_TRAINING as D

    p = sub.add_parser("pretrain", help="train the default world's models on the base glyphs")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND", parser_class=_Parser)
    d = kinds.add_parser(
        "diffusion",
        help="a tiny latent diffusion model in Stable Diffusion format",
        description="Train a tiny Stable-Diffusion-format model (VAE, CLIP text encoder and "
        "tokenizer with one word per base class, UNet with cross-attention, DDIM scheduler) on "
        "fresh renderings of the base glyph classes, captioned 'a drawing of a <word>'. "
        "Checkpoints every --checkpoint-every steps; OUT is a diffusers directory throughout.",
    )
    d.add_argument("--out", required=True, help="output directory (new, or with --resume)")
    d.add_argument(
        "--steps",
        type=_positive_int,
        default=D.denoiser_steps,
        help=f"denoiser steps in all (default {D.denoiser_steps})",
    )
    d.add_argument(
        "--vae-steps",
        type=_positive_int,
        default=D.vae_steps,
        help=f"VAE steps (default {D.vae_steps})",
    )
    d.add_argument(
        "--batch", type=_positive_int, default=D.batch, help=f"images per step (default {D.batch})"
    )
    d.add_argument(
        "--lr", type=_positive_float, default=D.lr, help=f"denoiser learning rate (default {D.lr})"
    )
    d.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=D.checkpoint_every,
        help=f"steps between checkpoints (default {D.checkpoint_every})",
    )
    d.add_argument("--seed", type=int, default=D.seed, help="random seed (default 0)")
    d.add_argument("--threads", type=_positive_int, help="CPU threads for torch")
    d.add_argument(
        "--resume",
        action="store_true",
        help="continue from OUT's last checkpoint (a larger --steps extends the run)",
    )
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.set_defaults(run=_run_pretrain_diffusion)
    _add_pretrain_teacher(kinds)


def _run_pretrain_diffusion(args) -> None:
    import dataclasses

    import torch

    from tint import world
    from tint.diffusion.training import pretrain

    if args.threads:
        torch.set_num_threads(args.threads)
    config = dataclasses.replace(
        world.DIFFUSION_TRAINING,
        denoiser_steps=args.steps,
        vae_steps=args.vae_steps,
        batch=args.batch,
        lr=args.lr,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    state = pretrain(
        args.out,
        world.diffusion_architecture(),
        config,
        world.draw_base,
        resume=args.resume,
        progress=not args.quiet,
    )
    print(
        f"{args.out}: {state['stage']} step {state['step']}, "
        f"{state['seconds'] / 60:.1f} min of training, losses {state['losses']}"
    )


def _add_pretrain_teacher(kinds) -> None:
    from tint.world import TEACHER_TRAINING as T

    t = kinds.add_parser(
        "teacher",
        help="the base teacher, a ResNet classifier of the base glyph classes",
        description="Train the base teacher (pre-activation ResNet 32-64-128) to classify the "
        "base glyph classes from fresh renderings; scores held-out benchmark instances at each "
        "checkpoint. Saves OUT/model.safetensors and OUT/config.json.",
    )
    t.add_argument("--out", required=True, help="output directory (new, or with --resume)")
    t.add_argument(
        "--steps", type=_positive_int, default=T.steps, help=f"training steps (default {T.steps})"
    )
    t.add_argument(
        "--batch", type=_positive_int, default=T.batch, help=f"images per step (default {T.batch})"
    )
    t.add_argument(
        "--lr", type=_positive_float, default=T.lr, help=f"peak learning rate (default {T.lr})"
    )
    t.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=T.checkpoint_every,
        help=f"steps between checkpoints (default {T.checkpoint_every})",
    )
    t.add_argument("--seed", type=int, default=T.seed, help="random seed (default 0)")
    t.add_argument("--threads", type=_positive_int, help="CPU threads for torch")
    t.add_argument("--resume", action="store_true", help="continue from OUT's last checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.set_defaults(run=_run_pretrain_teacher)


def _run_pretrain_teacher(args) -> None:
    import dataclasses

    import torch

    from tint import world
    from tint.models.classifier_training import pretrain_classifier

    if args.threads:
        torch.set_num_threads(args.threads)
    config = dataclasses.replace(
        world.TEACHER_TRAINING,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    state = pretrain_classifier(
        args.out,
        world.teacher_network(),
        config,
        world.draw_base_labelled,
        held_out=world.base_held_out(),
        resume=args.resume,
        progress=not args.quiet,
    )
    print(
        f"{args.out}: step {state['step']}, {state['seconds'] / 60:.1f} min of training, "
        f"held-out base accuracy {state['held_out_accuracy']:.3f}"
    )


def _add_data(sub) -> None:
    from tint.data import glyphs

    p = sub.add_parser("data", help="write the benchmark datasets to disk")
    kinds = p.add_subparsers(dest="dataset", required=True, metavar="DATASET", parser_class=_Parser)
    g = kinds.add_parser(
        "glyphs",
        help="the glyph benchmark as class folders",
        description="Write one split of the glyph benchmark as OUT/<class>/<i>.png, "
        f"{glyphs.INSTANCES} instances per class, 32x32 RGB. The same on every machine.",
    )
    g.add_argument(
        "--split",
        choices=list(glyphs.SPLITS),
        default="novel",
        help="base (pre-training), val or novel (episodes); default novel",
    )
    g.add_argument("--out", required=True, help="output directory")
    g.add_argument(
        "--instances",
        type=_positive_int,
        default=glyphs.INSTANCES,
        help=f"instances per class (default {glyphs.INSTANCES})",
    )
    g.set_defaults(run=_run_data_glyphs)


def _run_data_glyphs(args) -> None:
    from tint.data import glyphs

    n = glyphs.write_split(args.split, args.out, args.instances)
    print(f"wrote {n} {args.split} classes x {args.instances} instances to {args.out}")


def _add_eval_model(sub) -> None:
    from tint.eval.model_quality import QualitySettings as Q

    p = sub.add_parser(
        "eval-model",
        help="measure the quality figures of a glyph diffusion model and base teacher",
        description="Base fidelity (teacher top-1/top-5 on images generated from base-class "
        "prompts), the VAE's round-trip PSNR, TINT's alpha-0 reconstruction PSNR, novel "
        "fidelity (nearest-prototype accuracy of TINT and textual-inversion images over random "
        "and hard 5-way tasks) and the distance of generated images to their nearest support.",
    )
    p.add_argument("--model", help="diffusion model directory (default: the shipped one)")
    p.add_argument("--teacher", help="base teacher directory (default: the shipped one)")
    p.add_argument(
        "--base-classes",
        type=_positive_int,
        default=Q.base_classes,
        help=f"base classes prompted (default {Q.base_classes})",
    )
    p.add_argument(
        "--novel-classes",
        type=_positive_int,
        default=Q.novel_classes,
        help=f"novel classes reconstructed (default {Q.novel_classes})",
    )
    p.add_argument(
        "--tasks",
        type=_positive_int,
        default=Q.tasks,
        help=f"random 5-way tasks, and as many hard ones (default {Q.tasks})",
    )
    p.add_argument(
        "--per-class",
        type=_positive_int,
        default=Q.per_class,
        help=f"images per novel class and generator (default {Q.per_class})",
    )
    p.add_argument(
        "--per-base-class",
        type=_positive_int,
        default=Q.per_base_class,
        help=f"images per prompted base class (default {Q.per_base_class})",
    )
    p.add_argument(
        "--steps", type=_positive_int, default=Q.steps, help=f"DDIM steps (default {Q.steps})"
    )
    p.add_argument(
        "--ti-steps",
        type=_positive_int,
        help="textual-inversion steps (default: the fast preset's)",
    )
    p.add_argument("--workdir", help="keep specialisations here and reuse them")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_eval_model)


def _run_eval_model(args) -> None:
    import json

    from tint import world
    from tint.diffusion.model import DiffusionModel
    from tint.diffusion.pipeline import GenerateConfig
    from tint.eval.model_quality import QualitySettings, evaluate
    from tint.models.resnet import ResNet

    model = DiffusionModel.load(args.model or world.DEFAULT_MODEL)
    teacher = ResNet.from_pretrained(args.teacher or world.DEFAULT_TEACHER)
    settings = QualitySettings(
        base_classes=args.base_classes,
        per_base_class=args.per_base_class,
        novel_classes=args.novel_classes,
        tasks=args.tasks,
        per_class=args.per_class,
        steps=args.steps,
        seed=args.seed,
    )
    config = GenerateConfig.from_preset("fast", steps=args.steps, ti_steps=args.ti_steps)
    result = evaluate(
        model, teacher, settings, config, workdir=args.workdir, progress=not args.quiet
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return
    fid = result["base_fidelity"]
    print(
        f"base fidelity        top-1 {fid['top1']:.3f}  top-5 {fid['top5']:.3f} "
        f"({fid['classes']} classes x {result['settings']['per_base_class']})"
    )
    print(f"VAE round trip       {result['vae_psnr']:.2f} dB")
    print(f"TINT alpha 0         {result['reconstruction_psnr']:.2f} dB")
    for name, scores in result["novel_fidelity"].items():
        print(f"novel fidelity {name:<9} random {scores['random']:.3f}  hard {scores['hard']:.3f}")
    copy = result["copy_distance"]
    print(
        f"distance to nearest support: TINT 0.5 {copy['tint_0.5']:.3f}, "
        f"real held-out {copy['real']:.3f}"
    )


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="version, device and the shipped default models")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_run_info)


def _run_info(args) -> None:
    import json

    import torch

    from tint import __version__, world

    info = {
        "version": __version__,
        "torch": torch.__version__,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cpu_threads": torch.get_num_threads(),
        "default_model": str(world.DEFAULT_MODEL),
        "default_model_present": (world.DEFAULT_MODEL / "model_index.json").is_file(),
        "default_teacher": str(world.DEFAULT_TEACHER),
        "default_teacher_present": (world.DEFAULT_TEACHER / "config.json").is_file(),
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        print(f"{key:<24} {value}")


def build_parser() -> argparse.ArgumentParser:
    from tint import __version__

    parser = _Parser(
        prog="tint",
        description="Few-shot distillation with generative data: specialise a Stable-Diffusion-"
        "format model to a few images per class (textual + null-text inversion) and generate.",
    )
    parser.add_argument("--version", action="version", version=f"tint {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    _add_generate(sub)
    _add_demo(sub)
    _add_pretrain(sub)
    _add_data(sub)
    _add_eval_model(sub)
    _add_info(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, --version and usage errors: argparse has printed them
        return int(e.code or 0)
    try:
        args.run(args)
    except TintError as e:
        print(f"tint {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"tint {args.command}: interrupted (finished work is kept; use --resume)",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
