"""Shared fixtures: a tiny SD-format model trained for a few seconds on the shapes world (a real,
if weak, denoiser: null-text inversion behaves as on a real model), and small support folders.

The trained model is kept in pytest's cache, keyed by the code that makes it."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch

import tint.diffusion.architectures
import tint.train.diffusion
import tint.train.trainer
from tint.diffusion.architectures import TinyArchitecture
from tint.diffusion.model import DiffusionModel
from tint.train.diffusion import DiffusionTraining, pretrain
from tint.train.trainer import TrainConfig

from . import shapes

# Two threads, the machine the suite is sized for, unless OMP_NUM_THREADS says otherwise (the suite
# must pass at any thread count).
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 2)))

TINY = TinyArchitecture(
    image_size=16,
    vae_channels=(16, 32),
    unet_channels=(32, 64),
    attention_head_dim=8,
    text_width=32,
    text_layers=2,
    text_heads=2,
    words=[*shapes.WORDS, "drawing", "object"],
)
# The model sees these (color, kind) classes; the tests specialise it to others.
BASE = [(c, k) for c in ("red", "blue", "green") for k in shapes.KINDS]
NOVEL = [("orange", "disc"), ("purple", "square")]
VAE_STEPS, UNET_STEPS, BATCH = 100, 80, 32


def _draw(n, g):
    return shapes.draw(n, g, BASE, size=TINY.image_size)


@pytest.fixture(scope="session", autouse=True)
def a_cache_of_the_sessions_own(tmp_path_factory):
    """Caches a run keeps for later runs (the glyph world's base-pool embeddings) go to a folder
    of the session's, not the user's ~/.cache; processes the tests start inherit it."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session", autouse=True)
def the_repository_is_left_as_it_was():
    """No test writes into the repository: every run folder lives under a test's tmp_path (a
    Ray worker once wrote a README example's episodes here: its working directory is not the
    test's)."""
    root = Path(__file__).resolve().parent.parent
    before = {p.name for p in root.iterdir()}
    yield
    added = {p.name for p in root.iterdir()} - before
    assert not {name for name in added if not name.startswith(".")}, added


@pytest.fixture(scope="session")
def model_dir(request, tmp_path_factory):
    recipe = hashlib.sha256(repr((asdict(TINY), BASE, VAE_STEPS, UNET_STEPS, BATCH)).encode())
    for module in (tint.diffusion.architectures, tint.train.diffusion, tint.train.trainer, shapes):
        recipe.update(Path(module.__file__).read_bytes())
    cached = Path(request.config.cache.mkdir(f"tiny-sd-{recipe.hexdigest()[:12]}"))
    if not (cached / "model_index.json").is_file():
        scratch = tmp_path_factory.mktemp("training") / "tiny-sd"
        config = DiffusionTraining(
            vae=TrainConfig(steps=VAE_STEPS, batch=32, lr=1e-3, checkpoint_every=500),
            denoiser=TrainConfig(
                steps=UNET_STEPS, batch=BATCH, lr=1e-3, ema_decay=0.999, checkpoint_every=500
            ),
        )
        pretrain(scratch, TINY, config, _draw, progress=False)
        shutil.rmtree(cached)
        shutil.copytree(scratch, cached)
    return cached


@pytest.fixture
def model(model_dir):
    """A fresh load for each test: textual inversion adds tokens to the model it is given."""
    return DiffusionModel.load(model_dir)


def write_supports(root: Path, shots: int = 3, sizes=((16, 16),), seed: int = 0) -> None:
    """The novel classes as root/<color>-<kind>/<i>.png, support i of size sizes[i % len]."""
    g = torch.Generator().manual_seed(seed)
    for color, kind in NOVEL:
        folder = root / f"{color}-{kind}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(shots):
            w, h = sizes[i % len(sizes)]
            shapes.render(kind, color, 16, g).resize((w, h)).save(folder / f"{i}.png")


@pytest.fixture
def supports(tmp_path):
    root = tmp_path / "supports"
    write_supports(root)
    return root


def support_latents(model, n=3, seed=0):
    """(n, C, h, w) latents of novel-class supports and their (n, L, D) prompt embeddings."""
    g = torch.Generator().manual_seed(seed)
    images = torch.stack([shapes.draw(1, g, NOVEL, size=TINY.image_size)[0][0] for _ in range(n)])
    with torch.no_grad():
        cond = model.encode_text(["a photo of a orange disc"] * n)
    return model.encode_images(images), cond


@pytest.fixture(scope="session")
def ray_address():
    """One local Ray instance (2 CPUs) for the whole session; `tint ... --ray` in this process
    runs on it. Its address, for other processes."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", configure_logging=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
