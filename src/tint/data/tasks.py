"""A few-shot task as the pipeline takes it: support images per class, a seed, and optionally
the held-out images its students are scored on.

    Task.from_folder(dir)             a user's class folders (`tint distill`)
    Task.from_mapping({name: images}) classes given in Python (`tint.distill`)
    episode_task(dataset, episode)    an episode of a benchmark, its supports written as PNG

Specialisation reads supports as files (their names are part of what a saved stage is reused
for), so every task's supports are `LabelledImage`s with a path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tint.config import SettingError
from tint.data.images import LabelledImage, find_class_folders, load_rgb, shrunk, to_tensor
from tint.errors import TintError
from tint.io import seeds
from tint.io.storage import write_png


@dataclass
class Task:
    """Support images per class (in label order), the seed that varies everything made for the
    task, and the held-out images it is scored on (an episode's queries, `--eval`'s images)."""

    classes: list[str]
    supports: dict[str, list[LabelledImage]]
    seed: int = 0
    queries: torch.Tensor | None = None  # (Q, 3, H, W) in [0, 1]
    query_labels: torch.Tensor | None = None  # (Q,) indices into classes

    def support_tensor(self, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Every support at `size`, (K, 3, H, W) in [0, 1], class by class, and its labels."""
        per_class = [
            torch.stack([to_tensor(im.image, size) for im in self.supports[c]])
            for c in self.classes
        ]
        counts = torch.tensor([len(x) for x in per_class])
        return torch.cat(per_class), torch.arange(len(per_class)).repeat_interleave(counts)

    @classmethod
    def from_folder(cls, root, shots: int | None = None, seed: int = 0) -> Task:
        """The class folders of `root` (classes by name), the first `shots` images of each."""
        files = find_class_folders(root)
        _check_classes(root, list(files))
        if shots is not None:
            for name, paths in files.items():
                if len(paths) < shots:
                    raise SettingError(
                        "shots", f"{shots}, but class {name!r} of {root} has {len(paths)} images"
                    )
            files = {name: paths[:shots] for name, paths in files.items()}
        supports = {n: [LabelledImage(p, load_rgb(p)) for p in ps] for n, ps in files.items()}
        return cls(sorted(supports), supports, seed)

    @classmethod
    def from_images(cls, images: dict[str, list[Image.Image]], folder, seed: int = 0) -> Task:
        """Classes given in Python (`checked_images`), in the mapping's order; the images are
        written to folder/<name>/<i>.png once (specialisation reads files)."""
        supports = {}
        for name, items in images.items():
            supports[name] = []
            for i, image in enumerate(items):
                path = Path(folder) / name / f"{i:03d}.png"
                if not path.is_file():
                    write_png(path, image)
                supports[name].append(LabelledImage(path, load_rgb(path)))
        return cls(list(supports), supports, seed)


def held_out_images(held_out, classes: list[str], size: tuple[int, int]):
    """Held-out images of a task's `classes`, (N, 3, H, W) at `size` in [0, 1], and their
    labels: from class folders named like the classes, or {class: images} as `checked_images`
    takes them."""
    if isinstance(held_out, Mapping):
        found = checked_images(held_out, least=1)
        where = "the held-out images"
    else:
        found = {n: list(map(load_rgb, ps)) for n, ps in find_class_folders(held_out).items()}
        where = str(held_out)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise TintError(f"{where}: class {unknown[0]!r} is not one of the supports' classes")
    images, labels = [], []
    for name, items in found.items():
        images += [to_tensor(image, size) for image in items]
        labels += [classes.index(name)] * len(items)
    return torch.stack(images), torch.tensor(labels)


def checked_images(mapping: Mapping[str, list], least: int = 2) -> dict[str, list[Image.Image]]:
    """{class name: images} given in Python (PIL images, or (H, W, 3) or (H, W) uint8 arrays)
    as 8-bit RGB images; raises on a class without images, or fewer than `least` classes."""
    if least > 1:
        _check_classes("the supports", list(mapping))
    images = {}
    for name, items in mapping.items():
        images[str(name)] = [as_image(item) for item in items]
        if not images[str(name)]:
            raise TintError(f"class {name!r} has no images")
    return images


def _check_classes(where, names: list[str]) -> None:
    if len(names) < 2:
        found = ", ".join(names) or "none"
        raise TintError(
            f"{where}: a classifier needs at least 2 classes, found {len(names)} ({found})"
        )


def as_image(item) -> Image.Image:
    """A PIL image, or an (H, W, 3) or (H, W) uint8 array, as 8-bit RGB."""
    if isinstance(item, Image.Image):
        return item.convert("RGB")
    array = np.asarray(item)
    if array.dtype != np.uint8 or not (array.ndim == 2 or array.shape[2:] == (3,)):
        raise TintError(
            "an image must be a PIL image or an (H, W, 3) uint8 array, got an array of shape "
            f"{array.shape} and type {array.dtype}"
        )
    return Image.fromarray(array).convert("RGB")


def episode_task(
    dataset, episode, folder, size: tuple[int, int], seed: int = 0, shrink: int | None = None
) -> Task:
    """An episode of a dataset as a Task: its supports written once as folder/<class>/<id>.png
    (specialisation reads files), its queries read as (Q, 3, H, W) tensors at `size`, and its
    seed a function of the run's seed and the episode's index. With `shrink`, every image is
    first made at most that many pixels a side, as a small photograph is."""
    folder = Path(folder)

    def image(name: str, file_id: str) -> Image.Image:
        read = dataset.image(name, file_id)
        return read if shrink is None else shrunk(read, shrink)

    supports = {}
    for name in episode.classes:
        supports[name] = []
        for file_id in episode.support[name]:
            path = folder / name / (file_id.replace("/", "_").rsplit(".", 1)[0] + ".png")
            if not path.is_file():
                write_png(path, image(name, file_id))
            supports[name].append(LabelledImage(path, load_rgb(path)))
    queries = [
        to_tensor(image(name, file_id), size)
        for name in episode.classes
        for file_id in episode.query[name]
    ]
    labels = [i for i, name in enumerate(episode.classes) for _ in episode.query[name]]
    return Task(
        episode.classes,
        supports,
        task_seed(seed, episode.index),
        torch.stack(queries),
        torch.tensor(labels),
    )


def task_seed(seed: int, index: int) -> int:
    """The seed of episode `index` of a run with `seed`."""
    return seeds.seed_of(seed, index, width=4)
