"""TINT on disk: the in-memory stages of `tint.diffusion.generation`, with each finished stage
saved and found again, and the images written with their manifest.

    OUT/specialization/<class>/...   see tint.diffusion.specialization
    OUT/images/<class>/00000.png     each at the size of the support it came from
    OUT/manifest.json                {"images": [{"path", "class", "support", "alpha", "seed"}]}
    OUT/run.json                     the settings of the run, checked by --resume

Finished work is found on disk and reused when `resume` is set; each image depends only on
(seed, class, index), so a resumed or re-batched run makes the same images."""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from tint.data.images import LabelledImage, load_class_folders
from tint.diffusion import textual_inversion
from tint.diffusion.generation import (
    GenerateConfig,
    class_tokens,
    encode_supports,
    invert_supports,
    learn_tokens,
    plan_images,
    render,
    stage_settings,
    working_size,
)
from tint.diffusion.memory import FittingBatch
from tint.diffusion.model import DiffusionModel
from tint.diffusion.specialization import Specialization, TokenEmbedding
from tint.io.run_folder import RunFolder
from tint.io.storage import read_json_object, write_json, write_png


def specialize_to(
    directory: str | Path,
    model: DiffusionModel,
    classes: dict[str, list[LabelledImage]],
    config: GenerateConfig,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Specialization]:
    """`generation.specialize`, saved under directory/<class> stage by stage. With `resume`,
    stages already there with the same settings are loaded instead of computed."""
    directory = Path(directory)
    config.validate()
    tokens = class_tokens(model, classes)
    loaded, embeddings = {}, {}
    for name, images in classes.items():
        first, second = stage_settings(model, images, tokens[name], config)
        folder = directory / name
        if resume and Specialization.exists(folder):
            spec = Specialization.load(folder)
            if spec.settings == second:
                loaded[name] = spec
                continue
        if resume and (folder / "textual_inversion.json").is_file():
            saved = TokenEmbedding.load(folder)
            if saved.settings == first:
                embeddings[name] = saved
    embeddings.update({n: s.token_embedding for n, s in loaded.items()})
    to_train = _group(directory, "textual-inversion", classes, embeddings)
    to_invert = _group(directory, "null-text", classes, loaded)
    size = working_size(model, config)
    latents = {n: encode_supports(model, classes[n], size) for n in {*to_train, *to_invert}}
    if to_train:
        group = {n: classes[n] for n in to_train}
        learned = learn_tokens(model, group, tokens, config, latents, progress=progress)
        for name, embedding in learned.items():
            if name not in embeddings:
                embeddings[name] = embedding
                embedding.save(directory / name)
        _group_done(directory, "textual-inversion")
    done = [embeddings[n] for n in classes]
    textual_inversion.set_embeddings(
        model, [e.token for e in done], torch.stack([e.embedding for e in done])
    )
    if to_invert:
        group = {n: classes[n] for n in to_invert}
        inverted = invert_supports(model, group, embeddings, config, latents, progress=progress)
        for name, spec in inverted.items():
            if name not in loaded:
                loaded[name] = spec
                spec.save(directory / name)
        _group_done(directory, "null-text")
    return {name: loaded[name] for name in classes}


def _group(directory: Path, stage: str, classes: dict, done: dict) -> list[str]:
    """The classes a batched stage computes together: those not `done`, or, if a run was killed
    while saving this stage's results class by class, the whole group that run computed. A
    batch's rounding depends on what is in it, so computing the same group again gives every
    class the numbers an uninterrupted run gives it. The group is recorded until it is saved."""
    record = directory / f".{stage}-group.json"
    needed = [n for n in classes if n not in done]
    if not needed:
        return []
    if record.is_file():
        group = read_json_object(record, "group record").get("classes")
        if isinstance(group, list) and set(needed) <= set(group) <= set(classes):
            return group
    write_json(record, {"classes": needed})
    return needed


def _group_done(directory: Path, stage: str) -> None:
    (directory / f".{stage}-group.json").unlink(missing_ok=True)


def generate(
    support_dir: str | Path | dict[str, list[LabelledImage]],
    out: str | Path,
    model: DiffusionModel,
    config: GenerateConfig,
    resume: bool = False,
    progress: bool = True,
    specialization_dir: str | Path | None = None,
    settings: dict | None = None,
    may_change: tuple[str, ...] = ("num",),
) -> dict:
    """Specialise to every class of `support_dir` (a class-folder tree, or its classes already
    read) and write `config.num` images per class to `out`; returns the manifest. All input is
    checked before anything is written. Specialisations go to `specialization_dir` (default
    OUT/specialization): runs that share one reuse each other's finished work.

    Args:
        settings: what OUT/run.json records and a resumed run must repeat (default: the
            generation settings and the model's folder); `may_change` names those a resumed run
            may change (more images extend a run).
    """
    config.validate()
    out = Path(out)
    classes = support_dir if isinstance(support_dir, dict) else load_class_folders(support_dir)
    working_size(model, config)
    if settings is None:
        from tint.config import to_dict

        settings = {"model": model.fingerprint["path"], **to_dict(config)}
    with RunFolder(out, settings, resume, may_change=may_change):
        specialization_dir = Path(specialization_dir or out / "specialization")
        specs = specialize_to(specialization_dir, model, classes, config, resume, progress)
        entries = plan_images(specs, config)
        # Images are made in fixed batches of the plan, so a resumed run renders exactly the
        # batches an uninterrupted one does (a batch's rounding depends on what is in it).
        batches = [entries[i : i + config.batch] for i in range(0, len(entries), config.batch)]
        todo = [b for b in batches if not all((out / e["path"]).is_file() for e in b)]
        fitting = FittingBatch(config.batch, "generation")
        with tqdm(total=len(entries), desc="generating", unit="img", disable=not progress) as bar:
            bar.update(len(entries) - sum(len(b) for b in todo))
            for batch in todo:
                for part, images in fitting.slices(
                    len(batch), lambda p, b=batch: render(model, specs, b[p], config)
                ):
                    for entry, image in zip(batch[part], images):
                        if not (out / entry["path"]).is_file():
                            write_png(out / entry["path"], image)
                    bar.update(len(images))
        manifest = {
            "images": entries,
            "classes": {
                name: {
                    "token": s.token_embedding.token,
                    "prompt": s.token_embedding.prompt,
                    "supports": s.supports,
                }
                for name, s in specs.items()
            },
            "settings": {**settings, "resolution": list(working_size(model, config))},
        }
        write_json(out / "manifest.json", manifest)
    return manifest
