"""Where images are read: class-per-folder trees, validated and converted to 8-bit RGB."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from tint.errors import TintError
from tint.io.storage import check_directory, describe_os_error

MIN_SIDE = 8  # pixels: smaller images hold too little to learn a class from
# More pixels than this is refused before decoding: PIL's own decompression-bomb limit, about
# 89 million (a 10000 x 10000 image; a 50-megapixel photograph is well under it).
MAX_PIXELS = Image.MAX_IMAGE_PIXELS


@dataclass
class LabelledImage:
    """One image of a class, as read from disk."""

    path: Path
    image: Image.Image  # 8-bit RGB

    @property
    def size(self) -> tuple[int, int]:  # (width, height), as PIL says it
        return self.image.size


def load_rgb(path: str | Path) -> Image.Image:
    """Read any image file as 8-bit RGB: grayscale, palette, 16-bit and alpha images are converted
    (alpha is composited on white). Raises TintError naming the file if it cannot be read."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            # _check_size refuses these with a clearer message than PIL's warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            _check_size(path, img.size)
            img.load()
            img = ImageOps.exif_transpose(img)
    except Image.DecompressionBombError:
        raise TintError(f"{path}: more than {MAX_PIXELS:,} pixels; resize it first") from None
    except (UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise TintError(f"{path}: not a readable image ({e})") from None
    except OSError as e:
        detail = describe_os_error(e) if e.filename else str(e)
        raise TintError(f"{path}: not a readable image ({detail})") from None
    return _to_rgb8(img)


def _check_size(path: Path, size: tuple[int, int]) -> None:
    w, h = size
    if min(w, h) < MIN_SIDE:
        raise TintError(f"{path}: {w}x{h} pixels is too small (at least {MIN_SIDE} a side)")
    if w * h > MAX_PIXELS:
        raise TintError(
            f"{path}: {w}x{h} pixels is more than {MAX_PIXELS:,} pixels; resize it first"
        )


def _to_rgb8(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # PIL's own conversion of wide modes to 8 bits clips instead of rescaling.
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        img = Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("RGB")


def _visible(folder: Path) -> list[Path]:
    """The entries of a folder that are not hidden, sorted; one that is neither a file nor a
    folder (a broken or looping symbolic link, a socket) is named in a TintError."""
    try:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as e:
        raise TintError(describe_os_error(e)) from None
    for p in entries:
        if not p.is_file() and not p.is_dir():
            try:
                os.stat(p)
            except OSError as e:
                raise TintError(describe_os_error(e)) from None
            raise TintError(f"{p}: neither a file nor a folder")
    return entries


def _image_files(folder: Path) -> list[Path]:
    return [p for p in _visible(folder) if p.is_file()]


def find_class_folders(root: str | Path) -> dict[str, list[Path]]:
    """Map class name to its image files. `root/<class>/<image>`; a flat folder of images is one
    class named after the folder. Hidden files are ignored; anything else must be an image."""
    root = check_directory(root)
    subdirs = [p for p in _visible(root) if p.is_dir()]
    loose = _image_files(root)
    if subdirs and loose:
        raise TintError(
            f"{root}: mixes class folders with loose files ({loose[0].name}); "
            "put every image in a class folder"
        )
    folders = subdirs or [root]
    classes = {}
    for folder in folders:
        files = _image_files(folder)
        if not files:
            raise TintError(f"{folder}: class folder has no images")
        classes[folder.name if subdirs else root.resolve().name] = files
    return classes


def load_class_folders(root: str | Path) -> dict[str, list[LabelledImage]]:
    """Read every image of a class-folder tree (see `find_class_folders`)."""
    return {
        name: [LabelledImage(path, load_rgb(path)) for path in files]
        for name, files in find_class_folders(root).items()
    }


def to_tensor(image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """RGB image to a (3, H, W) float tensor in [0, 1], resized (antialiased) to size = (H, W)."""
    x = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255
    return resize(x[None], size)[0]


def as_float(images: torch.Tensor) -> torch.Tensor:
    """Images stored as uint8 (0-255) or float (0-1) -> float in [0, 1]."""
    return images.float() / 255 if images.dtype == torch.uint8 else images


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of a (B, C, H, W) tensor to size = (H, W)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


def shrunk(image: Image.Image, side: int) -> Image.Image:
    """The image made at most `side` pixels on its longer side (bicubic, the aspect kept); a
    smaller one as it is."""
    if max(image.size) <= side:
        return image
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.BICUBIC)


def to_image(x: torch.Tensor) -> Image.Image:
    """(3, H, W) float tensor in [0, 1] to an 8-bit RGB image."""
    a = (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(a, mode="RGB")
