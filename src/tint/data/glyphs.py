"""Glyphs: an Omniglot-style few-shot benchmark drawn from the Hershey vector fonts.

A class is one distinct glyph shape. Glyphs with identical strokes (the same drawing in several
fonts) are one class, and so are glyphs whose plain renderings are near-identical once scaled to
the same size (O/0/o, l/1/I in similar fonts), so no two classes share a shape. Classes are split
by identity: everything one would call the same character (a letter in any case and font, a
numeral, one symbol) and shapes closer than the world's identity distance land in one split; a
fixed seed deals the identities to base (pre-training), val and novel (episodes), about 70/10/20.

An instance is a rendering that varies like a photograph of one object: pen width, rotation,
shear, scale, shift, stroke jitter and elastic strokes, coloured ink on coloured paper, a
brightness ramp, a paper-coloured patch, a stray stroke, blur and noise; 32x32 RGB. The
benchmark holds 20 instances per class, each a function of (class, index) alone, so the same
call gives byte-identical images on any CPU with AVX2 or AVX-512 (without AVX2, other float
kernels put one pixel of about one image in sixty one level off); pre-training may draw as many
fresh base instances as it likes with `render`.

Rendering is vectorised in torch: a pixel's ink is a linear ramp of its distance to the nearest
stroke segment, so thousands of glyphs render in a fraction of a second."""

from __future__ import annotations

import collections
import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from tint.config import from_dict, group, read_file, setting
from tint.errors import TintError
from tint.io import seeds
from tint.io.storage import write_png

SPLITS = ("base", "val", "novel")
ASSETS = Path(__file__).resolve().parent.parent / "assets"
# The world file: the shipped glyphs.toml, or another one named by TINT_WORLD (a world of one's
# own; docs/GLYPHS.md).
WORLD = Path(
    os.environ.get("TINT_WORLD")
    or Path(__file__).resolve().parent.parent / "configs" / "glyphs.toml"
)
# Fonts whose code points mean letters, numerals and marks of a script; every other font's
# glyphs are symbols, each its own character (see `character`).
SCRIPTS = {
    "latin": [
        *("cursive", "futural", "futuram", "gothgbt", "gothgrt", "gothiceng", "gothicger"),
        *("gothicita", "gothitt", "rowmand", "rowmans", "rowmant", "scriptc", "scripts"),
        *("timesi", "timesib", "timesr", "timesrb"),
    ],
    "greek": ["greek", "greekc", "greeks", "timesg"],
    "cyrillic": ["cyrillic", "cyrilc_1"],
}


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
    elastic: float = setting(0.0, "smooth stroke displacement, in units of the longer side")
    ink: tuple[float, float] = setting((0.0, 0.0), "each colour channel of the ink")
    paper: tuple[float, float] = setting((1.0, 1.0), "each colour channel of the paper")
    light: float = setting(0.0, "brightness ramp across the image, up to this either way")
    occlusion: float = setting(0.0, "chance of a paper-coloured patch over part of the glyph")
    clutter: float = setting(0.0, "chance of a stray ink stroke")
    blur: tuple[float, float] = setting((0.0, 0.0), "Gaussian blur sigma, pixels")
    noise: float = setting(0.0, "Gaussian pixel noise, standard deviation")


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
    # Classes whose shapes are closer than this, or that draw one character (`character`), are
    # one identity and land in one split; unset, classes are split one by one. docs/GLYPHS.md.
    identity_distance: float | None = setting(None, "px at 27 px")
    # An identity this large (the letters and numerals, chained through shared shapes) is base:
    # pre-training data, as ImageNet's categories are for miniImageNet's novel ones.
    base_identity_size: int = setting(40, "classes", minimum=1)
    catalogue: str = setting("glyph_classes.json", "the class catalogue, in tint/assets")
    splits: dict[str, float] = setting(factory=dict, help="share of the identities in each split")
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
    """The random variation of n instances, drawn in a fixed order; a variation the world leaves
    at its default (off) draws nothing, so adding one leaves the others' streams as they were."""

    def uniform(lo, hi, *shape):
        return lo + (hi - lo) * torch.rand(n, *shape, generator=generator)

    r = settings().rendering
    d = {
        "jitter": r.jitter * torch.randn((n, num_points, 2), generator=generator),
        "angle": uniform(-r.angle, r.angle),
        "shear": uniform(-r.shear, r.shear),
        "scale": uniform(*r.scale, 1),
        "aspect": 1 + uniform(-r.aspect, r.aspect, 2),  # x and y
        "shift": uniform(-r.shift, r.shift, 2),
        "width": uniform(*r.pen),
    }
    if r.elastic:  # two plane waves, one per axis: frequencies in cycles per glyph, phases
        d["wave"] = uniform(-1.5, 1.5, 2, 2)
        d["phase"] = uniform(0, 2 * torch.pi, 2)
    if r.ink != (0.0, 0.0) or r.paper != (1.0, 1.0):
        d["ink"] = uniform(*r.ink, 3)
        d["paper"] = uniform(*r.paper, 3)
    if r.light:
        d["light"] = torch.cat([uniform(-r.light, r.light, 1), uniform(0, 2 * torch.pi, 1)], 1)
    if r.occlusion:  # a patch: on or off, centre and half-sides as shares of the image
        d["patch"] = torch.cat(
            [
                (uniform(0, 1, 1) < r.occlusion).float(),
                uniform(0.3, 0.7, 2),
                uniform(0.08, 0.18, 2),
            ],
            1,
        )
    if r.clutter:  # a stray stroke: on or off, start, direction, length as a share of the image
        d["stray"] = torch.cat(
            [
                (uniform(0, 1, 1) < r.clutter).float(),
                uniform(0, 1, 2),
                uniform(0, 2 * torch.pi, 1),
                uniform(0.25, 0.5, 1),
            ],
            1,
        )
    if r.blur != (0.0, 0.0):
        d["blur"] = uniform(*r.blur)
    if r.noise:
        size = settings().size
        d["noise"] = r.noise * torch.randn((n, 3, size, size), generator=generator)
    return d


PHOTOGRAPHIC = {"ink", "paper", "stray", "patch", "light", "blur", "noise"}


def _render(points, segments, d: dict[str, torch.Tensor]) -> torch.Tensor:
    n, size = len(points), settings().size
    cos, sin = torch.cos(d["angle"]), torch.sin(d["angle"])
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shearing = torch.eye(2).repeat(n, 1, 1)
    shearing[:, 0, 1] = d["shear"]
    transform = rotation @ shearing @ torch.diag_embed(d["scale"] * size * d["aspect"])
    points = points + d["jitter"]
    if "wave" in d:
        r = settings().rendering
        angle = 2 * torch.pi * points @ d["wave"].transpose(1, 2) + d["phase"][:, None]
        points = points + r.elastic * torch.sin(angle)
    ink = _ink(_centreline_distance(points, segments, transform, d["shift"]), d["width"])
    if not PHOTOGRAPHIC & d.keys():  # black on white, grey
        paper = 1 - ink
        return ((paper * 255).round() / 255)[:, None].expand(-1, 3, -1, -1).contiguous()
    y, x = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    if "stray" in d:
        s = d["stray"]
        start = s[:, 1:3] * size
        end = start + s[:, 4:5] * size * torch.stack([s[:, 3].cos(), s[:, 3].sin()], 1)
        ends = torch.stack([start, end], 1)  # (n, 2, 2) pixels
        pair = torch.tensor([[[0, 1]]]).expand(n, 1, 2)
        stray = _ink(
            _centreline_distance(
                ends - size / 2, pair, torch.eye(2).expand(n, 2, 2), torch.zeros(n, 2)
            ),
            d["width"],
        )
        ink = torch.maximum(ink, stray * s[:, :1, None])
    if "patch" in d:
        p = d["patch"] * torch.tensor([1.0, size, size, size, size])
        inside = ((x - p[:, 1, None, None]).abs() < p[:, 3, None, None]) & (
            (y - p[:, 2, None, None]).abs() < p[:, 4, None, None]
        )
        ink = ink * (1 - inside.float() * p[:, :1, None])
    ink = ink[:, None]
    paper, colour = d.get("paper", torch.ones(n, 3)), d.get("ink", torch.zeros(n, 3))
    image = paper[:, :, None, None] * (1 - ink) + colour[:, :, None, None] * ink
    if "light" in d:
        amount, direction = d["light"][:, 0], d["light"][:, 1]
        ramp = (
            (x - size / 2) * direction.cos()[:, None, None]
            + (y - size / 2) * direction.sin()[:, None, None]
        ) / (size / 2)
        image = image * (1 + amount[:, None, None] * ramp)[:, None]
    if "blur" in d:
        image = _blur(image, d["blur"])
    if "noise" in d:
        image = image + d["noise"]
    return (image.clamp(0, 1) * 255).round() / 255


def _blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian blur, each image with its own sigma (pixels), 5x5 taps, edges replicated."""
    taps = torch.arange(-2, 3, dtype=torch.float32)
    kernel = torch.exp(-(taps**2) / (2 * sigma.clamp(min=1e-3)[:, None] ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(3, 0)  # (n * 3, 5)
    n, c, h, w = images.shape
    x = torch.nn.functional.pad(images.reshape(1, n * c, h, w), (2, 2, 2, 2), mode="replicate")
    x = torch.nn.functional.conv2d(x, kernel[:, None, :, None], groups=n * c)
    x = torch.nn.functional.conv2d(x, kernel[:, None, None, :], groups=n * c)
    return x.reshape(n, c, h, w)


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


def character(glyph_id: str) -> tuple[str, str]:
    """What a person would call the character a font glyph ("futural-0041") draws: a script's
    letter in either case (Latin, Greek and Cyrillic are three scripts), a numeral or mark of any
    text font; a symbol font's glyph is its own character."""
    font, code = glyph_id.rsplit("-", 1)
    char = chr(int(code, 16))
    script = next((name for name, fonts in SCRIPTS.items() if font in fonts), None)
    if script is None:
        return font, code
    return (script, char.lower()) if char.isalpha() else ("text", char)


def identities(members: list[tuple[str, ...]], distances: torch.Tensor, threshold: float):
    """Group classes (each given by its member font glyphs) into identities: two classes are
    one if they share a character (`character`) or their shapes are closer than `threshold`
    (`shape_distances`), and so on transitively. Returns lists of class indices."""
    parent = list(range(len(members)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    pairs = torch.nonzero(torch.triu(distances < threshold, 1)).tolist()
    for i, glyph_ids in enumerate(members):
        pairs += [(first.setdefault(character(m), i), i) for m in glyph_ids]
    for i, j in pairs:
        parent[root(i)] = root(j)
    groups = collections.defaultdict(list)
    for i in range(len(members)):
        groups[root(i)].append(i)
    return sorted(groups.values())


def build_catalogue() -> dict:
    """Work out the glyph classes from the fonts (about 20 s): identical stroke sets, then near-
    identical shapes, are merged; classes, or with an identity distance whole identities, are
    split by the split seed. The result is shipped as the world's catalogue, which `catalogue()`
    reads."""
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
    if world.identity_distance is None:
        units = [[i] for i in range(len(classes))]
    else:
        strokes = dict(_font_glyphs())
        reps = [Glyph(name, "", *_normalise(strokes[name]), ()) for name, _ in classes]
        units = identities(
            [tuple(m) for _, m in classes], shape_distances(reps), world.identity_distance
        )
    split_of = _split_units(units, world)
    return {
        "merge_threshold": world.merge_threshold,
        "identity_distance": world.identity_distance,
        "split_seed": world.split_seed,
        "classes": [
            {"name": name, "word": _word(i), "split": split_of[i], "members": merged}
            for i, (name, merged) in enumerate(classes)
        ],
    }


def _split_units(units: list[list[int]], world: GlyphSettings) -> dict[int, str]:
    """Deal units (lists of class indices) to the splits in the seed's order, about the world's
    shares of the units each; a unit over the world's base identity size is base."""
    large = [u for u in units if len(u) > world.base_identity_size]
    units = [u for u in units if len(u) <= world.base_identity_size]
    order = torch.randperm(len(units), generator=torch.Generator().manual_seed(world.split_seed))
    n_base = round(world.splits["base"] * (len(units) + len(large))) - len(large)
    n_val = round(world.splits["val"] * (len(units) + len(large)))
    split_of = {i: "base" for unit in large for i in unit}
    for rank, u in enumerate(order.tolist()):
        name = "base" if rank < n_base else "val" if rank < n_base + n_val else "novel"
        split_of.update({i: name for i in units[u]})
    return split_of


@functools.lru_cache(maxsize=1)
def catalogue() -> dict[str, list[Glyph]]:
    """Every glyph class, by split, from the world's shipped catalogue and the fonts' strokes."""
    strokes = dict(_font_glyphs())
    out: dict[str, list[Glyph]] = {name: [] for name in SPLITS}
    for c in json.loads((ASSETS / settings().catalogue).read_text())["classes"]:
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
