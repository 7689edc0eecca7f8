"""The base pool: images of other classes than the task's (a dataset's base split, the diffusion
model's own training data, or any unlabelled folder; labels are never read), which the mined
sources draw from, with their teacher embeddings computed once.

    BasePool.from_split(dataset, size, backbone)   `tint benchmark`: the base split
    BasePool.from_files(folder or list, backbone)   `tint distill --base DIR|LIST`"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from tint.data.augment import AugmentConfig
from tint.data.datasets import open_dataset
from tint.data.images import as_float, load_rgb, to_tensor
from tint.errors import TintError
from tint.io import seeds
from tint.io.pretrained import user_cache
from tint.io.progress import bar
from tint.io.storage import check_directory, read_safetensors, write_safetensors
from tint.models.teachers import Backbone
from tint.train.distill import labelled_views

SHARD = 4096  # images per cached file of embeddings: a multiple of the embedding batch
FAISS_ABOVE = 2_000_000  # larger pools are searched through faiss (docs/SCALING.md says why)


class BasePool:
    """Base images (uint8 at the teacher's input size) and their normalised teacher embeddings,
    computed once: with a `cache` folder, in shards of SHARD images written there as they are
    made (resumable), and found there again by every later pool of the same images and teacher.
    The nearest images of a large pool are searched through a faiss index (HNSW), exhaustively
    below `faiss_above`."""

    def __init__(
        self,
        images: torch.Tensor,
        backbone: Backbone,
        cache: Path | None = None,
        *,
        progress: bool = False,
        faiss_above: int = FAISS_ABOVE,
    ):
        self.images, self.backbone = images, backbone  # (M, 3, H, W) uint8
        self.faiss_above, self._index = faiss_above, None
        self.embeddings = self._embed_all(cache, progress)
        self._views: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def _embed_all(self, cache: Path | None, progress: bool, batch: int = 256) -> torch.Tensor:
        folder = None if cache is None else writable(cache / self._key())
        parts = []
        shown = bar(total=len(self.images), desc="embedding the base pool", show=progress)
        with shown:
            for i, shard in enumerate(self.images.split(SHARD)):
                path = None if folder is None else folder / f"{i:05d}.safetensors"
                if path is not None and path.is_file():
                    parts.append(read_safetensors(path)["embeddings"])
                else:
                    parts.append(torch.cat([self._embed(x) for x in shard.split(batch)]))
                    if path is not None:
                        write_safetensors(path, {"embeddings": parts[-1]})
                shown.update(len(shard))
        return torch.cat(parts)

    def _key(self) -> str:
        """The pool's images and the teacher's weights, as a name."""
        digest = hashlib.sha256(self.images.contiguous().numpy().tobytes())
        for name, tensor in self.backbone.state_dict().items():
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
        return digest.hexdigest()[:24]

    @classmethod
    def from_split(
        cls, dataset: str, size: int, backbone: Backbone, *, progress: bool = True
    ) -> BasePool:
        """`size` images of a dataset's base split, spread evenly over its classes (one each at
        least), in the split's class order; their embeddings kept beside the dataset's folder,
        or in the user's cache for the glyph world."""
        base = open_dataset(dataset, "base")
        per_class = max(1, size // len(base.classes))
        images = []
        for name, ids in bar(base.classes.items(), "base pool", progress):
            for file_id in ids[:per_class]:
                images.append(_uint8(to_tensor(base.image(name, file_id), backbone.input_size)))
        folder = dataset.partition(":")[2] or None
        return cls(torch.stack(images), backbone, pool_cache(folder), progress=progress)

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
        return cls(torch.stack(images), backbone, pool_cache(where), progress=progress)

    def __len__(self) -> int:
        return len(self.images)

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.backbone.embed(as_float(images)), dim=1)

    @torch.no_grad()
    def nearest(self, supports: torch.Tensor, count: int) -> torch.Tensor:
        """Indices of the `count` pool images nearest to the supports (K, 3, H, W) under the
        backbone's features, taken round-robin so each support gets its own neighbours. Each
        support's first `count` suffice: the first support's alone are `count` images."""
        ranked = self.ranked(self._embed(supports), min(count, len(self)))
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

    def ranked(self, queries: torch.Tensor, k: int) -> torch.Tensor:
        """(Q, k) indices of each normalised query's k nearest pool images, nearest first:
        exhaustively, or through faiss where the pool is larger than `faiss_above`."""
        if len(self) <= self.faiss_above:
            return exhaustive_search(self.embeddings, queries, k)
        if self._index is None:
            self._index = hnsw_index(self.embeddings)
        return hnsw_search(self._index, queries, k)

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


def hnsw_index(embeddings: torch.Tensor):
    """A faiss HNSW index of normalised embeddings under inner product (the optional extra
    `tint[faiss]`)."""
    try:
        import faiss
    except ImportError:
        raise TintError(
            f"a base pool of {len(embeddings):,} images is searched through faiss, an optional "
            "extra: pip install 'tint[faiss]' (or pip install faiss-cpu)"
        ) from None
    index = faiss.IndexHNSWFlat(embeddings.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.add(embeddings.float().numpy())
    return index


def exhaustive_search(embeddings: torch.Tensor, queries: torch.Tensor, k: int) -> torch.Tensor:
    """(Q, k) indices of each normalised query's k nearest embeddings, nearest first, exactly."""
    return (queries @ embeddings.T).topk(k, dim=1).indices


def hnsw_search(index, queries: torch.Tensor, k: int) -> torch.Tensor:
    """(Q, k) indices of each normalised query's k nearest embeddings in a `hnsw_index`."""
    index.hnsw.efSearch = max(128, 2 * k)
    _, found = index.search(queries.float().numpy(), k)
    return torch.from_numpy(found)


def pool_cache(where: str | Path | None) -> Path:
    """Where a base pool's embeddings are kept: beside the pool (a folder, or a list's folder),
    or, for a pool with no folder of its own (the glyph world's base split), in the user's
    cache (XDG_CACHE_HOME, else ~/.cache)."""
    if where is not None:
        where = Path(where).expanduser()
        return (where if where.is_dir() else where.parent) / ".tint-embeddings"
    return user_cache() / "tint" / "embeddings"


def writable(folder: Path) -> Path | None:
    """`folder`, made, if this process may write there; None (nothing kept) if not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


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
