"""Few-shot datasets as their authors distribute them, read into one small object.

`open_dataset(spec, split)` reads the class lists of one split; images are decoded only when asked
for. Splits are always called base / val / novel (a layout's train is base, its test is novel).

    glyphs              tint's glyph world: its benchmark instances of each class
    folder:PATH         PATH/<class>/<image>, or PATH/<split>/<class>/<image>
    miniimagenet:PATH   Ravi & Larochelle: PATH/images/*.jpg, PATH/{train,val,test}.csv
    cub:PATH            CUB-200-2011 as distributed, classes split as in Chen et al. 2019
    cifarfs:PATH        CIFAR-100 python pickles with the Bertinetto et al. 2019 class split
"""

from __future__ import annotations

import csv
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from tint.data import glyphs
from tint.data.images import find_class_folders, load_rgb, to_image
from tint.errors import TintError
from tint.io.storage import check_directory

try:
    from numpy._core.multiarray import _reconstruct
    from numpy._core.numeric import _frombuffer
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct
    from numpy.core.numeric import _frombuffer

SPLITS = ("base", "val", "novel")
SPECS = ("glyphs", "folder:PATH", "miniimagenet:PATH", "cub:PATH", "cifarfs:PATH")
# The names a layout may give each split, in the order they are looked for.
SPLIT_NAMES = {"base": ("base", "train"), "val": ("val",), "novel": ("novel", "test")}
# Class i of CUB's classes.txt is in a split if i % modulus == remainder (Chen et al. 2019).
CUB_SPLIT = {"base": (2, 0), "val": (4, 1), "novel": (4, 3)}  # split -> (modulus, remainder)
Classes = dict[str, list[str]]  # class name -> file ids
Reader = Callable[[str, str], Image.Image]  # (class, file id) -> 8-bit RGB image


@dataclass
class FewShotDataset:
    """The classes of one split of a few-shot dataset, and a way to read their images."""

    name: str  # the kind of dataset: glyphs, folder, miniimagenet, cub or cifarfs
    split: str  # base, val or novel
    classes: Classes  # class name -> file ids, both in a fixed (sorted) order
    spec: str  # as given to open_dataset: open_dataset(spec, split) opens this again
    read: Reader = field(repr=False, compare=False)

    def image(self, cls: str, file_id: str) -> Image.Image:
        """One image of a class, as 8-bit RGB."""
        if file_id not in self.classes.get(cls, ()):
            raise TintError(f"{self.spec}: no image {file_id!r} of class {cls!r} in {self.split}")
        return self.read(cls, file_id)


def open_dataset(spec: str, split: str = "novel") -> FewShotDataset:
    """Open one split of a dataset.

    Args:
        spec: `glyphs`, `folder:PATH`, `miniimagenet:PATH`, `cub:PATH` or `cifarfs:PATH`; see the
            `open_*` function of each kind for the layout it expects.
        split: base, val or novel.

    Returns:
        The split's classes and file ids; images are read by `FewShotDataset.image`.
    """
    if split not in SPLITS:
        raise TintError(f"unknown split {split!r} (choose from {', '.join(SPLITS)})")
    kind, colon, path = spec.partition(":")
    if kind == "glyphs" and not colon:
        classes, read = open_glyphs(split)
    elif kind in OPENERS and path:
        classes, read = OPENERS[kind](Path(path), split)
    else:
        raise TintError(f"unknown dataset {spec!r} (choose from {', '.join(SPECS)})")
    return FewShotDataset(kind, split, classes, spec, read)


def absolute_spec(spec: str) -> str:
    """The same dataset as `spec` names, from any working directory: its PATH made absolute."""
    kind, colon, path = spec.partition(":")
    return f"{kind}:{os.path.abspath(path)}" if colon and path else spec


def open_glyphs(split: str) -> tuple[Classes, Reader]:
    """tint's glyph world: file ids "0" .. "19" are the class's benchmark instances."""
    by_name = {g.name: g for g in glyphs.split(split)}
    ids = [str(i) for i in range(glyphs.settings().instances)]
    rendered = {}  # class -> (INSTANCES, 3, SIZE, SIZE), rendered when first asked for

    def read(cls: str, file_id: str) -> Image.Image:
        if cls not in rendered:
            rendered[cls] = glyphs.benchmark_instances(by_name[cls])
        return to_image(rendered[cls][int(file_id)])

    return {name: list(ids) for name in sorted(by_name)}, read


def open_folder(root: Path, split: str) -> tuple[Classes, Reader]:
    """A class-folder tree, `root/<class>/<image>` (see `find_class_folders`); file ids are file
    names. If every sub-folder of root is named for a split (base, val, novel, train, test) the
    split's folder is read (`root/base/<class>/<image>` or `root/train/...`). Otherwise the tree
    has no splits, and every class belongs to every split asked for."""
    root = check_directory(root)
    subdirs = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    if subdirs and subdirs <= {name for names in SPLIT_NAMES.values() for name in names}:
        found = [name for name in SPLIT_NAMES[split] if name in subdirs]
        if not found:
            expected = " or ".join(f"{name}/" for name in SPLIT_NAMES[split])
            raise TintError(f"{root}: has split folders but no {split} split ({expected})")
        if len(found) > 1:
            raise TintError(f"{root}: both {' and '.join(found)} could be the {split} split")
        root = root / found[0]
    folders = find_class_folders(root)
    classes = {name: [p.name for p in files] for name, files in sorted(folders.items())}
    paths = {name: files[0].parent for name, files in folders.items()}
    return classes, lambda cls, file_id: load_rgb(paths[cls] / file_id)


def open_miniimagenet(root: Path, split: str) -> tuple[Classes, Reader]:
    """miniImageNet as Ravi & Larochelle 2017 ship it: `root/images/<filename>` and
    `root/{train,val,test}.csv`, each with the header `filename,label`; file ids are filenames."""
    listing = root / f"{SPLIT_NAMES[split][-1]}.csv"
    _require(root, ["images/", listing.name])
    classes: Classes = {}
    for filename, label in _read_csv(listing):
        classes.setdefault(label, []).append(filename)
    classes = {name: sorted(files) for name, files in sorted(classes.items())}
    _require_listed(listing, root / "images", [f for files in classes.values() for f in files])
    return classes, lambda cls, file_id: load_rgb(root / "images" / file_id)


def open_cub(root: Path, split: str) -> tuple[Classes, Reader]:
    """CUB-200-2011 as distributed: `root/images.txt` (`<image id> <relative path>`),
    `root/classes.txt` (`<class id> <name>`), `root/image_class_labels.txt` (`<image id> <class
    id>`), images under `root/images/`; root may also be the folder holding `CUB_200_2011/`. File
    ids are the relative paths. Classes are split as in Chen et al. 2019 ("A closer look at
    few-shot classification"): the i-th class of classes.txt, from 0, is base if i % 2 == 0, val
    if i % 4 == 1, novel if i % 4 == 3 (100/50/50)."""
    if not (root / "classes.txt").exists() and (root / "CUB_200_2011").is_dir():
        root = root / "CUB_200_2011"
    _require(root, ["images/", "images.txt", "classes.txt", "image_class_labels.txt"])
    class_names = dict(_read_pairs(root / "classes.txt"))
    image_paths = dict(_read_pairs(root / "images.txt"))
    modulus, remainder = CUB_SPLIT[split]
    chosen = {class_names[c] for i, c in enumerate(class_names) if i % modulus == remainder}
    classes: Classes = {}
    labels = root / "image_class_labels.txt"
    for image_id, class_id in _read_pairs(labels):
        if image_id not in image_paths:
            raise TintError(f"{labels}: labels image {image_id}, which images.txt lacks")
        if class_id not in class_names:
            raise TintError(f"{labels}: labels an image with class {class_id}, not in classes.txt")
        if class_names[class_id] in chosen:
            classes.setdefault(class_names[class_id], []).append(image_paths[image_id])
    classes = {name: sorted(files) for name, files in sorted(classes.items())}
    _require_listed(
        root / "images.txt", root / "images", [f for fs in classes.values() for f in fs]
    )
    return classes, lambda cls, file_id: load_rgb(root / "images" / file_id)


def open_cifarfs(root: Path, split: str) -> tuple[Classes, Reader]:
    """CIFAR-FS (Bertinetto et al. 2019): the CIFAR-100 python pickles
    `root/cifar-100-python/{train,test,meta}` and the class lists
    `root/splits/bertinetto/{train,val,test}.txt` (fine label names, one a line; 64/16/20). A
    class's images come from both pickles; file ids are "train/<row>" and "test/<row>"."""
    listing = Path("splits/bertinetto") / f"{SPLIT_NAMES[split][-1]}.txt"
    parts = ("train", "test")
    _require(root, [*(f"cifar-100-python/{p}" for p in (*parts, "meta")), str(listing)])
    listing = root / listing
    meta_path = root / "cifar-100-python" / "meta"
    label_names = [_decode(n) for n in _field(_unpickle(meta_path), "fine_label_names", meta_path)]
    pixels, labels = {}, {}
    for part in parts:
        path = root / "cifar-100-python" / part
        batch = _unpickle(path)
        pixels[part] = np.asarray(_field(batch, "data", path))
        labels[part] = np.asarray(_field(batch, "fine_labels", path))
        data, fine = pixels[part], labels[part]
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            raise TintError(f"{path}: data is {data.dtype} {data.shape}, not N x 3072 uint8")
        if fine.shape != data.shape[:1]:
            raise TintError(f"{path}: {len(fine)} fine labels for {len(data)} images")
    classes: Classes = {}
    for name in sorted({line.strip() for line in listing.read_text().splitlines()} - {""}):
        if name not in label_names:
            raise TintError(f"{listing}: class {name!r} is not a CIFAR-100 fine label")
        label = label_names.index(name)
        classes[name] = [
            f"{part}/{row}" for part in parts for row in np.flatnonzero(labels[part] == label)
        ]

    def read(cls: str, file_id: str) -> Image.Image:
        part, row = file_id.split("/")
        planes = pixels[part][int(row)].reshape(3, 32, 32)  # (C, H, W): R, G, B planes
        return Image.fromarray(np.ascontiguousarray(planes.transpose(1, 2, 0)))  # (H, W, C)

    return classes, read


OPENERS = {
    "folder": open_folder,
    "miniimagenet": open_miniimagenet,
    "cub": open_cub,
    "cifarfs": open_cifarfs,
}


def _require(root: Path, names: list[str]) -> None:
    """Raise naming every one of `names` (relative to root) that is missing."""
    check_directory(root)
    missing = [n for n in names if not (root / n).is_dir() and not (root / n).is_file()]
    if missing:
        raise TintError(f"{root}: missing {', '.join(missing)}")


def _require_listed(listing: Path, folder: Path, files: list[str]) -> None:
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise TintError(
            f"{listing}: lists images missing from {folder}: {', '.join(missing[:3])}{more}"
        )


def _read_csv(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="") as f:
        rows = [row for row in csv.reader(f) if row]
    if not rows or [cell.strip() for cell in rows[0]] != ["filename", "label"]:
        raise TintError(f"{path}: expected the header filename,label")
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise TintError(f"{path}: row {line} is not filename,label")
    return [(filename.strip(), label.strip()) for filename, label in rows[1:]]


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    """The lines `<id> <value>` of a CUB metadata file, in order."""
    pairs = []
    for line, text in enumerate(path.read_text().splitlines(), start=1):
        fields = text.split(maxsplit=1)
        if len(fields) == 2:
            pairs.append((fields[0], fields[1].strip()))
        elif fields:
            raise TintError(f"{path}: line {line} is not '<id> <value>'")
    return pairs


# The globals a pickled numpy array needs, and nothing else: a pickle can call any function it
# names, so one naming os.system must be refused before it runs. _codecs.encode is how Python 3
# writes bytes at protocol 2.
_PICKLE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): __import__("_codecs").encode,
}


class _ArrayUnpickler(pickle.Unpickler):
    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")  # the CIFAR pickles were written by Python 2
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in _PICKLE_GLOBALS:
            raise TintError(f"{self.path}: refusing to unpickle {module}.{name} (not array data)")
        return _PICKLE_GLOBALS[module, name]


def _unpickle(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            data = _ArrayUnpickler(f, path).load()
    except TintError:
        raise
    except Exception as e:  # a damaged pickle can fail in any of a dozen ways
        raise TintError(f"{path}: not a readable CIFAR pickle ({e})") from None
    if not isinstance(data, dict):
        raise TintError(f"{path}: not a CIFAR pickle (holds a {type(data).__name__})")
    return data


def _field(data: dict, key: str, path: Path):
    for k in (key.encode(), key):
        if k in data:
            return data[k]
    raise TintError(f"{path}: has no {key!r}")


def _decode(name: bytes | str) -> str:
    return name.decode() if isinstance(name, bytes) else name
