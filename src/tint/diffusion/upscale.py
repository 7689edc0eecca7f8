"""Small supports made larger before inversion: the paper upscales 84 px supports with a
super-resolution model before TINT; tint resizes them by default.

    resize     antialiased bilinear resizing to the working size (the default)
    bicubic    PIL's bicubic resizing
    FOLDER     a diffusers upscaler (StableDiffusionUpscalePipeline, or the latent upscaler), by
               its folder or by its hub id in the Hugging Face cache, run on every support
               smaller than the working size, then resized to it; what is coarser than the
               support's own pixels is kept from the support (`with_its_colours`)

What a support was made larger with is part of the settings a saved specialisation is reused
for, so an upscaled specialisation is kept and found again like any other."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from tint.data.images import LabelledImage, resize, shrunk, to_image, to_tensor
from tint.io.pretrained import loading, model_folder

RESIZE, BICUBIC = "resize", "bicubic"


def enlarged(
    images: list[LabelledImage], size: tuple[int, int], upscale: str, steps: int, seed: int
) -> list[Image.Image]:
    """Each support as it is encoded at `size` (H, W): as it is, where the working size's
    resizing is asked or it is not smaller, else made larger as `upscale` says."""
    small = [im.size[0] < size[1] or im.size[1] < size[0] for im in images]
    if upscale == RESIZE or not any(small):
        return [im.image for im in images]
    if upscale == BICUBIC:
        return [
            im.image.resize((size[1], size[0]), Image.BICUBIC) if s else im.image
            for im, s in zip(images, small)
        ]
    upscaler = load_upscaler(upscale)
    g = torch.Generator().manual_seed(seed)
    made = upscaler(
        prompt=[""] * sum(small),
        image=[im.image for im, s in zip(images, small) if s],
        num_inference_steps=steps,
        guidance_scale=1.0,  # prompted with "" both ways, guidance would change nothing
        generator=g,
        output_type="pil",
    ).images
    made = iter(made)
    return [
        with_its_colours(next(made), im.image) if s else im.image for im, s in zip(images, small)
    ]


def with_its_colours(made: Image.Image, small: Image.Image) -> Image.Image:
    """The upscaler's image with everything coarser than the small image's pixels taken from the
    small image itself (bicubic): only the detail is the upscaler's. Generative upscalers shift
    colours; StableSR's colour fix swaps the low frequencies the same way."""
    size, coarse = (made.height, made.width), (small.height, small.width)
    x, ref = to_tensor(made, size), to_tensor(small.resize(made.size, Image.BICUBIC), size)

    def low(t: torch.Tensor) -> torch.Tensor:
        return resize(resize(t[None], coarse), size)[0]

    return to_image(x - low(x) + low(ref))


def load_upscaler(name: str):
    """A diffusers upscaling pipeline from its folder or hub id, offline, quiet."""
    from diffusers import DiffusionPipeline

    path = model_folder(name, "upscaler directory")
    with loading(path, "upscaler"):
        pipe = DiffusionPipeline.from_pretrained(path, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def restored(
    images: torch.Tensor, side: int, upscale: str, steps: int = 20, seed: int = 0
) -> dict[str, torch.Tensor]:
    """`images` (N, 3, H, W) in [0, 1] shrunk to `side` pixels (bicubic, as `--shrink` does) and
    made large again, each way: {"small": as shrunk, then "resize", "bicubic" and "upscaler"
    (the upscaler `upscale`), each (N, 3, H, W)}."""
    size = tuple(images.shape[2:])
    small = [
        LabelledImage(Path(f"{i}.png"), shrunk(to_image(x), side)) for i, x in enumerate(images)
    ]
    out = {"small": torch.stack([to_tensor(im.image, im.size[::-1]) for im in small])}
    for label, way in ((RESIZE, RESIZE), (BICUBIC, BICUBIC), ("upscaler", upscale)):
        made = enlarged(small, size, way, steps, seed)
        out[label] = torch.stack([to_tensor(im, size) for im in made])
    return out
