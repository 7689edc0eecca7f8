"""`tint speed`: how fast TINT specialises and generates, on this machine."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tint.commands import Command, Options
from tint.commands.world import DEFAULT_MODEL, DEFAULT_TEACHER
from tint.config import group, setting
from tint.eval.speed import SpeedConfig


@dataclass
class SpeedSettings:
    model: str | None = setting(None, "Stable Diffusion directory (default: the shipped one)")
    arch: str = setting(
        "tiny",
        "tiny: the model of --model; sd15: Stable Diffusion 1.5's architecture at 512 px with "
        "random weights",
        choices=("tiny", "sd15"),
    )
    compare: str | None = setting(
        None, "reference: also run the reference way and report speed-ups", choices=("reference",)
    )
    pool: int | None = setting(
        None,
        "instead: time a base pool of this many teacher embeddings, its nearest-neighbour "
        "search exhaustive and through faiss (docs/SCALING.md)",
        minimum=100,
    )
    speed: SpeedConfig = group(SpeedConfig, "what is timed", prefix="")


def run(settings: SpeedSettings, options: Options) -> None:
    from tint.eval.speed import load_speed_model, measure_speed

    if settings.pool is not None:
        return run_pool(settings.pool, options)

    config, model_dir = settings.speed, settings.model or DEFAULT_MODEL
    model = load_speed_model(settings.arch, model_dir, config.device, config.dtype)
    reference = None
    if settings.compare and config.dtype != "float32":
        reference = load_speed_model(settings.arch, model_dir, config.device, "float32")
    result = measure_speed(
        model, config, DEFAULT_TEACHER, settings.compare, reference, progress=not options.quiet
    )
    if options.json:
        print(json.dumps(result, indent=2))
        return
    ref = result.get("reference")
    rows = [("", "fast path", "reference", "speed-up")]
    for key, label in (
        ("textual_inversion", "textual inversion (s)"),
        ("null_text_inversion", "null-text inversion (s)"),
        ("generation", f"generation of {config.images} (s)"),
        ("teacher_labels", "teacher's labels (s)"),
        ("distillation", f"distillation, {config.distill.steps} steps (s)"),
    ):
        compared = ref is not None and key in ref["seconds"]
        rows.append(
            (
                label,
                f"{result['seconds'][key]:.2f}",
                f"{ref['seconds'][key]:.2f}" if compared else "",
                f"{result['speedup'][key]:.1f}x" if compared else "",
            )
        )
    for key, label, digits in (
        ("images_per_s", "images/s", 1),
        ("reconstruction_psnr", "reconstruction PSNR (dB)", 2),
    ):
        rows.append(
            (label, f"{result[key]:.{digits}f}", f"{ref[key]:.{digits}f}" if ref else "", "")
        )
    print(
        f"{result['device']}, {config.dtype} weights, {result['precision']} generation, "
        f"{result['inversion_precision']} inversions"
    )
    for row in rows:
        print(f"{row[0]:<28}{row[1]:>12}{row[2]:>12}{row[3]:>10}")
    print(f"peak memory {result['peak_memory_mb']:.0f} MB, {result['tflops']:.4f} TFLOP/s")
    print(
        f"generation {result['generation_tflops']:.4f} TFLOP/s, "
        f"{result['generation_share_of_peak']:.0%} of this machine's float32 matmul peak "
        f"({result['float32_matmul_peak_tflops']:.4f} TFLOP/s)"
    )
    if "compile_s" in result:
        print(f"compiling: a first pass of {result['compile_s']:.0f} s, not in the figures above")


def run_pool(size: int, options: Options) -> None:
    from tint.eval.pool_speed import measure_pool

    result = measure_pool(size, DEFAULT_TEACHER)
    if options.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['pool']:,} embeddings of {result['dim']}, {result['queries']} queries of the "
        f"{result['k']} nearest; the teacher embeds {result['embedding_images_per_s']:,} images/s"
    )
    print(
        f"exhaustive: {result['embeddings_mb']} MB, {result['exhaustive_query_s']:.4f} s a search"
    )
    print(
        f"faiss HNSW: built in {result['faiss_build_s']:.1f} s, {result['faiss_index_mb']} MB "
        f"more, {result['faiss_query_s']:.4f} s a search, {result['faiss_recall']:.1%} of the "
        "exhaustive neighbours"
    )


COMMAND = Command(
    name="speed",
    names=("bench",),
    help="measure TINT's speed: specialisation, images/s, distillation, memory, TFLOP/s",
    description="Specialise to one N-way K-shot task (textual inversion at a fixed step count, "
    "null-text inversion of every support), generate images and distil a student from them, "
    "timing each stage with the functions `tint generate` and `tint distill` run; reports "
    "peak memory and the model TFLOP/s achieved. "
    "--compare reference also runs the reference way (batch 1, float32, one class, support and "
    "image at a time) on the same inputs and reports the speed-up and the quality difference.",
    settings=SpeedSettings,
    base=SpeedSettings,
    run=run,
    options=("quiet", "json", "threads"),
    aliases={"--steps": "speed.generation.ddim_steps"},
)
