"""The base pool: images of other classes than the task's (a dataset's base split, the diffusion
model's own training data, or any unlabelled folder; labels are never read), which the mined
sources draw from, with their teacher embeddings computed once.

    BasePool.from_split(dataset, size, backbone)   `tint benchmark`: the base split
    BasePool.from_files(folder or list, backbone)   `tint distill --base DIR|LIST`"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from tint.data.augment import AugmentConfig
from tint.data.datasets import open_dataset
from tint.data.images import as_float, load_rgb, to_tensor
from tint.errors import TintError
from tint.io import seeds
from tint.io.progress import bar
from tint.io.storage import check_directory
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
    def from_files(cls, where, backbone: Backbone, progress: bool = True) -> BasePool:
        """Every image under a folder (at any depth; folder names are ignored, hidden files
        skipped), or every file a text file lists one a line (relative to the list's folder), in
        sorted or listed order. Files that are not readable images are counted and skipped, said
        in one line; none readable is an error."""
        paths = image_paths(where)
        size, images, skipped = backbone.input_size, [], []
        for path in bar(paths, "base pool", progress, unit="img"):
            try:
                images.append(_uint8(to_tensor(load_rgb(path), size)))
            except TintError as e:
                skipped.append(str(e))
        if not images:
            first = f": {skipped[0]}" if skipped else ""
            raise TintError(f"{where}: no readable image in the base pool{first}")
        if skipped:
            print(
                f"base pool: skipped {len(skipped)} of {len(paths)} files that are not readable "
                f"images (the first: {skipped[0]})",
                file=sys.stderr,
            )
        return cls(torch.stack(images), backbone)

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


def image_paths(where) -> list[Path]:
    """The files of a base pool: a folder's at any depth (hidden ones left out), sorted, or
    those a text file lists, one a line (blank lines and # comments skipped)."""
    where = Path(where).expanduser()
    if where.is_file():
        try:
            lines = where.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise TintError(f"{where}: not a readable list of image paths ({e})") from None
        listed = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        return [where.parent / p for p in listed]
    root = check_directory(where)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _uint8(x: torch.Tensor) -> torch.Tensor:
    return (x * 255).round().to(torch.uint8)
