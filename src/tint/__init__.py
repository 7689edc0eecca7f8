"""tint: few-shot distillation with generative data.

Specialise a Stable-Diffusion-format model to each of a few classes with TINT (textual inversion +
null-text inversion) and generate many new, class-consistent images of them."""

from tint.diffusion.model import DiffusionModel
from tint.diffusion.pipeline import GenerateConfig, generate, specialize
from tint.diffusion.specialization import Specialization
from tint.errors import TintError

__version__ = "0.1.0"

__all__ = [
    "DiffusionModel",
    "GenerateConfig",
    "Specialization",
    "TintError",
    "generate",
    "specialize",
    "__version__",
]
