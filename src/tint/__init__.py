"""tint: few-shot distillation with generative data.

Specialise a Stable-Diffusion-format model to each of a few classes with TINT (textual inversion +
null-text inversion), generate many new, class-consistent images of them, label them with a
teacher specialised on the same supports, and distil it into a tiny student.

The package is layered; a module imports only from its own layer and the layers before it (a
test keeps it so):

    errors, config, io     settings trees, files, checkpoints, run folders, seeds, reports
    data                   images, datasets, episodes, the glyph benchmark, augmentation
    diffusion              SD-format models, DDIM, textual and null-text inversion, generation
    models                 students and teachers
    train                  the one training loop, and what it trains
    eval                   methods over episodes, variance and plans, quality, speed
    commands               one module per `tint` command: its settings and what it runs
    cli                    the command line: flags from the settings, dispatch"""

from tint.diffusion.generation import GenerateConfig, plan_images, render, specialize
from tint.diffusion.model import DiffusionModel
from tint.diffusion.pipeline import generate
from tint.diffusion.specialization import Specialization
from tint.errors import TintError

__version__ = "0.5.0"

__all__ = [
    "DiffusionModel",
    "GenerateConfig",
    "Specialization",
    "TintError",
    "generate",
    "plan_images",
    "render",
    "specialize",
    "__version__",
]
