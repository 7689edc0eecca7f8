"""Where images are read: class-per-folder trees, validated and converted to 8-bit RGB."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from tint.errors import TintError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


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
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise TintError(f"{path}: not a readable image ({e})") from None
    return _to_rgb8(img)


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


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def find_class_folders(root: str | Path) -> dict[str, list[Path]]:
    """Map class name to its image files. `root/<class>/<image>`; a flat folder of images is one
    class named after the folder. Hidden files are ignored; anything else must be an image."""
    root = Path(root)
    if not root.is_dir():
        raise TintError(f"{root}: no such directory")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
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


def to_image(x: torch.Tensor) -> Image.Image:
    """(3, H, W) float tensor in [0, 1] to an 8-bit RGB image."""
    a = (x.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(a, mode="RGB")
