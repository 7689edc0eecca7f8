"""Glyphs: an Omniglot-style few-shot benchmark drawn from the Hershey vector fonts.

A class is one distinct glyph shape. Glyphs with identical strokes (the same drawing in several
fonts) are one class, and so are glyphs whose plain renderings are near-identical once scaled to
the same size (O/0/o, l/1/I in similar fonts), so no two classes share a shape. Classes are split
by a fixed seed into base (pre-training), val and novel (episodes) classes, about 70/10/20.

An instance is a rendering with random pen width, rotation, shear, scale, shift and stroke
jitter: 32x32 RGB, black ink on white. The benchmark holds 20 instances per class, each a
function of (class, index) alone, so the same call gives byte-identical images anywhere; pre-
training may draw as many fresh base instances as it likes with `render`.

Rendering is vectorised in torch: a pixel's ink is a linear ramp of its distance to the nearest
stroke segment, so thousands of glyphs render in a fraction of a second."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from tint.config import from_dict, group, read_file, setting
from tint.errors import TintError
from tint.io import seeds
from tint.io.storage import write_png

SPLITS = ("base", "val", "novel")
WORLD = Path(__file__).resolve().parent.parent / "configs" / "glyphs.toml"
CATALOGUE = Path(__file__).resolve().parent.parent / "assets" / "glyph_classes.json"


@dataclass(frozen=True)
class Rendering:
    """How an instance varies: each drawn uniformly within these limits."""

    jitter: float = setting(0.012, "stroke points, in units of the glyph's longer side")
    angle: float = setting(0.17, "rotation, radians either way")
    shear: float = setting(0.15, "either way")
    scale: tuple[float, float] = setting((0.7, 0.92), "the longer side, as a share of the image")
    aspect: float = setting(0.06, "x and y scaled apart by up to this, either way")
    shift: float = setting(2.0, "pixels, either way")
    pen: tuple[float, float] = setting((1.0, 2.4), "pen width, pixels")


@dataclass(frozen=True)
class GlyphSettings:
    size: int = setting(32, "pixels, square")
    instances: int = setting(20, "benchmark instances per class")
    split_seed: int = setting(1406, "fixes the base/val/novel split")
    # Two glyphs are one class if their stroke centrelines, scaled to 27 px, are within this many
    # pixels of each other (Hausdorff; see `shape_distances`). Below it, nearly every nearest
    # pair is one letter in two font styles, or kana differing by a mark too small to see at 32
    # px; above it, different letters (E/F, C/G, U/V) start to appear. docs/GLYPHS.md shows both.
    merge_threshold: float = setting(3.0, "px at 27 px")
    splits: dict[str, float] = setting(factory=dict, help="share of the classes in each split")
    rendering: Rendering = group(Rendering, "how an instance varies")


@functools.cache
def settings() -> GlyphSettings:
    """The glyph benchmark as the world file (configs/glyphs.toml) defines it."""
    return from_dict(GlyphSettings, read_file(WORLD)["benchmark"], f"{WORLD} [benchmark]")


@dataclass(frozen=True)
class Glyph:
    name: str  # class name: font and code point of its representative, e.g. "futural-0041"
    word: str  # its one-token word in the default world's captions, e.g. "bada"
    points: torch.Tensor  # (P, 2) stroke points in a unit box centred on 0, y down
    segments: torch.Tensor  # (S, 2) indices into points: the pen's straight moves
    members: tuple[str, ...]  # every font glyph merged into this class


def _font_glyphs() -> list[tuple[str, list[list[tuple[float, float]]]]]:
    """(id, strokes) for every non-empty glyph of every Hershey font shipped with the package."""
    from HersheyFonts import HersheyFonts

    found = []
    fonts = HersheyFonts()
    for font in fonts.default_font_names:
        fonts.load_default_font(font)
        for char, glyph in fonts.all_glyphs.items():
            strokes = [list(s) for s in glyph.strokes if len(s) >= 2]
            if strokes:
                found.append((f"{font}-{ord(char):04x}", strokes))
    return found


def _normalise(strokes) -> tuple[torch.Tensor, torch.Tensor]:
    """Stroke polylines -> (points centred and scaled so the longer side is 1, segments)."""
    points, segments = [], []
    for stroke in strokes:
        start = len(points)
        points.extend(stroke)
        segments.extend((start + i, start + i + 1) for i in range(len(stroke) - 1))
    p = torch.tensor(points, dtype=torch.float32)
    lo, hi = p.min(0).values, p.max(0).values
    p = (p - (lo + hi) / 2) / max(float((hi - lo).max()), 1e-6)
    return p, torch.tensor(segments, dtype=torch.long)


def _centreline_distance(points, segments, transform, shift) -> torch.Tensor:
    """Each pixel's distance to the nearest stroke centreline, for a batch: points (B, P, 2),
    segments (B, S, 2) (padding repeats a segment), transform (B, 2, 2) maps to pixels, shift
    (B, 2) in pixels. Returns (B, size * size)."""
    size = settings().size
    p = points @ transform.transpose(1, 2) + (size / 2 + shift)[:, None]  # (B, P, 2) pixels
    idx = segments[..., None].expand(-1, -1, -1, 2)  # (B, S, 2, 2)
    ends = torch.gather(p[:, None].expand(-1, segments.shape[1], -1, -1), 2, idx)
    a, b = ends[:, :, 0], ends[:, :, 1]  # (B, S, 2)
    ax = torch.arange(size, dtype=torch.float32) + 0.5
    pix = torch.stack(torch.meshgrid(ax, ax, indexing="xy"), -1).reshape(1, 1, -1, 2)  # (1,1,N,2)
    ab = (b - a)[:, :, None]  # (B, S, 1, 2)
    ap = pix - a[:, :, None]  # (B, S, N, 2)
    t = ((ap * ab).sum(-1) / ab.pow(2).sum(-1).clamp(min=1e-9)).clamp(0, 1)
    return (ap - t[..., None] * ab).norm(dim=-1).min(1).values  # (B, N)


def _ink(distance: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """A pen of `width` pixels: ink falls off linearly over one pixel at its edge."""
    size = settings().size
    return (width[:, None] / 2 + 0.5 - distance).clamp(0, 1).reshape(-1, size, size)


def _batch(glyphs: list[Glyph]) -> tuple[torch.Tensor, torch.Tensor]:
    P = max(len(g.points) for g in glyphs)
    S = max(len(g.segments) for g in glyphs)
    points = torch.zeros(len(glyphs), P, 2)
    segments = torch.zeros(len(glyphs), S, 2, dtype=torch.long)
    for i, g in enumerate(glyphs):
        points[i, : len(g.points)] = g.points
        segments[i, : len(g.segments)] = g.segments
        segments[i, len(g.segments) :] = g.segments[0]  # a repeat changes no minimum distance
    return points, segments


def _plain_distance(glyphs: list[Glyph], fill: float = 0.85) -> torch.Tensor:
    """Centreline distance maps (B, size * size) of the glyphs as the font draws them, scaled so
    the longer side spans `fill` of the image."""
    points, segments = _batch(glyphs)
    n = len(glyphs)
    transform = torch.eye(2).expand(n, 2, 2) * (fill * settings().size)
    return _centreline_distance(points, segments, transform, torch.zeros(n, 2))


def render(glyphs: list[Glyph], generator: torch.Generator) -> torch.Tensor:
    """One random instance of each glyph: (B, 3, size, size) float in [0, 1], ink black."""
    points, segments = _batch(glyphs)
    return _render(points, segments, _draw(len(glyphs), points.shape[1], generator))


def render_each(glyphs: list[Glyph], generators: list[torch.Generator]) -> torch.Tensor:
    """Like `render`, each glyph with its own random stream: image i is what `render([glyphs[i]],
    generators[i])` gives, byte for byte, but all are rendered in one batch."""
    points, segments = _batch(glyphs)
    draws = [_draw(1, len(g.points), rng) for g, rng in zip(glyphs, generators)]
    jitter = torch.zeros_like(points)
    for i, d in enumerate(draws):
        jitter[i, : len(glyphs[i].points)] = d["jitter"][0]
    merged = {k: torch.cat([d[k] for d in draws]) for k in draws[0] if k != "jitter"}
    return _render(points, segments, {**merged, "jitter": jitter})


def _draw(n: int, num_points: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The random variation of n instances, drawn in a fixed order."""

    def uniform(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(n, *shape, generator=generator)

    r = settings().rendering
    return {
        "jitter": r.jitter * torch.randn((n, num_points, 2), generator=generator),
        "angle": uniform(-r.angle, r.angle),
        "shear": uniform(-r.shear, r.shear),
        "scale": uniform(*r.scale, 1),
        "aspect": 1 + uniform(-r.aspect, r.aspect, 2),  # x and y
        "shift": uniform(-r.shift, r.shift, 2),
        "width": uniform(*r.pen),
    }


def _render(points, segments, d: dict[str, torch.Tensor]) -> torch.Tensor:
    n = len(points)
    cos, sin = torch.cos(d["angle"]), torch.sin(d["angle"])
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shearing = torch.eye(2).repeat(n, 1, 1)
    shearing[:, 0, 1] = d["shear"]
    transform = rotation @ shearing @ torch.diag_embed(d["scale"] * settings().size * d["aspect"])
    distance = _centreline_distance(points + d["jitter"], segments, transform, d["shift"])
    paper = 1 - _ink(distance, d["width"])
    return ((paper * 255).round() / 255)[:, None].expand(-1, 3, -1, -1).contiguous()


def _word(index: int) -> str:
    """Consonant-vowel-consonant-vowel words: one BPE token each with the tiny tokenizer."""
    consonants, vowels = "bdfghjklmnprstvwz", "aeiou"
    out = []
    for alphabet in (vowels, consonants, vowels, consonants):
        index, r = divmod(index, len(alphabet))
        out.append(alphabet[r])
    if index:
        raise ValueError("more glyph classes than words")
    return "".join(reversed(out))


def shape_distances(glyphs: list[Glyph]) -> torch.Tensor:
    """(G, G) symmetric Hausdorff distances, in pixels, between the glyphs' stroke centrelines
    as plainly rendered: how far the farthest stroke of one is from every stroke of the other.
    A stroke one has and the other lacks (E and F, C and G) makes it large; the same letter
    drawn with a double or slightly moved stroke (a bold font) keeps it around a pixel."""
    dist = torch.cat([_plain_distance(glyphs[i : i + 128]) for i in range(0, len(glyphs), 128)])
    on_stroke = dist < 0.75  # (G, N) pixels a centreline passes through (> half a diagonal)
    directed = torch.stack([(dist * on_stroke[j]).max(1).values for j in range(len(glyphs))], 1)
    return torch.maximum(directed, directed.T)  # directed[i, j]: j's strokes from i's


def distinct_shapes(glyphs: list[Glyph], threshold: float) -> list[list[int]]:
    """Group glyphs whose shapes are closer than `threshold`: in order, each glyph joins the
    first group whose first glyph (its representative) is that close, or starts a new group.
    Unlike linking every close pair, this cannot chain different shapes into one group."""
    close = (shape_distances(glyphs) < threshold).tolist()
    groups: list[list[int]] = []
    for i in range(len(glyphs)):
        home = next((g for g in groups if close[g[0]][i]), None)
        if home is None:
            groups.append([i])
        else:
            home.append(i)
    return groups


def build_catalogue() -> dict:
    """Work out the glyph classes from the fonts (about 20 s): identical stroke sets, then near-
    identical shapes, are merged; classes are split by the split seed. The result is shipped as
    CATALOGUE; `catalogue()` reads it."""
    world = settings()
    unique: dict[tuple, tuple[str, list]] = {}
    members: dict[tuple, list[str]] = {}
    for gid, strokes in _font_glyphs():
        lo_x = min(x for s in strokes for x, _ in s)
        lo_y = min(y for s in strokes for _, y in s)
        key = tuple(sorted(tuple((x - lo_x, y - lo_y) for x, y in s) for s in strokes))
        unique.setdefault(key, (gid, strokes))
        members.setdefault(key, []).append(gid)
    keys = list(unique)
    shapes = [Glyph(unique[k][0], "", *_normalise(unique[k][1]), ()) for k in keys]
    classes = sorted(
        [shapes[g[0]].name, sorted(m for i in g for m in members[keys[i]])]
        for g in distinct_shapes(shapes, world.merge_threshold)
    )
    order = torch.randperm(len(classes), generator=torch.Generator().manual_seed(world.split_seed))
    n_base = round(world.splits["base"] * len(classes))
    n_val = round(world.splits["val"] * len(classes))
    split_of = {}
    for rank, i in enumerate(order.tolist()):
        split_of[i] = "base" if rank < n_base else "val" if rank < n_base + n_val else "novel"
    return {
        "merge_threshold": world.merge_threshold,
        "split_seed": world.split_seed,
        "classes": [
            {"name": name, "word": _word(i), "split": split_of[i], "members": merged}
            for i, (name, merged) in enumerate(classes)
        ],
    }


@functools.lru_cache(maxsize=1)
def catalogue() -> dict[str, list[Glyph]]:
    """Every glyph class, by split, from the shipped CATALOGUE and the fonts' strokes."""
    strokes = dict(_font_glyphs())
    out: dict[str, list[Glyph]] = {name: [] for name in SPLITS}
    for c in json.loads(CATALOGUE.read_text())["classes"]:
        points, segments = _normalise(strokes[c["name"]])
        out[c["split"]].append(Glyph(c["name"], c["word"], points, segments, tuple(c["members"])))
    return out


def split(name: str) -> list[Glyph]:
    if name not in SPLITS:
        raise TintError(f"unknown glyph split {name!r} (choose from {', '.join(SPLITS)})")
    return catalogue()[name]


def benchmark_instances(glyph: Glyph, count: int | None = None) -> torch.Tensor:
    """The benchmark's first `count` (default: all) instances of one class, (count, 3, size,
    size): a function of the class alone."""
    count = settings().instances if count is None else count
    return render_each(
        [glyph] * count, [seeds.generator("glyphs", glyph.name, i) for i in range(count)]
    )


def write_split(name: str, out: str | Path, count: int | None = None) -> int:
    """Write a split as class folders out/<class>/<i>.png; returns the number of classes."""
    from tint.data.images import to_image
    from tint.io.run_folder import writable_folder

    glyphs = split(name)
    with writable_folder(out) as folder:
        for glyph in glyphs:
            for i, x in enumerate(benchmark_instances(glyph, count)):
                write_png(folder / glyph.name / f"{i:02d}.png", to_image(x))
    return len(glyphs)


def caption(glyph: Glyph) -> str:
    return f"a drawing of a {glyph.word}"


def draw_captioned(n: int, generator: torch.Generator) -> tuple[torch.Tensor, list[str]]:
    """Fresh random instances of random base classes, captioned "a drawing of a <word>"."""
    base = split("base")
    picks = torch.randint(len(base), (n,), generator=generator).tolist()
    chosen = [base[i] for i in picks]
    return render(chosen, generator), [caption(g) for g in chosen]


def draw_labelled(n: int, generator: torch.Generator) -> tuple[torch.Tensor, list[int]]:
    """Fresh random instances of random base classes, with their indices in `split("base")`."""
    base = split("base")
    picks = torch.randint(len(base), (n,), generator=generator).tolist()
    return render([base[i] for i in picks], generator), picks


def base_held_out(per_class: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The benchmark's first instances of every base class (never drawn in training, which
    renders fresh random ones), with their class indices."""
    base = split("base")
    images = torch.cat([benchmark_instances(g, per_class) for g in base])
    return images, torch.arange(len(base)).repeat_interleave(per_class)
