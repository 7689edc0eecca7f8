"""The base pool: images of other classes than the task's (a dataset's base split, the diffusion
model's own training data, or any unlabelled folder; labels are never read), which the mined
sources draw from, with their teacher embeddings computed once.

    BasePool.from_split(dataset, size, backbone)   `tint benchmark`: the base split
    BasePool.from_folder(directory, backbone)       `tint distill --base DIR`"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tint.data.augment import AugmentConfig
from tint.data.datasets import open_dataset
from tint.data.images import as_float, find_class_folders, load_rgb, to_tensor
from tint.io import seeds
from tint.io.progress import bar
from tint.models.teachers import Backbone
from tint.train.distill import labelled_views


class BasePool:
    """Base images (uint8 at the teacher's input size) and their normalised teacher embeddings."""

    def __init__(self, images: torch.Tensor, backbone: Backbone, batch: int = 256):
        self.images, self.backbone = images, backbone  # (M, 3, H, W) uint8
        with torch.no_grad():
            self.embeddings = torch.cat([self._embed(x) for x in images.split(batch)])
        self._views: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_split(
        cls, dataset: str, size: int, backbone: Backbone, *, progress: bool = True
    ) -> BasePool:
        """`size` images of a dataset's base split, spread evenly over its classes (one each at
        least), in the split's class order."""
        base = open_dataset(dataset, "base")
        per_class = max(1, size // len(base.classes))
        images = []
        for name, ids in bar(base.classes.items(), "base pool", progress):
            for file_id in ids[:per_class]:
                images.append(_uint8(to_tensor(base.image(name, file_id), backbone.input_size)))
        return cls(torch.stack(images), backbone)

    @classmethod
    def from_folder(cls, directory, backbone: Backbone) -> BasePool:
        """Every image under a folder (flat, or class folders whose names are ignored), in the
        folders' sorted order."""
        paths = [p for files in find_class_folders(directory).values() for p in files]
        size = backbone.input_size
        return cls(torch.stack([_uint8(to_tensor(load_rgb(p), size)) for p in paths]), backbone)

    def __len__(self) -> int:
        return len(self.images)

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.backbone.embed(as_float(images)), dim=1)

    @torch.no_grad()
    def nearest(self, supports: torch.Tensor, count: int) -> torch.Tensor:
        """Indices of the `count` pool images nearest to the supports (K, 3, H, W) under the
        backbone's features, taken round-robin so each support gets its own neighbours."""
        similarity = self._embed(supports) @ self.embeddings.T  # (K, M)
        ranked = similarity.argsort(1, descending=True)
        chosen: list[int] = []
        seen: set[int] = set()
        for column in ranked.T.tolist():
            for i in column:
                if i not in seen:
                    seen.add(i)
                    chosen.append(i)
                if len(chosen) == count:
                    return torch.tensor(chosen)
        return torch.tensor(chosen)

    def views(
        self, count: int, seed: int, augmentation: AugmentConfig
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`count` augmented views of every image (uint8) and their normalised embeddings, made
        once for all the tasks that ask: a task's teacher labels them through its head alone."""
        key = (count, seed)
        if key not in self._views:
            g = seeds.generator(seed, "base-views")
            self._views[key] = labelled_views(self._embed, self.images, count, g, augmentation)
        return self._views[key]


def _uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().to(torch.uint8)
