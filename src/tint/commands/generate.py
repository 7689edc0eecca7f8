"""`tint generate`: specialise a diffusion model to your classes with TINT and generate images."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from tint.commands import Command, Options
from tint.commands.world import DEFAULT_MODEL
from tint.config import SettingError, group, setting, to_dict
from tint.diffusion.generation import PRESETS, GenerateConfig
from tint.diffusion.model import DTYPES, MODEL_CONFIG_HELP, MODEL_HELP


@dataclass
class GenerateSettings:
    support_dir: str | None = setting(
        None,
        "one sub-folder of images per class (a flat folder of images is one class)",
        positional=True,
    )
    out: str | None = setting(None, "output directory (new, or with --resume)")
    model: str | None = setting(None, MODEL_HELP)
    model_config: str | None = setting(None, MODEL_CONFIG_HELP)
    device: str = setting("cpu", "cpu or cuda[:N]")
    dtype: str = setting("float32", "precision of the UNet and VAE", choices=tuple(DTYPES))
    preset: str = setting(
        "fast",
        "textual inversion: fast (300 steps of 4 images at lr 5e-3), or reference (the paper's "
        "5000 steps of 1 at 1e-3); --ti-* flags override it",
        choices=tuple(PRESETS),
    )
    generation: GenerateConfig = group(GenerateConfig, "TINT", prefix="")


def check(settings: GenerateSettings, flags: set[str], given: set[str]) -> GenerateSettings:
    """Flags that contradict each other; the preset's textual inversion where neither the
    flags nor the settings file (`given`) set it."""
    g = settings.generation
    if g.random_alpha and "generation.alpha" in flags:
        raise SettingError("generation.alpha", "contradicts --random-alpha: give one")
    if g.generator in ("ti", "lora") and flags & {"generation.alpha", "generation.random_alpha"}:
        raise SettingError(
            "generation.alpha", f"does not apply to --generator {g.generator} (fresh noise)"
        )
    preset = PRESETS[settings.preset]
    ti = {
        f.name: getattr(g.ti if f"generation.ti.{f.name}" in given else preset, f.name)
        for f in dataclasses.fields(g.ti)
    }
    return dataclasses.replace(
        settings, generation=dataclasses.replace(g, ti=dataclasses.replace(g.ti, **ti))
    )


def run(settings: GenerateSettings, options: Options) -> None:
    from tint.data.images import load_class_folders
    from tint.diffusion.model import DiffusionModel, check_model_dir
    from tint.diffusion.pipeline import ModelPlace, generate
    from tint.io.run_folder import RunFolder

    settings.generation.validate()
    model_dir = check_model_dir(settings.model or DEFAULT_MODEL, settings.model_config)
    classes = load_class_folders(settings.support_dir)  # bad images fail before the model loads
    RunFolder(settings.out, None, options.resume).check()
    place = ModelPlace(str(model_dir), settings.device, settings.dtype)
    with options.cluster() as cluster:
        # With Ray, the workers hold the model as asked; this process only plans, on its CPU.
        model = DiffusionModel.load(
            model_dir, *((place.device, place.dtype) if cluster is None else ())
        )
        manifest = generate(
            classes,
            settings.out,
            model,
            settings.generation,
            resume=options.resume,
            progress=not options.quiet,
            settings=to_dict(settings),
            may_change=("out", "generation.num"),
            cluster=cluster,
            worker_model=place,
        )
    out = Path(settings.out)
    print(
        f"wrote {len(manifest['images'])} images of {len(manifest['classes'])} classes to "
        f"{out / 'images'} (manifest: {out / 'manifest.json'})"
    )


COMMAND = Command(
    name="generate",
    help="specialise a diffusion model to your classes (TINT) and generate images",
    description="Specialise a Stable-Diffusion-format model to each class of SUPPORT_DIR with "
    "textual inversion + null-text inversion, then generate --num new images per class. "
    "Writes OUT/images/<class>/*.png, OUT/specialization/<class>/, OUT/manifest.json and "
    "OUT/run.json (the settings: --config OUT/run.json repeats the run).",
    settings=GenerateSettings,
    base=GenerateSettings,
    run=run,
    options=("resume", "quiet", "threads", "ray", "task_cpus", "task_gpus"),
    task_unit="shard",
    required=("support_dir", "out"),
    aliases={
        "--steps": "generation.ddim_steps",
        "--cfg": "generation.guidance",
        "--min-timestep": "generation.ti.min_timestep",
        "--template": "generation.ti.template",
        "--init-word": "generation.ti.init_word",
    },
    check=check,
)
