"""The diffusion stages in bfloat16 where asked (or where `auto` finds fast bfloat16), float32
otherwise: the UNet computes in the precision asked, and a bfloat16 specialisation reconstructs
its supports about as well as a float32 one."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys

import pytest
import torch

from tint.data.images import load_class_folders, to_tensor
from tint.diffusion.generation import GenerateConfig, plan_images, reconstruct, render, specialize
from tint.diffusion.model import DiffusionModel
from tint.diffusion.textual_inversion import TextualInversionConfig
from tint.eval.model_quality import psnr
from tint.io.hardware import fast_bfloat16

from .conftest import write_supports

SMALL = GenerateConfig(num=2, ddim_steps=4, ti=TextualInversionConfig(steps=6))


@pytest.fixture(scope="module")
def classes(tmp_path_factory):
    root = tmp_path_factory.mktemp("precision") / "supports"
    write_supports(root, shots=3)
    return load_class_folders(root)


@contextlib.contextmanager
def unet_dtypes(model: DiffusionModel):
    """The dtypes the UNet's first convolution computes in within the block."""
    seen: set[torch.dtype] = set()
    hook = model.unet.conv_in.register_forward_hook(lambda m, i, o: seen.add(o.dtype))
    try:
        yield seen
    finally:
        hook.remove()


def test_the_unet_computes_in_the_precision_asked(model_dir, classes):
    for precision, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        model = DiffusionModel.load(model_dir)
        config = dataclasses.replace(SMALL, precision=precision)
        with unet_dtypes(model) as used:
            specs = specialize(model, classes, config, progress=False)
            entries = plan_images(specs, config)
            render(model, specs, entries, config)
        assert used == {dtype}, precision
        # What a saved stage was made in is part of what it is reused for.
        assert {s.settings["precision"] for s in specs.values()} == {precision}
        # The reference way is the original code's: float32 whatever is asked.
        with unet_dtypes(model) as used:
            render(model, specs, entries[:1], config, reference=True)
        assert used == {torch.float32}


def test_auto_inverts_in_float32_and_generates_as_the_hardware_is_fast(model_dir, classes):
    """`precision="auto"`: both inversions in float32 on any CPU (their saved stages say so,
    so they are the float32 run's), generation in bfloat16 only where the hardware is fast at
    it."""
    model = DiffusionModel.load(model_dir)
    config = dataclasses.replace(SMALL, precision="auto")
    with unet_dtypes(model) as inverting:
        specs = specialize(model, classes, config, progress=False)
    with unet_dtypes(model) as generating:
        render(model, specs, plan_images(specs, config), config)
    assert inverting == {torch.float32}
    assert {s.settings["precision"] for s in specs.values()} == {"float32"}
    fast = fast_bfloat16(model.device)
    assert generating == {torch.bfloat16 if fast else torch.float32}


def test_a_bfloat16_specialisation_reconstructs_its_supports_nearly_as_well(model_dir, classes):
    """Null-text inversion's reconstruction of every support (alpha 0) in PSNR against the
    support: on the tiny shapes model bfloat16 is within 1 dB of float32."""
    quality = {}
    for precision in ("float32", "bfloat16"):
        model = DiffusionModel.load(model_dir)
        config = dataclasses.replace(SMALL, precision=precision)
        specs = specialize(model, classes, config, progress=False)
        made = torch.cat([reconstruct(model, specs[c], config).cpu() for c in classes])
        real = torch.stack(
            [to_tensor(im.image, made.shape[-2:]) for c in classes for im in classes[c]]
        )
        quality[precision] = psnr(made.float(), real)
    assert quality["bfloat16"] > quality["float32"] - 1.0, quality


def test_auto_is_float32_without_avx512_kernels():
    """`precision="auto"` computes in bfloat16 only where ATen's AVX-512 kernels run on a CPU
    with AMX or AVX512-BF16: with the kernels limited to AVX2 it is float32 on any machine."""
    code = (
        "import torch; from tint.diffusion.generation import GenerateConfig, arithmetic; "
        "from types import SimpleNamespace as N; m = N(device=torch.device('cpu')); "
        "b = GenerateConfig(precision='bfloat16'); "
        "print(arithmetic(m, GenerateConfig()), arithmetic(m, b))"
    )
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["float32", "bfloat16"], out.stderr
