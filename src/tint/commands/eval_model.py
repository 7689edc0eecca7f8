"""`tint eval-model`: the quality figures of a glyph diffusion model and its base teacher."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tint.commands import Command, Options
from tint.commands.world import DEFAULT_MODEL, DEFAULT_TEACHER
from tint.config import group, setting
from tint.eval.model_quality import QualitySettings


@dataclass
class EvalModelSettings:
    model: str | None = setting(None, "diffusion model directory (default: the shipped one)")
    teacher: str | None = setting(None, "base teacher directory (default: the shipped one)")
    workdir: str | None = setting(None, "keep the specialisations here and reuse them")
    pictures: str | None = setting(
        None, "also write base-samples.png and novel-samples.png to this folder"
    )
    quality: QualitySettings = group(QualitySettings, "what is measured", prefix="")


def run(settings: EvalModelSettings, options: Options) -> None:
    from tint.diffusion.model import DiffusionModel
    from tint.eval.model_quality import TINT, evaluate
    from tint.io.run_folder import check_writable
    from tint.models.resnet import ResNet
    from tint.pipeline.recipe import DISTILL_ALPHA

    for folder in (settings.workdir, settings.pictures):
        if folder:
            check_writable(folder)
    model = DiffusionModel.load(settings.model or DEFAULT_MODEL)
    teacher = ResNet.from_pretrained(settings.teacher or DEFAULT_TEACHER)
    result = evaluate(
        model,
        teacher,
        settings.quality,
        workdir=settings.workdir,
        progress=not options.quiet,
        pictures=settings.pictures,
    )
    if options.json:
        print(json.dumps(result, indent=2))
        return
    fid = result["base_fidelity"]
    print(
        f"base fidelity        top-1 {fid['top1']:.3f}  top-5 {fid['top5']:.3f} "
        f"({fid['classes']} classes x {settings.quality.per_base_class})"
    )
    print(f"VAE round trip       {result['vae_psnr']:.2f} dB")
    print(f"TINT alpha 0         {result['reconstruction_psnr']:.2f} dB")
    for name, scores in result["novel_fidelity"].items():
        print(f"novel fidelity {name:<9} random {scores['random']:.3f}  hard {scores['hard']:.3f}")
    copy = result["copy_distance"]
    print(
        f"distance to nearest support: TINT {DISTILL_ALPHA} {copy[TINT]:.3f}, "
        f"real held-out {copy['real']:.3f}"
    )


COMMAND = Command(
    name="eval-model",
    help="measure the quality figures of a glyph diffusion model and base teacher",
    description="Base fidelity (teacher top-1/top-5 on images generated from base-class "
    "prompts), the VAE's round-trip and TINT's alpha-0 reconstruction PSNR, novel fidelity "
    "(TINT and textual-inversion images of the classes of random and hard novel episodes, "
    "classified by the teacher's prototype head on the episode's supports) and the distance of "
    "generated images to their nearest support.",
    settings=EvalModelSettings,
    base=EvalModelSettings,
    run=run,
    options=("quiet", "json"),
    aliases={"--steps": "quality.generation.ddim_steps"},
)
