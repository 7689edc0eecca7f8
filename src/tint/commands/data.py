"""`tint data glyphs`: write a split of the glyph benchmark to disk as class folders."""

from __future__ import annotations

from dataclasses import dataclass

from tint.commands import Command, Options
from tint.config import setting
from tint.data import glyphs


@dataclass
class GlyphDataSettings:
    split: str = setting(
        "novel", "base (pre-training), val or novel (episodes)", choices=glyphs.SPLITS
    )
    out: str | None = setting(None, "output directory")
    instances: int | None = setting(
        None, "instances per class (default: the benchmark's, 20)", minimum=1
    )


def run(settings: GlyphDataSettings, options: Options) -> None:
    count = settings.instances or glyphs.settings().instances
    n = glyphs.write_split(settings.split, settings.out, count)
    print(f"wrote {n} {settings.split} classes x {count} instances to {settings.out}")


COMMAND = Command(
    name="data glyphs",
    help="the glyph benchmark as class folders",
    description="Write one split of the glyph benchmark as OUT/<class>/<i>.png, 32x32 RGB. The "
    "same bytes on every machine with AVX2 or AVX-512.",
    settings=GlyphDataSettings,
    base=GlyphDataSettings,
    run=run,
    options=(),
    required=("out",),
)
