"""TINT on disk: the in-memory stages of `tint.diffusion.generation`, with each finished stage
saved and found again, and the images written with their manifest.

    OUT/specialization/<class>/...   see tint.diffusion.specialization
    OUT/images/<class>/00000.png     each at the size of the support it came from
    OUT/manifest.json                {"images": [{"path", "class", "support", "alpha", "seed"}]}
    OUT/run.json                     the settings of the run, checked by --resume

Finished work is found on disk and reused when `resume` is set; each image depends only on
(seed, class, index), so a resumed or re-batched run makes the same images."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from tint.data.images import LabelledImage, load_class_folders
from tint.diffusion import lora, textual_inversion
from tint.diffusion.generation import (
    GenerateConfig,
    arithmetic,
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
from tint.diffusion.model import DTYPES, DiffusionModel
from tint.diffusion.specialization import Specialization, TokenEmbedding
from tint.io import seeds
from tint.io.cluster import Cluster, failed, kept, run_tasks
from tint.io.progress import bar
from tint.io.run_folder import RunFolder
from tint.io.stages import stage
from tint.io.storage import read_json_object, write_json, write_png


def specialize_to(
    directory: str | Path,
    model: DiffusionModel,
    classes: dict[str, list[LabelledImage]],
    config: GenerateConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    tokens: dict[str, str] | None = None,
) -> dict[str, Specialization]:
    """`generation.specialize`, saved under directory/<class> stage by stage. With `resume`,
    stages already there with the same settings are loaded instead of computed. `tokens`: the
    classes' tokens, when they were chosen with other classes' (see `class_tokens`)."""
    directory = Path(directory)
    config.validate()
    tokens = tokens or class_tokens(model, classes)
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
    shard = next(iter(classes))  # names the records of shards that run side by side
    to_train = _group(directory, "textual-inversion", shard, classes, embeddings)
    to_invert = _group(directory, "null-text", shard, classes, loaded)
    size = working_size(model, config)
    latents = {n: encode_supports(model, classes[n], size, config) for n in {*to_train, *to_invert}}
    if to_train:
        group = {n: classes[n] for n in to_train}
        with stage("textual_inversion"):
            learned = learn_tokens(model, group, tokens, config, latents, progress=progress)
        for name, embedding in learned.items():
            if name not in embeddings:
                embeddings[name] = embedding
                embedding.save(directory / name)
        _group_done(directory, "textual-inversion", shard)
    done = [embeddings[n] for n in classes]
    textual_inversion.set_embeddings(
        model, [e.token for e in done], torch.stack([e.embedding for e in done])
    )
    if to_invert:
        group = {n: classes[n] for n in to_invert}
        with stage("null_text_inversion"):
            inverted = invert_supports(model, group, embeddings, config, latents, progress=progress)
        for name, spec in inverted.items():
            if name not in loaded:
                loaded[name] = spec
                spec.save(directory / name)
        _group_done(directory, "null-text", shard)
    return {name: loaded[name] for name in classes}


def group_record(directory: Path, stage: str, shard: str) -> Path:
    """Where a stage records the group of a shard (named by its first class) until it is saved."""
    return directory / f".{stage}-group-{seeds.seed_of(shard, width=4):08x}.json"


def _group(directory: Path, stage: str, shard: str, classes: dict, done: dict) -> list[str]:
    """The classes a batched stage computes together: those not `done`, or, if a run was killed
    while saving this stage's results class by class, the whole group that run computed. A
    batch's rounding depends on what is in it, so computing the same group again gives every
    class the numbers an uninterrupted run gives it. The group is recorded until it is saved."""
    record = group_record(directory, stage, shard)
    needed = [n for n in classes if n not in done]
    if not needed:
        return []
    if record.is_file():
        group = read_json_object(record, "group record").get("classes")
        if isinstance(group, list) and set(needed) <= set(group) <= set(classes):
            return group
    write_json(record, {"classes": needed})
    return needed


def _group_done(directory: Path, stage: str, shard: str) -> None:
    group_record(directory, stage, shard).unlink(missing_ok=True)


def generate(
    support_dir: str | Path | dict[str, list[LabelledImage]],
    out: str | Path,
    model: DiffusionModel,
    config: GenerateConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    specialization_dir: str | Path | None = None,
    settings: dict | None = None,
    may_change: tuple[str, ...] = ("num",),
    cluster: Cluster | None = None,
    worker_model: ModelPlace | None = None,
    partners: dict[str, str] | None = None,
) -> dict:
    """Specialise to every class of `support_dir` (a class-folder tree, or its classes already
    read) and write `config.num` images per class to `out`; returns the manifest. All input is
    checked before anything is written. Specialisations go to `specialization_dir` (default
    OUT/specialization): runs that share one reuse each other's finished work.

    Classes are specialised and rendered in shards of `config.classes_per_shard` (all in one
    with `config.boundary`, whose images need their partner class's token), one after the
    other, or each shard as a Ray task on `cluster`. Its workers load the model as
    `worker_model` says (default: as `model` was loaded), and read and write these folders:
    they must see the same paths. The bytes are the same either way.

    Args:
        settings: what OUT/run.json records and a resumed run must repeat (default: the
            generation settings and the model's folder); `may_change` names those a resumed run
            may change (more images extend a run).
        partners: each class's partner class, for `config.boundary`.
    """
    config.validate()
    out = Path(out)
    classes = support_dir if isinstance(support_dir, dict) else load_class_folders(support_dir)
    working_size(model, config)
    if settings is None:
        from tint.config import to_dict

        settings = {"model": model.fingerprint["path"], **to_dict(config)}
    if cluster is not None:
        cluster.start()
    with RunFolder(out, settings, resume, may_change=may_change):
        specialization_dir = Path(specialization_dir or out / "specialization")
        tokens = class_tokens(model, classes)
        names = list(classes)
        size = len(names) if config.boundary is not None else config.classes_per_shard
        shards = [
            Shard(
                {n: classes[n] for n in names[i : i + size]},
                out,
                specialization_dir,
                config,
                {n: tokens[n] for n in names[i : i + size]},
                resume,
                partners,
            )
            for i in range(0, len(names), size)
        ]
        if cluster is None:
            for shard in shards:
                shard.make(model, progress)
        else:
            # Workers get absolute paths: a worker's working directory is not this process's.
            where = worker_model or ModelPlace.of(model)
            where = dataclasses.replace(where, path=os.path.abspath(where.path))
            jobs = [(i, (where, shard.absolute())) for i, shard in enumerate(shards)]
            shared = [where.path, os.path.abspath(out)]
            failures = run_tasks(
                cluster,
                make_shard,
                jobs,
                lambda i, r: None,
                "shards",
                progress=progress,
                shared=shared,
            )
            if failures:
                raise failed(failures, "shard", len(shards), str(out))
        specs = specialize_to(
            specialization_dir, model, classes, config, resume=True, progress=False, tokens=tokens
        )
        manifest = {
            "images": plan_images(specs, config, partners),
            "classes": {
                name: {
                    "token": s.token_embedding.token,
                    "prompt": s.token_embedding.prompt,
                    "supports": s.supports,
                }
                for name, s in specs.items()
            },
            "settings": {
                **settings,
                "resolution": list(working_size(model, config)),
                "arithmetic": arithmetic(model, config),
            },
        }
        write_json(out / "manifest.json", manifest)
    return manifest


@dataclass
class Shard:
    """Classes specialised together, then rendered in fixed batches of their plan."""

    classes: dict[str, list[LabelledImage]]
    out: Path
    specialization_dir: Path
    config: GenerateConfig
    tokens: dict[str, str]
    resume: bool
    partners: dict[str, str] | None = None  # for config.boundary

    def absolute(self) -> Shard:
        """This shard with absolute paths, for a worker that may start anywhere."""
        return dataclasses.replace(
            self, out=self.out.absolute(), specialization_dir=self.specialization_dir.absolute()
        )

    def make(self, model: DiffusionModel, progress: bool) -> None:
        config, out = self.config, self.out
        specs = specialize_to(
            self.specialization_dir,
            model,
            self.classes,
            config,
            resume=self.resume,
            progress=progress,
            tokens=self.tokens,
        )
        entries = plan_images(specs, config, self.partners)
        if config.generator == "lora":  # rendered through the adapters, not the plain UNet
            plain, size = model, working_size(model, config)
            model = lora.specialized(
                self.specialization_dir,
                plain,
                self.classes,
                specs,
                lambda: {
                    n: encode_supports(plain, c, size, config) for n, c in self.classes.items()
                },
                config,
                resume=self.resume,
                progress=progress,
            )
        # Images are made in fixed batches of the plan, so a resumed run renders exactly the
        # batches an uninterrupted one does (a batch's rounding depends on what is in it).
        batches = [entries[i : i + config.batch] for i in range(0, len(entries), config.batch)]
        todo = [b for b in batches if not all((out / e["path"]).is_file() for e in b)]
        fitting = FittingBatch(config.batch, "generation")
        shown = bar(total=len(entries), desc="generating", show=progress, unit="img")
        with shown, stage("generation"):
            shown.update(len(entries) - sum(len(b) for b in todo))
            for batch in todo:
                for part, images in fitting.slices(
                    len(batch), lambda p, b=batch: render(model, specs, b[p], config)
                ):
                    for entry, image in zip(batch[part], images):
                        if not (out / entry["path"]).is_file():
                            write_png(out / entry["path"], image)
                    shown.update(len(images))


@dataclass(frozen=True)
class ModelPlace:
    """Where a worker finds the model, and how it holds it."""

    path: str
    device: str = "cpu"
    dtype: str = "float32"

    @classmethod
    def of(cls, model: DiffusionModel) -> ModelPlace:
        dtype = next(name for name, d in DTYPES.items() if d == model.dtype)
        return cls(str(model.path), str(model.device), dtype)


def make_shard(job: tuple[ModelPlace, Shard]) -> None:
    """One shard in a Ray worker, which keeps the model it loaded for the shards that follow."""
    where, shard = job
    model = kept(where, lambda: DiffusionModel.load(where.path, where.device, where.dtype))
    shard.make(model, progress=False)
