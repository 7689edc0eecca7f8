"""The default world: the glyph benchmark's settings file and the models trained on its base
classes, which ship with tint and are every command's defaults. Only commands read this; the
library is given paths and settings."""

from __future__ import annotations

from pathlib import Path

from tint.config import read_file
from tint.data.glyphs import WORLD

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_MODEL = ASSETS / "glyph-diffusion"
DEFAULT_TEACHER = ASSETS / "glyph-teacher"


def shipped_student(arch: str) -> Path | None:
    """The glyph world's base-pretrained student of an architecture, where one ships."""
    path = ASSETS / f"glyph-student-{arch}"
    return path if path.is_dir() else None


def pretrained_student(arch: str, teacher: str | None) -> Path | None:
    """Where students of `arch` start from by default behind `teacher` (None: the shipped one):
    the glyph world's base-pretrained student with the glyph world's teacher; none otherwise."""
    return shipped_student(arch) if teacher is None else None


def section(name: str) -> dict:
    """One table of the world file (configs/glyphs.toml): "diffusion", "teacher", "student"."""
    return read_file(WORLD)[name]
