"""tint: few-shot distillation with generative data.

Specialise a Stable-Diffusion-format model to each of a few classes with TINT (textual inversion +
null-text inversion), generate many new, class-consistent images of them, label them with a
teacher specialised on the same supports, and distil it into a tiny student.

The package is layered; a module imports only from its own layer and the layers before it (a
test keeps it so):

    errors, config, io     settings trees, files, checkpoints, run folders, seeds, progress
    data                   images, datasets, episodes and tasks, the glyph world, augmentation
    diffusion              SD-format models, DDIM, textual and null-text inversion, generation
    models                 students and teachers
    train                  the one training loop, distillation, pre-training
    sources                where a student's images come from: tint, ti, augment, retrieval,
                           base; one module each, one registry
    pipeline               the one path from a task and a recipe to a trained student
    eval                   methods over episodes, variance and plans, curves, quality, speed
    commands               one module per `tint` command: its settings and what it runs
    cli, api               the command line, and `tint.distill` / `tint.load_student`"""

from tint.api import distill
from tint.diffusion.generation import GenerateConfig, plan_images, render, specialize
from tint.diffusion.model import DiffusionModel
from tint.diffusion.pipeline import generate
from tint.diffusion.specialization import Specialization
from tint.errors import TintError
from tint.models.students import Student, load_student

__version__ = "0.7.0"

__all__ = [
    "DiffusionModel",
    "GenerateConfig",
    "Specialization",
    "Student",
    "TintError",
    "distill",
    "generate",
    "load_student",
    "plan_images",
    "render",
    "specialize",
    "__version__",
]
