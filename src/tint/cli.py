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


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _half_width(text: str) -> float:
    value = float(text)
    if not 0 < value < 0.5:
        raise argparse.ArgumentTypeError(f"must be between 0 and 0.5 (an accuracy), got {text}")
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
    from tint import world
    from tint.data.images import load_class_folders
    from tint.diffusion.model import DiffusionModel, check_model_dir
    from tint.diffusion.pipeline import GenerateConfig, generate
    from tint.run_folder import RunFolder

    if args.random_alpha and args.alpha is not None:
        raise TintError("--alpha and --random-alpha contradict each other: give one")
    if args.generator == "ti" and (args.random_alpha or args.alpha is not None):
        raise TintError("--generator ti starts from fresh noise: --alpha does not apply")
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
    model_dir = check_model_dir(args.model or world.DEFAULT_MODEL)
    classes = load_class_folders(args.support_dir)  # bad images fail before the model loads
    RunFolder(args.out, None, args.resume).check()
    model = DiffusionModel.load(model_dir, device=args.device, dtype=args.dtype)
    manifest = generate(
        classes, args.out, model, config, resume=args.resume, progress=not args.quiet
    )
    classes = manifest["classes"]
    print(
        f"wrote {len(manifest['images'])} images of {len(classes)} classes to "
        f"{os.path.join(args.out, 'images')} (manifest: {os.path.join(args.out, 'manifest.json')})"
    )


def _add_demo(sub) -> None:
    from tint.demo import DemoConfig as D

    p = sub.add_parser(
        "demo",
        help="one hard 5-way 1-shot glyph episode, end to end, beside the committed benchmark",
        description="A few minutes on a laptop CPU: specialises the shipped base teacher to 5 "
        "novel glyph classes from 1 support each, trains a student on the supports alone, "
        "specialises the shipped diffusion model with TINT, generates new images, distils the "
        "teacher into a second student on them, and scores all three on 15 held-out queries per "
        "class; prints the table beside the committed 20-episode benchmark and writes "
        "OUT/report.html.",
    )
    p.add_argument("--out", default="demo-output", help="output directory (reused if present)")
    p.add_argument(
        "--synthetic",
        type=_positive_int,
        default=D.synthetic,
        help=f"generated images per class (default {D.synthetic})",
    )
    p.add_argument(
        "--student-steps",
        type=_positive_int,
        default=D.student_steps,
        help=f"training steps of each student (default {D.student_steps})",
    )
    p.add_argument(
        "--ti-steps",
        type=_positive_int,
        default=D.ti_steps,
        help=f"textual-inversion steps (default {D.ti_steps})",
    )
    p.add_argument(
        "--ddim-steps",
        type=_positive_int,
        default=D.ddim_steps,
        help=f"DDIM steps of null-text inversion and sampling (default {D.ddim_steps})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_demo)


def _run_demo(args) -> None:
    from tint import demo

    config = demo.DemoConfig(
        synthetic=args.synthetic,
        student_steps=args.student_steps,
        ti_steps=args.ti_steps,
        ddim_steps=args.ddim_steps,
    )
    demo.print_summary(demo.run(args.out, config, progress=not args.quiet))


def _add_distill(sub) -> None:
    from tint.distill.folder import DistillSettings as D
    from tint.models.students import ARCHITECTURES
    from tint.models.teachers import FINETUNE

    p = sub.add_parser(
        "distill",
        help="your own classes in, a tiny student (safetensors + ONNX) out",
        description="Specialise the diffusion model to each class of SUPPORT_DIR with TINT, "
        "generate new images, label them with a teacher specialised on the same supports, and "
        "distil it into a tiny student. Writes OUT/student.safetensors, OUT/student.onnx, "
        "OUT/student.json (classes in output order, input_size, mean, std: the input is "
        "(RGB/255 - mean) / std, NCHW float32) and OUT/report.html.",
    )
    p.add_argument("support_dir", metavar="SUPPORT_DIR", help="a folder per class of images")
    p.add_argument("--out", required=True, help="output directory (new, or with --resume)")
    p.add_argument(
        "--model", help="Stable Diffusion directory in diffusers layout (default: the shipped one)"
    )
    p.add_argument(
        "--teacher",
        help="teacher directory: a tint glyph teacher, or DINOv2 or CLIP vision in transformers "
        "format (default: the shipped glyph teacher)",
    )
    p.add_argument(
        "--student",
        default=D.student,
        help=f"student network: {', '.join(ARCHITECTURES)} (default {D.student})",
    )
    p.add_argument(
        "--width", type=_positive_float, default=D.width, help="student channel multiplier"
    )
    p.add_argument(
        "--input-size",
        type=_resolution,
        help="student input N or HxW (default: the glyph teacher's, else 84)",
    )
    p.add_argument("--init", help="start from this base-pretrained student directory")
    p.add_argument(
        "--num-synthetic",
        type=_positive_int,
        default=D.num_synthetic,
        help=f"generated images per class (default {D.num_synthetic})",
    )
    p.add_argument(
        "--shots", type=_positive_int, help="supports per class, the first by name (default all)"
    )
    p.add_argument(
        "--unlabeled", help="a folder of unlabelled images the teacher also labels for the student"
    )
    p.add_argument("--eval", help="held-out images in class folders: report accuracy on them")
    p.add_argument(
        "--alpha", type=_unit_float, default=D.alpha, help=f"TINT noise blend (default {D.alpha})"
    )
    p.add_argument(
        "--ti-steps",
        type=_positive_int,
        help="textual-inversion steps (default: the fast preset's)",
    )
    p.add_argument(
        "--ddim-steps",
        type=_positive_int,
        default=D.ddim_steps,
        help=f"DDIM steps of null-text inversion and sampling (default {D.ddim_steps})",
    )
    p.add_argument(
        "--teacher-finetune",
        default=D.teacher_finetune,
        help=f"{', '.join(FINETUNE)}: fine-tune the teacher's head or last block on the "
        f"supports (default {D.teacher_finetune})",
    )
    p.add_argument(
        "--steps", type=_positive_int, default=D.steps, help=f"distillation steps ({D.steps})"
    )
    p.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=D.checkpoint_every,
        help=f"distillation steps between checkpoints (default {D.checkpoint_every})",
    )
    p.add_argument("--seed", type=int, default=D.seed, help="random seed (default 0)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in OUT")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_distill)


def _run_distill(args) -> None:
    from tint.distill.folder import DistillSettings, distill_folder

    settings = DistillSettings(
        student=args.student,
        width=args.width,
        input_size=args.input_size,
        init=args.init,
        shots=args.shots,
        num_synthetic=args.num_synthetic,
        alpha=args.alpha,
        ti_steps=args.ti_steps,
        ddim_steps=args.ddim_steps,
        teacher_finetune=args.teacher_finetune,
        steps=args.steps,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    report = distill_folder(
        args.support_dir,
        args.out,
        settings,
        model_dir=args.model,
        teacher_dir=args.teacher,
        unlabeled_dir=args.unlabeled,
        eval_dir=args.eval,
        resume=args.resume,
        progress=not args.quiet,
    )
    s = report["student"]
    print(
        f"{len(report['classes'])} classes, {report['generated']} generated images -> "
        f"{s['arch']} student, {s['parameters']:,} parameters ({s['size_kb']} KB), "
        f"{s['images_per_s']:,} images/s"
    )
    before, after = (report["student_vs_teacher_on_generated"][k] for k in ("before", "after"))
    print(
        f"agrees with the teacher on {after['top1_agreement']:.0%} of the generated images "
        f"(KL to the teacher {before['kl']:.3f} before distillation, {after['kl']:.3f} after)"
    )
    if "held_out" in report:
        h = report["held_out"]
        print(
            f"held-out accuracy ({h['images']} images): teacher {h['teacher_accuracy']:.1%}, "
            f"student {h['student_accuracy']:.1%}"
        )
    print(f"wrote {args.out}/student.onnx, student.safetensors, student.json, report.html")


def _queries(text: str) -> int | None:
    if text == "all":
        return None
    return _positive_int(text)


def _method_list(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def _add_benchmark(sub) -> None:
    from tint.eval.methods import METHODS
    from tint.eval.methods import MethodSettings as M

    p = sub.add_parser(
        "benchmark",
        help="compare methods over many few-shot episodes, with intervals",
        description="Draw N-way K-shot episodes of a dataset split (episode i depends only on "
        "the seed and i) and run every method on each: the specialised teacher, and students "
        "trained on the supports alone or distilled on TINT, textual-inversion-only, alpha-0 "
        "or retrieved images. Writes OUT/episodes.json, OUT/results.json, OUT/results.csv and "
        "OUT/report.html: accuracy with 95% intervals (law of total variance) and paired "
        "differences between methods. --resume continues where a run stopped.",
    )
    p.add_argument(
        "--dataset",
        required=True,
        help="glyphs, folder:PATH, miniimagenet:PATH, cub:PATH or cifarfs:PATH",
    )
    p.add_argument("--split", default="novel", help="base, val or novel (default novel)")
    p.add_argument(
        "--hard",
        action="store_true",
        help="hard episodes: a random class and the N-1 classes most like it under the "
        "teacher's features, instead of N classes drawn uniformly",
    )
    p.add_argument("--ways", type=_positive_int, default=5, help="classes per episode (5)")
    p.add_argument("--shots", type=_positive_int, default=5, help="supports per class (5)")
    p.add_argument(
        "--queries", type=_queries, default=15, help="queries per class, or 'all' (default 15)"
    )
    p.add_argument("--episodes", type=_positive_int, default=20, help="episodes (default 20)")
    p.add_argument(
        "--methods",
        type=_method_list,
        default=["teacher", "supports", "tint"],
        help=f"comma-separated, from {','.join(METHODS)} (default teacher,supports,tint)",
    )
    p.add_argument("--out", required=True, help="output directory (new, or with --resume)")
    p.add_argument("--model", help="Stable Diffusion directory (default: the shipped one)")
    p.add_argument("--teacher", help="teacher directory (default: the shipped glyph teacher)")
    p.add_argument("--student", default=M.student, help=f"student network (default {M.student})")
    p.add_argument("--width", type=_positive_float, default=M.width, help="its channel multiplier")
    p.add_argument(
        "--input-size",
        type=_resolution,
        help="student input N or HxW (default 32 for glyphs, else 84)",
    )
    p.add_argument(
        "--synthetic",
        type=_positive_int,
        default=M.synthetic,
        help=f"generated or retrieved images per class (default {M.synthetic})",
    )
    p.add_argument(
        "--alpha", type=_unit_float, default=M.alpha, help=f"tint's noise blend (default {M.alpha})"
    )
    p.add_argument(
        "--student-steps",
        type=_positive_int,
        help="training steps of each student (default 1000)",
    )
    p.add_argument("--ti-steps", type=_positive_int, help="textual-inversion steps (fast preset)")
    p.add_argument(
        "--ddim-steps",
        type=_positive_int,
        default=M.diffusion_steps,
        help=f"DDIM steps of null-text inversion and sampling (default {M.diffusion_steps})",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the episodes and methods (0)")
    p.add_argument("--resume", action="store_true", help="continue a run in OUT")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_benchmark)


def _run_benchmark(args) -> None:
    import dataclasses

    from tint.eval.benchmark import run_benchmark
    from tint.eval.methods import MethodSettings

    settings = MethodSettings(
        student=args.student,
        width=args.width,
        synthetic=args.synthetic,
        alpha=args.alpha,
        ti_steps=args.ti_steps,
        diffusion_steps=args.ddim_steps,
        seed=args.seed,
    )
    if args.input_size:
        settings.input_size = args.input_size
    elif args.dataset != "glyphs":
        settings.input_size = (84, 84)
    if args.student_steps:
        settings.distill = dataclasses.replace(settings.distill, steps=args.student_steps)
    results = run_benchmark(
        args.dataset,
        args.out,
        args.ways,
        args.shots,
        args.queries,
        args.episodes,
        args.methods,
        settings,
        split=args.split,
        model_dir=args.model,
        teacher_dir=args.teacher,
        resume=args.resume,
        progress=not args.quiet,
        hard=args.hard,
    )
    print_benchmark(results, args.out)


def print_benchmark(results: dict, out: str | None) -> None:
    """The summary of a benchmark's results.json, as `tint benchmark` prints it."""
    run = results["settings"]
    print(f"{len(results['episodes'])} episodes, {run['ways']}-way {run['shots']}-shot")
    for method, s in results["summary"].items():
        ci = s["ci95"]
        interval = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
        print(f"  {method:<10} {s['accuracy']:.3f} {interval}")
    for pair, d in results["paired"].items():
        ci = d["ci95"]
        print(f"  {pair:<20} {d['mean']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]")
    if out is not None:
        print(f"wrote {out}/results.json, results.csv, report.html")


def _add_plan(sub) -> None:
    p = sub.add_parser(
        "plan",
        help="how many episodes and queries reach an interval half-width at least cost",
        description="From a pilot run's results.json, estimate the between-episode variance and "
        "the query term of each method and recommend the number of episodes and of queries per "
        "class that reach --half-width at least cost (cost = episodes x (cost per episode + "
        "queries x ways x cost per query)). Costs default to the pilot's measured seconds.",
    )
    p.add_argument(
        "results",
        metavar="RESULTS",
        help="a results.json or results.csv, the folder holding it, or any JSON or CSV file of "
        "per-episode {correct, total} counts per method",
    )
    p.add_argument(
        "--half-width",
        type=_half_width,
        required=True,
        help="target 95%% half-width, in accuracy (0.02 is two points)",
    )
    p.add_argument(
        "--ways", type=_positive_int, help="classes per episode (default: as the pilot says)"
    )
    p.add_argument(
        "--max-queries",
        type=_positive_int,
        help="the most queries per class a class can give (default: from the pilot's dataset)",
    )
    p.add_argument(
        "--cost-episode",
        type=_positive_float,
        help="seconds per episode (default: the pilot's)",
    )
    p.add_argument(
        "--cost-query",
        type=_non_negative_float,
        help="seconds per query image (default: the pilot's, or 0)",
    )
    p.add_argument("--method", help="plan for this method (default: the most demanding)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=_run_plan)


def _run_plan(args) -> None:
    import json

    from tint.eval.plan import plan_from_results

    plan = plan_from_results(
        args.results,
        args.half_width,
        args.cost_episode,
        args.cost_query,
        args.method,
        args.ways,
        args.max_queries,
    )
    if args.json:
        print(json.dumps(plan, indent=2))
        return
    print(
        f"{plan['episodes']} episodes x {plan['queries']} queries per class reach a 95% "
        f"half-width of {plan['half_width']:.4f} for {plan['method']} "
        f"(cost {plan['cost']:.0f} s)"
    )
    for method, p in plan["methods"].items():
        print(
            f"  {method:<10} {p['episodes']:>5} episodes x {p['queries']:>4} queries  "
            f"between-episode sd {p['between_episode_var'] ** 0.5:.3f}"
        )


def _add_bench(sub) -> None:
    from tint.bench import BenchConfig as B
    from tint.diffusion.model import DTYPES

    p = sub.add_parser(
        "bench",
        help="measure TINT's speed: specialisation time, images/s, memory, TFLOP/s",
        description="Specialise to one N-way K-shot task (textual inversion at a fixed step "
        "count, null-text inversion of every support) and generate images, timing each stage; "
        "reports peak memory and the model TFLOP/s achieved. --compare reference also runs the "
        "reference way (batch 1, float32, one class, support and image at a time) on the same "
        "inputs and reports the speed-up and the quality difference.",
    )
    p.add_argument("--model", help="Stable Diffusion directory (default: the shipped one)")
    p.add_argument(
        "--arch",
        choices=["sd15", "tiny"],
        help="sd15: Stable Diffusion 1.5's architecture at 512 px with random weights; "
        "tiny: the shipped glyph model (default)",
    )
    p.add_argument("--device", default=B.device, help="cpu or cuda (default cpu)")
    p.add_argument("--dtype", default=B.dtype, choices=list(DTYPES), help="of the fast path")
    p.add_argument("--batch", type=_positive_int, default=B.batch, help="generation batch")
    p.add_argument("--ways", type=_positive_int, default=B.ways, help=f"classes ({B.ways})")
    p.add_argument("--shots", type=_positive_int, default=B.shots, help=f"supports ({B.shots})")
    p.add_argument("--steps", type=_positive_int, default=B.steps, help=f"DDIM steps ({B.steps})")
    p.add_argument(
        "--ti-steps",
        type=_positive_int,
        default=B.ti_steps,
        help=f"textual-inversion steps ({B.ti_steps})",
    )
    p.add_argument(
        "--images", type=_positive_int, default=B.images, help=f"images generated ({B.images})"
    )
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the fast path's UNet, generation graphs frozen (a first, compiling "
        "pass is timed apart)",
    )
    p.add_argument("--compare", choices=["reference"], help="also run the reference way")
    p.add_argument("--threads", type=_positive_int, help="CPU threads for torch")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_bench)


def _run_bench(args) -> None:
    import json

    import torch

    from tint.bench import BenchConfig, bench, load_bench_model

    if args.threads:
        torch.set_num_threads(args.threads)
    config = BenchConfig(
        ways=args.ways,
        shots=args.shots,
        steps=args.steps,
        ti_steps=args.ti_steps,
        images=args.images,
        batch=args.batch,
        device=args.device,
        dtype=args.dtype,
        channels_last=args.channels_last,
        compile=args.compile,
    )
    model = load_bench_model(args.arch, args.model, args.device, args.dtype)
    reference = None
    if args.compare and args.dtype != "float32":
        reference = load_bench_model(args.arch, args.model, args.device, "float32")
    result = bench(model, config, args.compare, reference, progress=not args.quiet)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    rows = [("", "fast path", "reference", "speed-up")]
    ref = result.get("reference")
    for key, label in (
        ("textual_inversion", "textual inversion (s)"),
        ("null_text_inversion", "null-text inversion (s)"),
        ("generation", f"generation of {config.images} (s)"),
    ):
        rows.append(
            (
                label,
                f"{result['seconds'][key]:.2f}",
                f"{ref['seconds'][key]:.2f}" if ref else "",
                f"{result['speedup'][key]:.1f}x" if ref else "",
            )
        )
    rows.append(
        (
            "images/s",
            f"{result['images_per_s']:.1f}",
            f"{ref['images_per_s']:.1f}" if ref else "",
            "",
        )
    )
    rows.append(
        (
            "reconstruction PSNR (dB)",
            f"{result['reconstruction_psnr']:.2f}",
            f"{ref['reconstruction_psnr']:.2f}" if ref else "",
            "",
        )
    )
    print(f"{result['device']}, {config.dtype}")
    for row in rows:
        print(f"{row[0]:<28}{row[1]:>12}{row[2]:>12}{row[3]:>10}")
    print(f"peak memory {result['peak_memory_mb']:.0f} MB, {result['tflops']:.4f} TFLOP/s")
    if "compile_s" in result:
        print(f"compiling: a first pass of {result['compile_s']:.0f} s, not in the figures above")


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
    _add_pretrain_classifiers(kinds)


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


def _add_pretrain_classifiers(kinds) -> None:
    from tint.models.students import ARCHITECTURES
    from tint.world import STUDENT_TRAINING, TEACHER_TRAINING

    t = kinds.add_parser(
        "teacher",
        help="the base teacher, a ResNet classifier of the base glyph classes",
        description="Train the base teacher (pre-activation ResNet 32-64-128) to classify the "
        "base glyph classes from fresh renderings; scores held-out benchmark instances at each "
        "checkpoint. Saves OUT/model.safetensors and OUT/config.json.",
    )
    s = kinds.add_parser(
        "student",
        help="a base-pretrained student (tint distill --init), on the base glyph classes",
        description="Train a student network to classify the base glyph classes from fresh "
        "renderings, as a starting point for distillation (tint distill --init OUT). Saves "
        "OUT/student.safetensors and OUT/student.json.",
    )
    s.add_argument("--arch", default="conv4", help=f"{', '.join(ARCHITECTURES)} (default conv4)")
    s.add_argument("--width", type=_positive_float, default=1.0, help="channel multiplier")
    for parser, defaults, kind in (
        (t, TEACHER_TRAINING, "teacher"),
        (s, STUDENT_TRAINING, "student"),
    ):
        parser.add_argument("--out", required=True, help="output directory (new, or --resume)")
        parser.add_argument(
            "--steps",
            type=_positive_int,
            default=defaults.steps,
            help=f"training steps (default {defaults.steps})",
        )
        parser.add_argument(
            "--batch",
            type=_positive_int,
            default=defaults.batch,
            help=f"images per step (default {defaults.batch})",
        )
        parser.add_argument(
            "--lr",
            type=_positive_float,
            default=defaults.lr,
            help=f"peak learning rate (default {defaults.lr})",
        )
        parser.add_argument(
            "--checkpoint-every",
            type=_positive_int,
            default=defaults.checkpoint_every,
            help=f"steps between checkpoints (default {defaults.checkpoint_every})",
        )
        parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (0)")
        parser.add_argument("--threads", type=_positive_int, help="CPU threads for torch")
        parser.add_argument(
            "--resume", action="store_true", help="continue from OUT's last checkpoint"
        )
        parser.add_argument("--quiet", action="store_true", help="no progress bars")
        parser.set_defaults(run=_run_pretrain_classifier, network=kind)


def _run_pretrain_classifier(args) -> None:
    import dataclasses

    import torch

    from tint import world
    from tint.models.classifier_training import pretrain_classifier
    from tint.models.resnet import ResNet
    from tint.models.students import Student

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.network == "teacher":
        network, net, defaults = ResNet, world.teacher_network(), world.TEACHER_TRAINING
    else:
        network, defaults = Student, world.STUDENT_TRAINING
        net = world.student_network(args.arch, args.width)
    config = dataclasses.replace(
        defaults,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    state = pretrain_classifier(
        args.out,
        network,
        net,
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
    p.add_argument(
        "--pictures", help="also write base-samples.png and novel-samples.png to this folder"
    )
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
    from tint.run_folder import check_writable

    for folder in (args.workdir, args.pictures):
        if folder:
            check_writable(folder)
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
        model,
        teacher,
        settings,
        config,
        workdir=args.workdir,
        progress=not args.quiet,
        pictures=args.pictures,
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
    _add_distill(sub)
    _add_benchmark(sub)
    _add_plan(sub)
    _add_bench(sub)
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
        return _fail(args.command, str(e))
    except OSError as e:
        from tint.storage import describe_os_error

        return _fail(args.command, describe_os_error(e))
    except MemoryError:
        return _fail(args.command, "out of memory (try a smaller --batch or fewer images)")
    except KeyboardInterrupt:
        print(
            f"tint {args.command}: interrupted (finished work is kept; use --resume)",
            file=sys.stderr,
        )
        return 130
    except Exception as e:
        if os.environ.get("TINT_DEBUG"):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return _fail(
            args.command,
            f"unexpected {type(e).__name__}: {first} (TINT_DEBUG=1 shows where; please report it)",
        )
    return 0


def _fail(command: str, message: str) -> int:
    print(f"tint {command}: error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
