"""The README and docs/ as a new user reads them: every command block runs, made small with flags
the page names, and prints what the page shows (the lines a user looks at; numbers that depend on
the settings or the machine are not compared, their places are).

Conventions of the pages, which this file relies on:

    ```sh        commands to run; a ```text block right after it shows what they print
    ```console   a transcript: `$ command` lines, each followed by what it prints
    ```python    a snippet to run; `print(...)  # shown` gives what it prints
    ```json      a file or an output shown in full or in part: its keys are checked
    ```          (no language) an illustration: a layout, a formula, a file with ellipses

Every block of the first four kinds must have a case below, and every case a block, so a page
and this file cannot drift apart."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from PIL import Image

from tint.cli import main
from tint.data import glyphs
from tint.data.images import to_image
from tint.diffusion.single_file import write_single_file

from .conftest import write_supports

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["README.md", "docs/PERFORMANCE.md", "docs/GLYPHS.md", "docs/SCALING.md"]
RUNNABLE = ("sh", "console", "python", "json", "toml")


@dataclass
class Block:
    page: str
    line: int
    lang: str
    text: str
    shows: str | None = None  # the ```text block that follows a sh or python block

    @property
    def key(self) -> str:
        """The block's first line that is not a comment: what the cases are keyed by."""
        for line in self.text.splitlines():
            if line.strip() and not line.startswith("#"):
                return line.strip()
        return ""


def read_blocks(page: str) -> list[Block]:
    blocks, lines = [], (ROOT / page).read_text().splitlines()
    i = 0
    while i < len(lines):
        fence = re.fullmatch(r"```(\w*)", lines[i])
        if fence:
            end = lines.index("```", i + 1)
            blocks.append(Block(page, i + 1, fence.group(1), "\n".join(lines[i + 1 : end])))
            i = end
        i += 1
    for block, after in zip(blocks, blocks[1:]):
        if block.lang in ("sh", "python") and after.lang == "text":
            block.shows = after.text
    return blocks


# --- comparing what a command printed with what the page shows ----------------------------------

PROGRESS = re.compile(r"\d+%\|")  # a progress bar
NUMBER = re.compile(r"[+-]?\d[\d,]*(\.\d+)?")


def _normal(line: str) -> str:
    return " ".join(NUMBER.sub("#", line).split())


def _matches(shown: str, printed: str) -> bool:
    """A shown line matches a printed one if they agree but for numbers and for `...`."""
    parts = [re.escape(p) for p in _normal(shown).split("...")]
    return re.fullmatch(".*".join(parts), _normal(printed)) is not None


def assert_shows(shown: str, printed: str, where: str) -> None:
    """Every line the page shows (progress bars aside) is printed, in that order."""
    lines = [line for line in printed.splitlines() if line.strip()]
    at = 0
    for line in shown.splitlines():
        if not line.strip() or PROGRESS.search(line):
            continue
        while at < len(lines) and not _matches(line, lines[at]):
            at += 1
        assert at < len(lines), f"{where}: shows {line!r}, which was not printed:\n{printed}"
        at += 1


def assert_keys(shown: dict, actual: dict, where: str) -> None:
    """Every key the page shows is there, with a value of the same kind."""
    for key, value in shown.items():
        assert key in actual, f"{where}: shows {key!r}, which {sorted(actual)} lacks"
        if isinstance(value, dict):
            assert_keys(value, actual[key], f"{where}.{key}")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            assert isinstance(actual[key], (int, float)), f"{where}.{key}: {actual[key]!r}"
        else:
            assert actual[key] == value, f"{where}.{key}: shows {value!r}, is {actual[key]!r}"


# --- running blocks ------------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_tint(argv: list[str]) -> Run:
    """A `tint` command in this process, as a shell would call it (~ expanded)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([os.path.expanduser(a) if a.startswith("~") else a for a in argv])
    return Run(code, out.getvalue(), err.getvalue())


def statements(script: str) -> list[str]:
    """A sh block as statements: continued lines joined, a for loop kept whole."""
    joined = re.sub(r"\\\n\s*", " ", script)
    result, loop = [], []
    for line in joined.splitlines():
        if loop or line.startswith("for "):
            loop.append(line)
            if line.strip() == "done":
                result.append("\n".join(loop))
                loop = []
        elif line.strip() and not line.startswith("#"):
            result.append(line)
    return result


def run_sh(script: str) -> Run:
    """tint commands run here; anything else (mkdir, cp, loops) in bash, in the same folder."""
    out, err, code = [], [], 0
    for statement in statements(script):
        words = shlex.split(statement, comments=True)
        if words and words[0] == "tint":
            done = run_tint(words[1:])
        else:
            p = subprocess.run(["bash", "-ec", statement], capture_output=True, text=True)
            done = Run(p.returncode, p.stdout, p.stderr)
        out.append(done.out)
        err.append(done.err)
        code = done.code
        assert code == 0, f"{statement!r} failed ({code}):\n{done.err}"
    return Run(code, "".join(out), "".join(err))


def run_python(code: str, prelude: str = "") -> Run:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(prelude + code, "<README>", "exec"), {"__name__": "__readme__"})
    return Run(0, out.getvalue(), "")


def python_shows(code: str) -> str:
    """The output a snippet's comments promise: `print(...)  # 45/45 held-out images right`."""
    return "\n".join(
        m.group(1) for m in re.finditer(r"^print\(.*\)\s+# (.*)$", code, flags=re.MULTILINE)
    )


# --- the cases -----------------------------------------------------------------------------------


@dataclass
class Case:
    scene: str  # blocks of a scene run in page order, in one folder
    small: list[tuple[str, str]] = field(default_factory=list)  # (page text, what runs instead)
    file: str | None = None  # a json block: the file it shows (None: the last command's output)
    needs_cuda: bool = False  # on a machine without CUDA, the command must say so in one line
    prelude: str = ""  # a python snippet that continues an earlier one: what it starts from
    settings: str | None = None  # a toml block: the command whose settings it holds


DEMO_SMALL = "--num 2 --distill-steps 10 --ti-steps 5 --ddim-steps 3 --quiet"
SPEED_SMALL = "--ways 2 --shots 1 --ti-steps 2 --ddim-steps 3 --images 2 --batch 2 --quiet"

CASES = {
    "tint demo --out demo-output": Case(
        "demo", [("tint demo --out demo-output", f"tint demo --out demo-output {DEMO_SMALL}")]
    ),
    "make demo    # creates .venv, installs, runs one few-shot episode end to end "
    "(about 40 s)": Case("make"),
    "tint data glyphs --split novel --out novel-glyphs      # 77 classes x 20 instances": Case(
        "classes",
        [
            (
                "--out my-student --eval held-out",
                "--out my-student --eval held-out --num 4 --distill-steps 20 --ti-steps 5 "
                "--ddim-steps 3 --quiet",
            )
        ],
    ),
    "tint data glyphs --split base --instances 4 --out base-glyphs     # 733 classes x 4": Case(
        "classes",
        [
            ("--instances 4", "--instances 1"),
            (
                "--base base-glyphs",
                "--base base-glyphs --num 4 --distill-steps 20 --ti-steps 5 --ddim-steps 3 --quiet",
            ),
        ],
    ),
    '{"arch": "conv4", "width": 1.0,': Case("classes", file="my-student/student.json"),
    "import json": Case("classes"),
    "import tint": Case(
        "classes",
        [
            (
                'eval="held-out", progress=False)',
                'eval="held-out", progress=False, num=4, distill_steps=20, ti_steps=5, '
                "ddim_steps=3)",
            )
        ],
    ),
    "tint generate my-classes --out more-glyphs": Case(
        "classes",
        [("--out more-glyphs", "--out more-glyphs --num 2 --ti-steps 5 --ddim-steps 3 --quiet")],
    ),
    "tint generate my-supports --out herons --model ~/models/stable-diffusion-v1-5 \\": Case(
        "supports",
        [
            (
                "--num 200 --device cuda --dtype float16",
                "--num 2 --ti-steps 5 --ddim-steps 3 --quiet",
            )
        ],
    ),
    "tint generate my-supports --out herons-from-file \\": Case(
        "supports",
        [
            (
                "--model-config ~/models/stable-diffusion-v1-5",
                "--model-config ~/models/stable-diffusion-v1-5 --num 2 --ti-steps 5 "
                "--ddim-steps 3 --quiet",
            )
        ],
    ),
    'pipe.load_textual_inversion("herons/specialization/heron/learned_embeds.safetensors", '
    'token="<heron>")': Case(
        "supports",
        [('"a photo of a <heron> in the snow")', '"a photo of a <heron>", num_inference_steps=2)')],
        prelude="import os\nfrom diffusers import StableDiffusionPipeline\n"
        "pipe = StableDiffusionPipeline.from_pretrained("
        "os.path.expanduser('~/models/stable-diffusion-v1-5'))\n"
        "pipe.set_progress_bar_config(disable=True)\n",
    ),
    "$ tint generate my-supports --out out --model ~/models/clip-vit": Case("mistakes"),
    "tint benchmark --dataset glyphs --hard --ways 5 --shots 1 --episodes 22 \\": Case(
        "benchmark",
        [
            ("--episodes 22", "--episodes 2"),
            (
                "--num 40 --distill-steps 400",
                "--num 2 --distill-steps 10 --ti-steps 5 --ddim-steps 3 --quiet",
            ),
        ],
    ),
    "tint plan glyphs-1shot --half-width 0.02": Case("benchmark"),
    "tint benchmark --config glyphs-1shot/run.json --distill-steps 1600 --out glyphs-1shot-1600": (
        Case("benchmark", [("--distill-steps 1600", "--distill-steps 20 --quiet")])
    ),
    'tint plan glyphs-1shot --half-width 0.03 --method "tint - supports"': Case("benchmark"),
    "tint sources glyphs-1shot --sources tint,retrieval,supports": Case("benchmark"),
    "tint benchmark --dataset glyphs --hard --shots 1 --episodes 4 --methods teacher,supports,tint "
    "--out bench-ray --ray": Case(
        "scaling",
        [
            ("--episodes 4", "--episodes 2"),
            ("--ray", "--ray --num 2 --distill-steps 10 --ti-steps 5 --ddim-steps 3 --quiet"),
        ],
    ),
    "tint plan other-tool.json --half-width 0.02 --ways 5 --cost-episode 180 --max-queries 19": (
        Case("benchmark")
    ),
    "tint speed --arch tiny --compare reference": Case(
        "speed", [("--compare reference", f"--compare reference {SPEED_SMALL}")]
    ),
    "tint speed --arch sd15 --device cuda --dtype float16 --compare reference --json": Case(
        "speed", needs_cuda=True
    ),
    "tint data glyphs --split novel --out novel-glyphs": Case("glyphs"),
    "tint pretrain diffusion --out glyph-diffusion    # VAE, then UNet + CLIP text encoder; "
    "hours on a CPU": Case(
        "training",
        [
            (
                "--out glyph-diffusion",
                "--out glyph-diffusion --vae-steps 2 --denoiser-steps 2 --denoiser-batch 4 --quiet",
            ),
            (
                "--out glyph-teacher",
                "--out glyph-teacher --train-steps 2 --train-batch 4 --network-widths 8,16 "
                "--network-blocks 1,1 --quiet",
            ),
            (
                "--out glyph-student-conv4",
                "--out glyph-student-conv4 --train-steps 2 --train-batch 4 --quiet",
            ),
            (
                "--out glyph-upscaler",
                "--out glyph-upscaler --vae-steps 2 --vae-batch 4 --denoiser-steps 2 "
                "--denoiser-batch 4 --quiet",
            ),
        ],
    ),
    "tint eval-model --model glyph-diffusion --teacher glyph-teacher --json": Case(
        "training",
        [
            (
                "--json",
                "--json --base-classes 2 --per-base-class 1 --tasks 1 --ways 2 --shots 1 "
                "--per-class 1 --ddim-steps 2 --ti-steps 2 --quiet",
            )
        ],
    ),
    "{": Case("training"),
    "tint generate my-classes --out again --config more-glyphs/run.json": Case("classes"),
    "[generation]": Case("toml", settings="generate"),
    "from tint import DiffusionModel, GenerateConfig, generate": Case(
        "python",
        [
            ('device="cuda", dtype="float16"', 'device="cpu", dtype="float32"'),
            ("num=200, alpha=0.5", "num=2, alpha=0.5, ddim_steps=3, ti=TI(steps=5)"),
            (
                'generate("my-supports", "herons", model, config)',
                'generate("my-supports", "herons", model, config, progress=False)',
            ),
        ],
        prelude="from tint.diffusion.textual_inversion import TextualInversionConfig as TI\n",
    ),
    "tint speed --arch tiny --compare reference --json": Case(
        "speed", [("--compare reference --json", f"--compare reference --json {SPEED_SMALL}")]
    ),
    "tint speed --pool 1000000 --json": Case("speed", [("--pool 1000000", "--pool 3000")]),
    '{"pool": 1000000, "dim": 128, "queries": 25, "k": 40,': Case("speed"),
}


def _blocks() -> list[Block]:
    return [b for page in PAGES for b in read_blocks(page) if b.lang in RUNNABLE]


def test_every_runnable_block_has_a_case_and_every_case_a_block():
    keys = [b.key for b in _blocks()]
    unknown = [f"{b.page}:{b.line}: {b.key}" for b in _blocks() if b.key not in CASES]
    assert not unknown, "blocks without a case in tests/test_readme.py:\n" + "\n".join(unknown)
    assert not set(CASES) - set(keys), f"cases without a block: {set(CASES) - set(keys)}"


def test_the_make_targets_run_what_the_readme_says():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: .*\n\t\$\(VENV\)/bin/tint demo --out demo-output$", makefile, re.M)
    assert re.search(r"^test: .*\n\t\$\(PY\) -m pytest -q$", makefile, re.M)
    fast = (
        r'^check: .*\n\t\$\(PY\) -m pytest -q -m "not slow and not e2e and not ray and not readme"$'
    )
    assert re.search(fast, makefile, re.M)


# --- the files each scene starts from ------------------------------------------------------------


def _glyph_folder(root: Path, names: list[str], count: int, start: int = 0) -> None:
    for name in names:
        glyph = next(g for g in glyphs.split("novel") if g.name == name)
        for i, x in enumerate(glyphs.benchmark_instances(glyph, start + count)[start:]):
            (root / name).mkdir(parents=True, exist_ok=True)
            to_image(x).save(root / name / f"{i}.png")


def _models(home: Path, model_dir: Path) -> None:
    (home / "models").mkdir(parents=True)
    for name in ("stable-diffusion-v1-5", "sd15"):
        (home / "models" / name).symlink_to(model_dir)
    write_single_file(model_dir, home / "models" / "v1-5-pruned-emaonly.safetensors")
    (home / "models" / "clip-vit").mkdir()
    (home / "models" / "clip-vit" / "config.json").write_text('{"model_type": "clip"}')


def _supports(root: Path) -> None:
    """my-supports/heron and my-supports/egret, five images each, as the README draws them."""
    write_supports(root / "raw", shots=5)
    for raw, name, files in (
        ("orange-disc", "heron", ["1.jpg", "2.jpg", "3.jpg", "4.jpg", "5.jpg"]),
        ("purple-square", "egret", ["a.png", "b.png", "c.png", "d.png", "e.png"]),
    ):
        (root / "my-supports" / name).mkdir(parents=True)
        for i, file in enumerate(files):
            Image.open(root / "raw" / raw / f"{i}.png").save(root / "my-supports" / name / file)
    shutil.rmtree(root / "raw")


def _mistakes(root: Path) -> None:
    """What the transcript of mistakes runs on: each folder wrong in the way it shows."""
    _supports(root)
    (root / "my-supports" / "egret" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    (root / "thumbnails" / "dot").mkdir(parents=True)
    Image.new("RGB", (1, 1)).save(root / "thumbnails" / "dot" / "0.png")
    (root / "one-class" / "a").mkdir(parents=True)
    Image.new("RGB", (16, 16)).save(root / "one-class" / "a" / "0.png")
    names = [g.name for g in glyphs.split("novel")[:2]]
    _glyph_folder(root / "my-classes", names, 2)
    (root / "my-student").mkdir()
    (root / "my-student" / "student.json").write_text("{}")
    (root / "my-student" / "student.safetensors").write_bytes(b"")
    teacher = shutil.copytree(glyphs.ASSETS / "glyph-teacher", root / "damaged-teacher")
    weights = (teacher / "model.safetensors").read_bytes()
    (teacher / "model.safetensors").write_bytes(weights[: len(weights) // 2])


def _benchmark(root: Path) -> None:
    """other-tool.json: the committed 1-shot run's counts, as another tool would keep them."""
    results = json.loads((ROOT / "benchmarks/glyphs-hard-1shot/results.json").read_text())
    counts = {
        m: [{k: e["methods"][m][k] for k in ("correct", "total")} for e in results["episodes"]]
        for m in results["settings"]["methods"]
    }
    (root / "other-tool.json").write_text(json.dumps(counts))


SETUP = {
    "supports": lambda root, model_dir: (_supports(root), _models(root / "home", model_dir)),
    "python": lambda root, model_dir: (_supports(root), _models(root / "home", model_dir)),
    "mistakes": lambda root, model_dir: (_mistakes(root), _models(root / "home", model_dir)),
    "benchmark": lambda root, model_dir: _benchmark(root),
}


# --- running a scene -----------------------------------------------------------------------------


def _apply(case: Case, text: str, where: str) -> str:
    for old, new in case.small:
        assert old in text, f"{where}: the case makes {old!r} small, which the block lacks"
        text = text.replace(old, new)
    return text


def _check_console(block: Block, home: Path) -> None:
    transcript = re.split(r"^\$ ", block.text, flags=re.MULTILINE)[1:]
    for entry in transcript:
        command, _, shown = entry.partition("\n")
        done = run_tint(shlex.split(command)[1:])
        printed = (done.out + done.err).replace(str(home), "/home/me")
        where = f"{block.page}:{block.line}: $ {command}"
        if "error:" in shown:
            assert done.code in (1, 2), f"{where}: exit {done.code}"
            assert len(printed.strip().splitlines()) == 1, f"{where}: {printed}"
        assert_shows(shown, printed, where)


def _check_toml(block: Block, case: Case, where: str) -> None:
    """A settings file shown on the page is one that its command reads, and sets what it
    shows."""
    from tint.commands import commands
    from tint.config import load, value_at

    command = next(c for c in commands() if c.name == case.settings)
    path = Path("shown.toml")
    path.write_text(block.text)
    settings, given = load(command.settings, command.base(), {}, path)
    for line in block.text.splitlines():
        table = re.fullmatch(r"\[(.+)\]", line.strip())
        if table:
            prefix = table.group(1) + "."
        elif "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            assert str(value_at(settings, prefix + key)) == value, f"{where}: {line}"
            assert prefix + key in given


def _run_scene(scene: str, root: Path, model_dir: Path, monkeypatch) -> None:
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(root)
    SETUP.get(scene, lambda *_: None)(root, model_dir)
    last: Run | None = None
    for block in _blocks():
        case = CASES[block.key]
        if case.scene != scene:
            continue
        where = f"{block.page}:{block.line}"
        if block.lang == "console":
            _check_console(block, home)
            continue
        if block.lang == "toml":
            _check_toml(block, case, where)
            continue
        if block.lang == "json":
            shown = json.loads(block.text)
            actual = json.loads(Path(case.file).read_text() if case.file else last.out)
            assert_keys(shown, actual, where)
            continue
        text = _apply(case, block.text, where)
        if block.lang == "python":
            last = run_python(text, case.prelude)
            assert_shows(python_shows(block.text), last.out, where)
        elif case.needs_cuda and not torch.cuda.is_available():
            (command,) = statements(text)
            last = run_tint(shlex.split(command)[1:])
            assert last.code == 1 and "CUDA is not available" in last.err, last.err
            assert len(last.err.strip().splitlines()) == 1, last.err
        else:
            last = run_sh(text)
        if block.shows is not None:
            assert_shows(block.shows, last.out, where)


SCENES = sorted({c.scene for c in CASES.values()} - {"make"})


@pytest.mark.readme
@pytest.mark.parametrize("scene", SCENES)
def test_the_pages_run_as_written(scene, tmp_path, model_dir, monkeypatch, request):
    if scene == "scaling":
        request.getfixturevalue("ray_address")  # `--ray` runs on the session's Ray instance
    _run_scene(scene, tmp_path, model_dir, monkeypatch)


def test_the_committed_benchmark_numbers_are_what_the_readme_shows():
    """The README's benchmark printouts and tables are the committed results, exactly."""
    from tint.commands.benchmark import print_benchmark

    readme = (ROOT / "README.md").read_text()
    for folder in ("glyphs-hard-1shot", "glyphs-hard-5shot"):
        results = json.loads((ROOT / "benchmarks" / folder / "results.json").read_text())
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            print_benchmark(results, out=None)
        assert printed.getvalue().strip() in readme, folder
    from tint.commands import demo

    source = "benchmarks/glyphs-novel-recipe-1shot"
    results = json.loads((ROOT / source / "results.json").read_text())
    assert demo.benchmark_summary(results, source) == json.loads(demo.BENCHMARK.read_text())
    committed = str(ROOT / "benchmarks/glyphs-hard-1shot")
    for flags in (
        ["--half-width", "0.02"],
        ["--half-width", "0.03", "--method", "tint - supports"],
    ):
        plan = run_tint(["plan", committed, *flags])
        assert plan.code == 0 and plan.out.strip() in readme, flags
    for folder in ("glyphs-hard-1shot", "glyphs-hard-5shot"):
        results = json.loads((ROOT / "benchmarks" / folder / "results.json").read_text())
        rows = {" ".join(line.split()) for line in readme.splitlines()}
        for method in results["settings"]["methods"]:
            assert " ".join(_table_row(results, method).split()) in rows, (folder, method)


def _table_row(results: dict, method: str) -> str:
    """The README's row of a method in a table of methods: accuracy with its interval, paired
    difference over `supports` and the share of the gap closed."""
    s = results["summary"][method]
    cells = [f"`{method}`", f"{s['accuracy']:.1%} [{s['ci95'][0]:.1%}, {s['ci95'][1]:.1%}]"]
    cells[1] = cells[1].replace("%]", "]").replace("%,", ",")
    paired = results["paired"].get(f"{method} - supports")
    if method == "teacher":
        gap = s["accuracy"] - results["summary"]["supports"]["accuracy"]
        cells += [f"{gap * 100:+.1f}", ""]
    elif paired is None:
        cells += ["", ""]
    else:
        lo, hi = paired["ci95"]
        cells += [
            f"{paired['mean'] * 100:+.1f} [{lo * 100:+.1f}, {hi * 100:+.1f}]",
            f"{results['gap_closed'][method]:.2f}",
        ]
    return "| " + " | ".join(cells) + " |"


def page_rows(name: str) -> set[str]:
    """The lines of a page in the repository, whitespace normalised, to look table rows up in."""
    return {" ".join(line.split()) for line in (ROOT / name).read_text().splitlines()}


def assert_first_episodes(trial: str, folder: str) -> None:
    """The committed run `trial` ran on the first episodes of the committed run `folder`."""
    mine, drawn = (
        json.loads((ROOT / "benchmarks" / f / "episodes.json").read_text())["episodes"]
        for f in (trial, folder)
    )
    assert mine == drawn[: len(mine)], trial


def counts(folder: str, method: str) -> list[tuple[int, int]]:
    """(correct, total) per episode of a method in a committed benchmark."""
    results = json.loads((ROOT / "benchmarks" / folder / "results.json").read_text())
    return [
        (e["methods"][method]["correct"], e["methods"][method]["total"])
        for e in results["episodes"]
    ]


def difference(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> str:
    """A minus B, paired, in points with its interval, as the docs write it."""
    from tint.eval.variance import paired_difference

    d = paired_difference(a, b)
    lo, hi = d["ci95"]
    return f"{d['mean'] * 100:+.1f} [{lo * 100:+.1f}, {hi * 100:+.1f}]"


def accuracy(episodes: list[tuple[int, int]]) -> str:
    """An accuracy with its interval, as the docs write it."""
    from tint.eval.variance import summarize

    s = summarize(episodes)
    lo, hi = s["ci95"]
    return f"{s['accuracy']:.1%} [{lo * 100:.1f}, {hi * 100:.1f}]"


def test_the_null_blend_table_is_the_committed_val_runs():
    """Choosing the null blend: each row is a committed val run on the alpha sweep's episodes,
    the paired differences computed from their counts."""
    episodes = (ROOT / "benchmarks" / "glyphs-val-alpha" / "episodes.json").read_text()
    blend = {0: counts("glyphs-val-alpha", "tint:0.9")}
    for b in ("0.5", "1"):
        folder = f"glyphs-val-null-blend-{b}"
        assert (ROOT / "benchmarks" / folder / "episodes.json").read_text() == episodes
        blend[b] = counts(folder, "tint")
    ti = counts("glyphs-val-null-blend-0.5", "ti")
    rows = page_rows("README.md")
    for label, b in (("0 (the paper's rule)", 0), ("0.5 (the default)", "0.5"), ("1", "1")):
        row = f"| {label} | {accuracy(blend[b])} |"
        row += f" {difference(blend[b], blend[0])} |" if b else " |"
        assert row in rows, row
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert difference(blend["0.5"], blend["1"]) in readme
    assert difference(blend["0.5"], ti) in readme
    # The novel 1-shot episodes again, TINT alone at the default blend.
    folder = "glyphs-hard-1shot-null-blend-0.5"
    novel = (ROOT / "benchmarks" / "glyphs-hard-1shot" / "episodes.json").read_text()
    assert (ROOT / "benchmarks" / folder / "episodes.json").read_text() == novel
    default, paper = counts(folder, "tint"), counts("glyphs-hard-1shot", "tint")
    assert accuracy(default) in readme and accuracy(paper) in readme
    assert difference(default, paper) in readme
    assert difference(default, counts("glyphs-hard-1shot", "ti")) in readme


SPEED_TRIALS = {  # docs/PERFORMANCE.md's trials: the label of each row and its committed run
    "views16": "teacher's labels once, 16 views",
    "views16-steps200": "16 views, 200 steps",
    "views16-steps200-lr6e-3": "16 views, 200 steps at lr 6e-3",
    "ddim10-views16": "16 views, 10 DDIM steps",
    "fast": "all four: 16 views, 10 DDIM steps, 100 TI steps at 1e-2, bfloat16 students",
}


def _mean_stages(results: list[dict], *names: str) -> float:
    """The mean over episodes of the seconds of these stages."""
    return sum(sum(e["stages"].get(n, 0.0) for n in names) for e in results) / len(results)


def speed_trial_rows() -> list[str]:
    """The rows of docs/PERFORMANCE.md's table of faster settings tried on val: each trial's
    committed run paired with the committed settings' run on its episodes."""
    from tint.eval.variance import summarize

    def episodes(folder: str) -> list[dict]:
        path = ROOT / "benchmarks" / folder / "results.json"
        return [e["methods"]["tint"] for e in json.loads(path.read_text())["episodes"]]

    rows = []
    for shots in (1, 5):
        before = episodes(f"glyphs-val-speed-{shots}shot")
        for trial, label in SPEED_TRIALS.items():
            after = episodes(f"glyphs-val-speed-{shots}shot-{trial}")
            old = before[: len(after)]
            new_counts, old_counts = ([(e["correct"], e["total"]) for e in r] for r in (after, old))
            share = summarize(new_counts)["accuracy"]
            student = [_mean_stages(run, "teacher_labels", "distillation") for run in (old, after)]
            diffusion = [
                _mean_stages(run, "null_text_inversion", "generation") for run in (old, after)
            ]
            inversion = [_mean_stages(run, "textual_inversion") for run in (old, after)]
            rows.append(
                f"| {label} | {shots} | {len(after)} | {share:.1%} | "
                f"{difference(new_counts, old_counts)} | "
                f"{student[0]:.1f} s | {student[1]:.1f} s | {diffusion[0]:.1f} s | "
                + (f"{diffusion[1]:.1f} s | " if diffusion[1] else "reused | ")
                + f"{inversion[0]:.1f} s | "
                + (f"{inversion[1]:.1f} s |" if inversion[1] else "reused |")
            )
    return rows


def test_the_speed_trials_table_is_the_committed_val_runs():
    """Each trial ran on the val episodes of the committed settings' run, and the table shows
    its paired difference from that run's counts."""
    page = page_rows("docs/PERFORMANCE.md")
    for shots in (1, 5):
        for trial in SPEED_TRIALS:
            baseline = f"glyphs-val-speed-{shots}shot"
            assert_first_episodes(f"{baseline}-{trial}", baseline)
    for row in speed_trial_rows():
        assert row in page, row


STAGE_ROWS = {  # docs/PERFORMANCE.md's stages of the `tint` episode: label, stages, what changed
    "textual inversion": (("textual_inversion",), "300 steps at lr 5e-3 -> 100 at 1e-2"),
    "null-text inversion": (("null_text_inversion",), "25 DDIM steps -> 10"),
    "generation": (("generation",), "25 DDIM steps -> 10"),
    "teacher's labels": (("teacher_labels",), "every step's 64 views -> 16 views of each once"),
    "distillation": (("distillation",), "float32 -> bfloat16 autocast"),
}


def _episode(version: str) -> dict[str, dict]:
    """The committed six-method 5-way 5-shot episode at tint `version`'s settings."""
    path = ROOT / "benchmarks" / f"glyphs-hard-5shot-episode-{version}" / "results.json"
    return json.loads(path.read_text())["episodes"][0]["methods"]


def stage_rows() -> list[str]:
    """docs/PERFORMANCE.md's tables of the one episode timed before and after: `tint` stage by
    stage, then every method's seconds."""
    before, after = _episode("0.4"), _episode("0.5")
    rows = []
    for label, (names, change) in STAGE_ROWS.items():
        b, a = (sum(m["tint"]["stages"].get(n, 0.0) for n in names) for m in (before, after))
        rows.append(f"| {label} | {change} | {b:.1f} s | {a:.1f} s | {b / a:.1f}x |")
    b, a = before["tint"]["seconds"], after["tint"]["seconds"]
    rows.append(f"| **`tint`, all stages** | | **{b:.1f} s** | **{a:.1f} s** | **{b / a:.1f}x** |")
    for method in before:
        b, a = before[method]["seconds"], after[method]["seconds"]
        rows.append(f"| `{method}` | {b:.1f} s | {a:.1f} s | {b / a:.1f}x |")
    b, a = (sum(m["seconds"] for m in e.values()) for e in (before, after))
    rows.append(f"| **the episode** | **{b:.1f} s** | **{a:.1f} s** | **{b / a:.1f}x** |")
    return rows


def confirmation_rows() -> list[str]:
    """docs/PERFORMANCE.md's accuracy of today's defaults, paired with the committed settings on
    the same episodes: val (the trial) and novel (the confirmation)."""
    rows = []
    for split, folder, trial in [
        ("val", "glyphs-val-speed-1shot", "glyphs-val-speed-1shot-fast"),
        ("val", "glyphs-val-speed-5shot", "glyphs-val-speed-5shot-fast"),
        ("novel", "glyphs-hard-1shot", "glyphs-hard-1shot-fast"),
        ("novel", "glyphs-hard-5shot", "glyphs-hard-5shot-fast"),
    ]:
        assert_first_episodes(trial, folder)
        after = counts(trial, "tint")
        before = counts(folder, "tint")[: len(after)]
        shots = json.loads((ROOT / "benchmarks" / folder / "run.json").read_text())["shots"]
        rows.append(
            f"| {split} | {shots} | {len(after)} | {accuracy(before)} | "
            f"{accuracy(after)} | {difference(after, before)} |"
        )
    return rows


def test_the_time_to_a_student_tables_are_the_committed_runs():
    """The per-stage timing and the paired accuracy of today's defaults in docs/PERFORMANCE.md
    are those of the committed runs."""
    page, readme = page_rows("docs/PERFORMANCE.md"), page_rows("README.md")
    confirmation = confirmation_rows()
    for row in stage_rows() + confirmation:
        assert row in page, row
    for row in confirmation:  # the README shows the novel rows
        assert row in readme or row.startswith("| val"), row


RECIPE_PILOTS = ("glyphs-val-recipe-1shot", "glyphs-val-recipe-5shot")
RECIPE_PAIRS = [  # docs/RESULTS.md's paired comparisons, each on both pilots
    ("supports@pretrained", "supports"),
    ("tint@pretrained", "tint"),
    ("tint@pretrained", "supports@pretrained"),
    ("base+tint", "base"),
    ("base+tint@pretrained", "base@pretrained"),
    ("tint", "retrieval"),
    ("tint@pretrained", "retrieval@pretrained"),
    ("retrieval@pretrained", "base@pretrained"),
    ("tint+retrieval@pretrained", "retrieval@pretrained"),
]


def recipe_rows(folder: str) -> list[str]:
    """docs/RESULTS.md's table of one run: every method's accuracy, its paired difference to
    `supports`, the share of the teacher's gap it closes, and the share of the gap the
    fine-tuned student leaves."""
    results = json.loads((ROOT / "benchmarks" / folder / "results.json").read_text())
    methods = list(results["episodes"][0]["methods"])
    rows = []
    for m in methods:
        cells = [f"`{m}`", accuracy(counts(folder, m)), "", "", ""]
        if m not in ("teacher", "supports"):
            cells[2] = difference(counts(folder, m), counts(folder, "supports"))
            cells[3] = gap_closed(folder, m)
        if m not in ("teacher", "supports", "supports@pretrained"):
            cells[4] = gap_closed(folder, m, "supports@pretrained")
        rows.append(" ".join(f"| {' | '.join(cells)} |".split()))
    return rows


def test_the_results_tables_are_the_committed_val_pilots():
    """docs/RESULTS.md: each pilot's table and the paired comparisons that chose the recipes,
    recomputed from the committed val runs (both on the same episodes as the speed trials)."""
    page = page_rows("docs/RESULTS.md")
    for folder in RECIPE_PILOTS:
        for row in recipe_rows(folder):
            assert row in page, row
        shots = json.loads((ROOT / "benchmarks" / folder / "run.json").read_text())["shots"]
        assert_first_episodes(folder, f"glyphs-val-speed-{shots}shot")
    for a, b in RECIPE_PAIRS:
        cells = [difference(counts(f, a), counts(f, b)) for f in RECIPE_PILOTS]
        row = f"| `{a}` minus `{b}` | {cells[0]} | {cells[1]} |"
        assert row in page, row


def test_the_base_batch_table_is_the_committed_val_runs():
    """docs/RESULTS.md's choice of base images per step: paired differences of the committed
    val runs at 16 and 256 against the 1-shot pilot's 64, on the same episodes."""
    page = page_rows("docs/RESULTS.md")
    for method in ("base", "base@pretrained"):
        cells = [
            difference(
                counts(f"glyphs-val-base-batch{b}", method), counts(RECIPE_PILOTS[0], method)
            )
            for b in (16, 256)
        ]
        assert f"| `{method}` | {cells[0]} | {cells[1]} |" in page, (method, cells)
    for b in (16, 256):
        assert_first_episodes(f"glyphs-val-base-batch{b}", RECIPE_PILOTS[0])


def test_the_mixing_table_is_the_committed_val_runs():
    """docs/RESULTS.md's choice of the proportion of retrieved images in a pool: paired
    differences of the committed val runs at 10 and 160 per class against the 1-shot pilot's 40
    (its --num), on the same episodes."""
    page = page_rows("docs/RESULTS.md")
    for method in ("tint+retrieval", "tint+retrieval@pretrained"):
        cells = [
            difference(
                counts(f"glyphs-val-mix-1shot-retrieval{n}", method),
                counts(RECIPE_PILOTS[0], method),
            )
            for n in (10, 160)
        ]
        assert f"| `{method}` | {cells[0]} | {cells[1]} |" in page, (method, cells)
    for n in (10, 160):
        run = json.loads(
            (ROOT / "benchmarks" / f"glyphs-val-mix-1shot-retrieval{n}" / "run.json").read_text()
        )
        assert run["setup"]["retrieval_num"] == n and run["setup"]["generation"]["num"] == 40
        assert_first_episodes(f"glyphs-val-mix-1shot-retrieval{n}", RECIPE_PILOTS[0])


RESULTS_CURVES = [  # docs/RESULTS.md's curves: the setting and the committed val runs of each
    (
        "setup.generation.num",
        (
            "glyphs-val-curve-1shot-num10",
            "glyphs-val-recipe-1shot",
            "glyphs-val-curve-1shot-num160",
            "glyphs-val-curve-1shot-num640",
        ),
    ),
    (
        "setup.distill.steps",
        (
            "glyphs-val-curve-1shot-steps100",
            "glyphs-val-curve-1shot-steps200",
            "glyphs-val-recipe-1shot",
            "glyphs-val-curve-1shot-steps800",
            "glyphs-val-curve-1shot-steps1600",
        ),
    ),
    (
        "base_pool",
        (
            "glyphs-val-curve-1shot-pool750",
            "glyphs-val-curve-1shot-pool3000",
            "glyphs-val-recipe-1shot",
        ),
    ),
]
STEPS_SAID = ["tint", "ti", "base", "tint+retrieval", "tint@pretrained", "base@pretrained"]
STEPS_SAID += ["tint+retrieval@pretrained"]


def test_the_results_curves_are_the_committed_val_runs():
    """docs/RESULTS.md's curves: `tint curve`'s rows over the committed val runs they name."""
    from tint.eval.curve import FOLDER, curve_name, read_curve, table_rows

    page = page_rows("docs/RESULTS.md")
    for x, folders in RESULTS_CURVES:
        curve = read_curve([ROOT / "benchmarks" / f for f in folders], x)
        for row in table_rows(curve):
            line = f"| {' | '.join(row)} |"
            assert " ".join(line.split()) in page, line
        for folder in folders:  # each run's own report shows the curve
            kept = ROOT / "benchmarks" / folder / FOLDER / curve_name(curve)
            assert [p["methods"] for p in json.loads(kept.read_text())["points"]] == [
                p["methods"] for p in curve["points"]
            ], kept
    text = " ".join((ROOT / "docs" / "RESULTS.md").read_text().split())
    run = "glyphs-val-curve-1shot-num160"
    for a, b in (("tint", "ti"), ("tint@pretrained", "ti@pretrained")):
        said = f"`{a}` minus `{b}` {'is ' if a == 'tint' else ''}"
        assert said + difference(counts(run, a), counts(run, b)) in text, (a, b)
    run = "glyphs-val-curve-1shot-num640"
    pairs = [
        difference(counts(run, a), counts(run, f"ti{a[4:]}")) for a in ("tint", "tint@pretrained")
    ]
    assert f"at 640, {pairs[0]} and {pairs[1]}" in text
    for method in STEPS_SAID:  # from 400 to 1,600 steps, paired
        longer = counts("glyphs-val-curve-1shot-steps1600", method)
        said = f"`{method}` {difference(longer, counts('glyphs-val-recipe-1shot', method))}"
        assert said in text, said


def test_the_results_sources_tables_are_the_committed_measurements():
    """docs/RESULTS.md's tables of what each source's images are to the teacher: `tint sources`'
    rows over the committed val measurements and the novel confirmation."""
    from tint.eval.source_measures import table_lines

    page = page_rows("docs/RESULTS.md")
    for folder, episodes, sources in (
        ("glyphs-val-recipe-1shot", 10, ["tint", "retrieval", "supports"]),
        ("glyphs-novel-recipe-1shot", 30, ["tint", "retrieval", "supports"]),
        ("glyphs-val-vary-5shot", 10, ["tint", "retrieval", "tint:spread"]),
    ):
        measured = json.loads((ROOT / "benchmarks" / folder / "sources.json").read_text())
        assert measured["sources"] == sources
        assert len(measured["episodes"]) == episodes
        for line in table_lines(measured)[2:]:
            assert " ".join(line.split()) in page, line


NOVEL_RUNS = ("glyphs-novel-recipe-1shot", "glyphs-novel-recipe-5shot")
NOVEL_PAIRS = [  # docs/RESULTS.md's paired comparisons on the novel classes, each at 1 and 5 shots
    ("supports@pretrained", "supports"),
    ("tint", "supports"),
    ("tint@pretrained", "tint"),
    ("tint@pretrained", "supports@pretrained"),
    ("base+tint", "base"),
    ("base+tint@pretrained", "base@pretrained"),
    ("tint", "retrieval"),
    ("tint+retrieval@pretrained", "tint@pretrained"),
    ("tint+retrieval@pretrained", "base+tint@pretrained"),
    ("tint+retrieval@pretrained", "base@pretrained"),
    ("retrieval@pretrained", "tint+retrieval@pretrained"),
    ("retrieval@pretrained", "base@pretrained"),
]
HEADLINE = {  # the README's headline table: the method of each row and how the row names it
    "teacher": "teacher (the base teacher, a prototype head on the supports)",
    "supports@pretrained": "student fine-tuned on the supports alone",
    "tint": "student on TINT's images, from fresh weights",
    "tint@pretrained": "**recipe without base images**: TINT's images",
    "retrieval@pretrained": "**recipe with base images**: the base images nearest the supports",
}


def gap_closed(folder: str, method: str, baseline: str = "supports") -> str:
    """(method - baseline) / (teacher - baseline) from the mean accuracies, as the docs write
    it: the gap from a student on its supports from fresh weights, or from the fine-tuned one."""
    from tint.eval.variance import summarize

    mean = {m: summarize(counts(folder, m))["accuracy"] for m in (method, baseline, "teacher")}
    return f"{(mean[method] - mean[baseline]) / (mean['teacher'] - mean[baseline]):.2f}"


def test_the_novel_confirmation_is_the_committed_novel_runs():
    """docs/RESULTS.md's novel tables and comparisons and the README's headline table,
    recomputed from the committed novel runs; the runs hold at least 20 episodes each, ran the
    recipes that the val pilots chose, and on the episodes of the committed novel benchmarks."""
    page = page_rows("docs/RESULTS.md")
    readme = page_rows("README.md")
    for folder, old in zip(NOVEL_RUNS, ("glyphs-hard-1shot", "glyphs-hard-5shot")):
        assert len(counts(folder, "teacher")) >= 20
        for row in recipe_rows(folder):
            assert row in page, row
        mine, drawn = (
            json.loads((ROOT / "benchmarks" / f / "episodes.json").read_text())["episodes"]
            for f in (folder, old)
        )
        assert mine[: len(drawn)] == drawn[: len(mine)], folder
    for a, b in NOVEL_PAIRS:
        cells = [difference(counts(f, a), counts(f, b)) for f in NOVEL_RUNS]
        row = f"| `{a}` minus `{b}` | {cells[0]} | {cells[1]} |"
        assert row in page, row
    for method, label in HEADLINE.items():
        cells = []
        for folder in NOVEL_RUNS:
            cells.append(accuracy(counts(folder, method)))
            cells.append("" if method == "teacher" else gap_closed(folder, method))
            over = method not in ("teacher", "supports@pretrained")
            cells.append(gap_closed(folder, method, "supports@pretrained") if over else "")
        row = " ".join(f"| {label} | {' | '.join(cells)} |".split())
        assert row in readme, row
    text = " ".join((ROOT / "README.md").read_text().split())
    for a, b in (
        ("tint@pretrained", "supports@pretrained"),
        ("tint+retrieval@pretrained", "retrieval@pretrained"),
    ):
        one, five = (difference(counts(f, a), counts(f, b)) for f in NOVEL_RUNS)
        assert one in text and five in text, (a, b)


def seconds(folder: str, method: str, *stages: str) -> str:
    """The mean over a run's episodes of a method's seconds (or of some of its stages), as the
    docs write it."""
    results = json.loads((ROOT / "benchmarks" / folder / "results.json").read_text())
    rows = [e["methods"][method] for e in results["episodes"]]
    spent = [sum(r["stages"].get(s, 0.0) for s in stages) if stages else r["seconds"] for r in rows]
    return f"{sum(spent) / len(spent):.1f} s"


def test_the_results_prose_numbers_are_the_committed_runs():
    """docs/RESULTS.md's seconds and distances in prose, recomputed; and each run is of the split
    the page says: the pilots and trials of val, the confirmations of novel."""
    from tint.eval.variance import summarize

    text = " ".join((ROOT / "docs" / "RESULTS.md").read_text().split())
    tint_stages = ("textual_inversion", "null_text_inversion", "generation")
    val, novel = "glyphs-val-recipe-5shot", "glyphs-novel-recipe-5shot"
    said = [
        f"costs {seconds(val, 'tint+retrieval@pretrained')} a 5-shot episode",
        f"against {seconds(val, 'base+tint@pretrained')} for the paper's",
        f"generation, {seconds(val, 'tint', *tint_stages)} an episode",
        f"costs {seconds(novel, 'supports@pretrained')} an episode",
        f"generation ({seconds(novel, 'tint', *tint_stages)}) and its student "
        f"({seconds(novel, 'tint@pretrained')})",
        f"({seconds(novel, 'tint+retrieval@pretrained')} against "
        f"{seconds(novel, 'base+tint@pretrained')} a 5-shot episode",
    ]
    for phrase in said:
        assert phrase in text, phrase
    mean = {
        (f, m): summarize(counts(f, m))["accuracy"] * 100
        for f in NOVEL_RUNS
        for m in ("teacher", "tint+retrieval@pretrained")
    }
    under = [mean[f, "teacher"] - mean[f, "tint+retrieval@pretrained"] for f in NOVEL_RUNS]
    assert f"{under[0]:.1f} points under the teacher at 1 shot" in text
    assert f"and {under[1]:.1f} at 5." in text
    readme = " ".join((ROOT / "README.md").read_text().split())

    def over(folder: str, method: str) -> str:
        return f"{float(gap_closed(folder, method, 'supports@pretrained')):.0%}"

    one, five = RECIPE_PILOTS
    recipe, plain = "retrieval@pretrained", "tint@pretrained"
    closes = [f"{float(gap_closed(f, m)):.0%}" for m in (recipe, plain) for f in (one, five)]
    assert (
        "this recipe closes {} of the gap to the teacher at 1 shot and {} at 5, and the one "
        "above {} and {};".format(*closes)
        in readme
    )
    assert f"leaves, {over(one, recipe)} and {over(five, recipe)}, and the one above" in readme
    mixed = "tint+retrieval@pretrained"
    val = [difference(counts(f, recipe), counts(f, mixed)) for f in (one, five)]
    fresh = [difference(counts(f, recipe), counts(f, mixed)) for f in CONFIRM_RUNS]
    assert f"{val[0]} points on val at 1 shot and {val[1]} at 5 for the base images" in readme
    assert f"{fresh[0]} and {fresh[1]} on fresh novel episodes" in readme
    assert f"above {over(one, plain)} and none ({over(five, plain)}:" in readme
    assert f"and {over(one, plain)} to {over(one, 'retrieval@pretrained')} of the gap" in readme
    novel = NOVEL_RUNS[0]  # the demo's 30 benchmark episodes
    alone = f"{float(gap_closed(novel, 'supports@pretrained')):.0%}"
    adds = difference(counts(novel, plain), counts(novel, "supports@pretrained")).split()[0]
    leaves = f"{float(gap_closed(novel, plain, 'supports@pretrained')):.0%}"
    assert f"pretraining alone closes {alone} of the gap" in readme
    assert f"student is {adds} points, {leaves} of the gap that fine-tuning leaves" in readme
    for path in sorted((ROOT / "benchmarks").glob("*/*.json")):
        if path.name == "run.json" or path.parent.name.endswith("-fidelity"):
            settings = json.loads(path.read_text())
            split = settings.get("split") or settings["settings"]["split"]
            expected = "val" if "-val-" in path.parent.name else "novel"
            assert split == expected, (path, split)


VARY_RUNS = (
    "glyphs-val-vary-1shot",
    "glyphs-val-vary-5shot",
)  # docs/RESULTS.md's val trials of the varied generators


def _with_tint(method: str) -> str | None:
    """The same method with plain `tint` in place of its candidate generator, if it has one."""
    body, at, init = method.partition("@")
    parts = body.split("+")
    swapped = ["tint" if p in ("boundary",) or p.startswith("tint:") else p for p in parts]
    if swapped == parts:
        return None
    return "+".join(swapped) + at + init


def candidate_rows(folder: str) -> list[str]:
    """docs/RESULTS.md's table of a val trial of generators: each method's accuracy, its paired
    difference to the same method with plain TINT, its share of what fine-tuning leaves, and
    its own seconds an episode."""
    from tint.eval.variance import summarize

    results = json.loads((ROOT / "benchmarks" / folder / "results.json").read_text())
    rows = []
    for m in results["settings"]["methods"]:
        plain = _with_tint(m)
        cells = [f"`{m}`", accuracy(counts(folder, m))]
        cells.append(difference(counts(folder, m), counts(folder, plain)) if plain else "")
        over = m not in ("teacher", "supports@pretrained")
        cells.append(gap_closed(folder, m, "supports@pretrained") if over else "")
        cells.append(seconds(folder, m))
        rows.append(" ".join(f"| {' | '.join(cells)} |".split()))
    assert summarize(counts(folder, "teacher"))["episodes"] == 10
    return rows


def test_the_varied_generators_tables_are_the_committed_val_trials():
    """docs/RESULTS.md's val trials of the generators that vary: each row recomputed from its
    committed run, which ran on the pilots' episodes with the pilots' settings."""
    page = page_rows("docs/RESULTS.md")
    for folder in VARY_RUNS:
        shots = json.loads((ROOT / "benchmarks" / folder / "run.json").read_text())["shots"]
        assert_first_episodes(folder, f"glyphs-val-recipe-{shots}shot")
        for row in candidate_rows(folder):
            assert row in page, row
    text = " ".join((ROOT / "docs" / "RESULTS.md").read_text().split())
    one, five = VARY_RUNS

    def paired(folder: str, a: str, b: str = "tint") -> str:
        return difference(counts(folder, a), counts(folder, b))

    said = [
        f"`tint:spread` from fresh weights ({paired(one, 'tint:spread')})",
        "`tint:spread+retrieval@pretrained` ("
        + paired(one, "tint:spread+retrieval@pretrained", "tint+retrieval@pretrained")
        + ")",
        f"pretrained ({paired(one, 'tint:uncertain@pretrained', 'tint@pretrained')})",
        f"`tint:spread` {paired(five, 'tint:spread')} from fresh weights, "
        f"`tint:spread@pretrained` {paired(five, 'tint:spread@pretrained', 'tint@pretrained')}",
    ]
    for a in ("tint:spread", "tint"):
        mean = paired(five, a, "retrieval").split()[0]
        said.append(f"{mean} points at 5 shots" if a != "tint" else f"`retrieval` {mean})")
    spread = json.loads((ROOT / "benchmarks" / five / "sources.json").read_text())["summary"]
    f = {s: f"{spread[s]['feature_spread']['mean']:.3f}" for s in spread}
    said.append(f"from {f['tint']} to {f['tint:spread']}, a third of the way to the retrieved")
    said.append(f"images' {f['retrieval']}")
    guided = [f"glyphs-val-guidance-{n}shot" for n in (1, 5)]
    drawn = {
        (f, m): difference(counts(f, m), counts(f"glyphs-val-recipe-{n}shot", m))
        for f, n in zip(guided, (1, 5))
        for m in ("tint", "tint@pretrained")
    }
    said.append(f"{drawn[guided[0], 'tint']} for the student from fresh weights at 1 shot")
    said.append(f"at 5 shots ({drawn[guided[1], 'tint']})")
    said.append(
        f"({drawn[guided[0], 'tint@pretrained']} and {drawn[guided[1], 'tint@pretrained']})"
    )
    for phrase in said:
        assert " ".join(phrase.split()) in text, phrase


DECISIONS = [  # (shots, base images at hand, recipe, how tint distill runs it, compared with)
    (1, "no", "tint@pretrained", "`tint distill DIR`", "supports@pretrained"),
    (1, "yes", "retrieval@pretrained", "`--base BASE`", "tint+retrieval@pretrained"),
    (5, "no", "supports@pretrained", "`--method supports`", "tint@pretrained"),
    (5, "yes", "base@pretrained", "`--method base --base BASE`", "retrieval@pretrained"),
]
TINT_STAGES = ("textual_inversion", "null_text_inversion", "generation")


def decision_rows() -> list[str]:
    """The table of which recipe to use, in docs/RESULTS.md and the README: per shot count and
    base images at hand, the recipe's accuracy on the novel confirmation, its paired difference
    to the strongest alternative, and its seconds an episode (the student's, plus TINT's
    specialisation and generation where it learns from TINT's images)."""
    rows = []
    for shots, base, recipe, flags, other in DECISIONS:
        folder = NOVEL_RUNS[(1, 5).index(shots)]
        cost = seconds(folder, recipe)
        if recipe.startswith("tint"):
            cost += f" + {seconds(folder, 'tint', *TINT_STAGES)}"
        cells = [
            str(shots),
            base,
            f"`{recipe}`",
            flags,
            accuracy(counts(folder, recipe)),
            f"{difference(counts(folder, recipe), counts(folder, other))} over `{other}`",
            cost,
        ]
        rows.append(" ".join(f"| {' | '.join(cells)} |".split()))
    return rows


def test_the_decision_tables_are_the_committed_novel_runs():
    """The README's and docs/RESULTS.md's table of which recipe to use, recomputed."""
    for page in ("README.md", "docs/RESULTS.md"):
        rows = page_rows(page)
        for row in decision_rows():
            assert row in rows, (page, row)


TODAY = "glyphs-val-genbf16-{}shot"  # today's defaults on the recipe pilots' val episodes
FAST_DIFFUSION = "50 textual-inversion steps at 2e-2, 4 null-text steps"
FAST_STUDENT = "8 labelled views, 200 pretrained-student steps"
SETTING_TRIALS = {  # per page, val trials of one setting: (label, committed run)
    "docs/PERFORMANCE.md": [
        ("bfloat16, both inversions and generation", "glyphs-val-bf16-1shot"),
        ("bfloat16, both inversions and generation", "glyphs-val-bf16-5shot"),
        ("bfloat16 generation (`auto`)", "glyphs-val-genbf16-1shot"),
        ("bfloat16 generation (`auto`)", "glyphs-val-genbf16-5shot"),
        ("200 student steps", "glyphs-val-curve-1shot-steps200"),
        ("200 student steps", "glyphs-val-steps200-5shot"),
        (FAST_DIFFUSION, "glyphs-val-fastdiff-1shot", TODAY),
        (FAST_STUDENT, "glyphs-val-faststudent-1shot", TODAY),
        ("5 null-text steps at 5e-2", "glyphs-val-nullsteps5-1shot", TODAY),
        ("5 null-text steps at 5e-2", "glyphs-val-nullsteps5-5shot", "glyphs-val-today-5shot"),
        (
            "50 textual-inversion steps at 2e-2",
            "glyphs-val-ti50-1shot",
            "glyphs-val-nullsteps5-{}shot",
        ),
    ],
    "docs/RESULTS.md": [
        ("each image's support blended with another, `--support-mix 1.0`", "glyphs-val-mix-5shot"),
        ("guidance drawn per image, `--guidance-range 4,11`", "glyphs-val-guidance-1shot"),
        ("guidance drawn per image, `--guidance-range 4,11`", "glyphs-val-guidance-5shot"),
    ],
}


def setting_trial_rows(label: str, folder: str, pilot: str | None = None) -> list[str]:
    """A val trial of one setting, per method: its pilot's accuracy on the same episodes, the
    trial's, the paired difference and whether it passes the rule for a default (95% interval
    within 3 points each side, lower end no lower than -3). A method's pilot is the run `pilot`
    names at the trial's shot count where that run holds the method, else the recipe pilot."""
    from tint.eval.variance import paired_difference

    run = json.loads((ROOT / "benchmarks" / folder / "run.json").read_text())
    shots = run["shots"]
    recipe = f"glyphs-val-recipe-{shots}shot"
    named = recipe if pilot is None else pilot.format(shots)
    held = json.loads((ROOT / "benchmarks" / named / "run.json").read_text())["methods"]
    rows = []
    for m in run["methods"]:
        before_run = named if m in held else recipe
        assert_first_episodes(folder, before_run)
        mine = counts(folder, m)
        before = counts(before_run, m)[: len(mine)]
        d = paired_difference(mine, before)
        passes = d["half_width"] <= 0.03 and d["ci95"][0] >= -0.03
        cells = [label, str(shots), f"`{m}`", accuracy(before), accuracy(mine)]
        cells += [difference(mine, before), "yes" if passes else "no"]
        rows.append(" ".join(f"| {' | '.join(cells)} |".split()))
    return rows


def test_the_setting_trials_tables_are_the_committed_val_runs():
    """The val trials of single settings (docs/PERFORMANCE.md's precision, docs/RESULTS.md's
    generator settings), each row recomputed from its committed run and the pilot's."""
    for page, trials in SETTING_TRIALS.items():
        rows = page_rows(page)
        for label, folder, *pilot in trials:
            for row in setting_trial_rows(label, folder, *pilot):
                assert row in rows, (page, row)


CONFIRM_RUNS = ("glyphs-novel-confirm-1shot", "glyphs-novel-confirm-5shot")  # at 1 and 5 shots
CONFIRM_PAIRS = [  # its paired comparisons: the targets, and what each credits
    ("tint@pretrained", "supports@pretrained"),
    ("tint@pretrained", "retrieval@pretrained"),
    ("tint", "retrieval"),
    ("tint+retrieval@pretrained", "retrieval@pretrained"),
    ("tint+retrieval@pretrained", "base@pretrained"),
]


def confirm_rows(folders: tuple[str, ...]) -> list[str]:
    """docs/RESULTS.md's table of the fresh novel confirmation, a pair of columns per run: each
    method's accuracy and the share of what the fine-tuned student leaves that it closes; then
    the paired comparisons, a column per run."""
    results = json.loads((ROOT / "benchmarks" / folders[0] / "results.json").read_text())
    rows = []
    for m in results["settings"]["methods"]:
        over = m not in ("teacher", "supports@pretrained")
        cells = [
            f"{accuracy(counts(f, m))} | {gap_closed(f, m, 'supports@pretrained') if over else ''}"
            for f in folders
        ]
        rows.append(" ".join(f"| `{m}` | {' | '.join(cells)} |".split()))
    for a, b in CONFIRM_PAIRS:
        cells = [difference(counts(f, a), counts(f, b)) for f in folders]
        rows.append(f"| `{a}` minus `{b}` | {' | '.join(cells)} |")
    return rows


def test_the_fresh_novel_confirmation_is_the_committed_runs():
    """docs/RESULTS.md's confirmation on novel episodes that no other committed run holds (a new
    seed), as many as `tint plan` asked for, recomputed from the committed runs."""
    page = page_rows("docs/RESULTS.md")
    held = set()
    for other in (ROOT / "benchmarks").glob("*/episodes.json"):
        if other.parent.name not in CONFIRM_RUNS:
            for e in json.loads(other.read_text())["episodes"]:
                held.add(json.dumps([e["classes"], e["support"]], sort_keys=True))
    for folder, shots in zip(CONFIRM_RUNS, (1, 5)):
        run = json.loads((ROOT / "benchmarks" / folder / "run.json").read_text())
        assert (run["split"], run["shots"], run["setup"]["generation"]["seed"]) == (
            "novel",
            shots,
            1,
        )
        assert len(counts(folder, "teacher")) == run["episodes"] == 25
        episodes = json.loads((ROOT / "benchmarks" / folder / "episodes.json").read_text())
        for e in episodes["episodes"]:
            assert json.dumps([e["classes"], e["support"]], sort_keys=True) not in held
    for row in confirm_rows(CONFIRM_RUNS):
        assert row in page, row
    one, five = CONFIRM_RUNS

    def paired(a: str, b: str, folder: str) -> str:
        return difference(counts(folder, a), counts(folder, b))

    def both(a: str, b: str) -> tuple[str, str]:
        return paired(a, b, one), paired(a, b, five)

    def first(interval: str) -> float:
        return float(interval.split()[0])

    def low(interval: str) -> float:
        return float(interval.split()[1][1:-1])

    over = both("tint@pretrained", "supports@pretrained")
    mined, fresh = both("tint@pretrained", "retrieval@pretrained"), both("tint", "retrieval")
    own = both("tint+retrieval@pretrained", "retrieval@pretrained")
    mine = both("retrieval@pretrained", "tint+retrieval@pretrained")
    shares = [gap_closed(f, "tint@pretrained", "supports@pretrained") for f in CONFIRM_RUNS]
    before = [paired("tint", "retrieval", f).split()[0] for f in NOVEL_RUNS]
    reached = {
        "share": float(shares[0]) >= 0.6 and float(shares[1]) >= 0.35 and low(over[1]) > 0,
        "mined": min(first(m) for m in mined) >= 0,
        "fresh": all(first(f) >= float(b) / 2 for f, b in zip(fresh, before)),
        "own": all(first(o) >= 2 and low(o) > 0 for o in own),
    }
    word = {k: "yes" if v else "no" for k, v in reached.items()}
    rows = [
        "| `tint@pretrained`'s share of what fine-tuning leaves | at least 0.60 / 0.35, the "
        f"5-shot difference's lower end above 0 | {shares[0]} | {shares[1]} ({over[1]}) | "
        f"{word['share']} |",
        "| `tint@pretrained` minus `retrieval@pretrained` (generated against mined, equal "
        f"counts) | at least 0 | {mined[0]} | {mined[1]} | {word['mined']} |",
        f"| `tint` minus `retrieval`, from fresh weights | at most half of {before[0]} / "
        f"{before[1]} | {fresh[0]} | {fresh[1]} | {word['fresh']} |",
        "| with base images, generation's own part: `tint+retrieval@pretrained` minus "
        f"`retrieval@pretrained` | at least +2, lower end above 0 | {own[0]} | {own[1]} | "
        f"{word['own']} |",
    ]
    for row in rows:
        assert row in page, row

    def acc(folder: str, method: str) -> str:
        return accuracy(counts(folder, method)).split()[0]

    before_over = [paired("tint@pretrained", "supports@pretrained", f) for f in NOVEL_RUNS]
    text = " ".join((ROOT / "docs" / "RESULTS.md").read_text().split())
    said = [
        f"fine-tuning baseline at 1 shot ({over[0]} points, a little under the "
        f"{before_over[0].split()[0]} of the first confirmation) and add nothing to it at 5 "
        f"({over[1]}, as {before_over[1].split()[0]} before)",
        f"teach a pretrained student {-first(mined[0]):.1f} points more at 1 shot and "
        f"{-first(mined[1]):.1f} more at 5",
        f"TINT's images add nothing ({own[0]} and {own[1]})",
        f"(`retrieval@pretrained`, {acc(one, 'retrieval@pretrained')} and "
        f"{acc(five, 'retrieval@pretrained')})",
        f"images to them ({acc(one, 'tint+retrieval@pretrained')} and "
        f"{acc(five, 'tint+retrieval@pretrained')})",
        # "The recipes": the base images alone, the recipe with base images since tint 0.7.
        "`tint distill --base DIR`, `--method retrieval`): the same pilots give it "
        f"{paired('retrieval@pretrained', 'tint+retrieval@pretrained', 'glyphs-val-recipe-1shot')}"
        " points over `tint+retrieval@pretrained` at 1 shot and "
        f"{paired('retrieval@pretrained', 'tint+retrieval@pretrained', 'glyphs-val-recipe-5shot')}"
        " at 5,",
        f"generation ({seconds('glyphs-val-recipe-1shot', 'tint', *TINT_STAGES)} of a 1-shot "
        f"episode here, {seconds('glyphs-val-recipe-5shot', 'tint', *TINT_STAGES)} of a 5-shot",
        f"confirm it: {mine[0]} and {mine[1]}.",
    ]
    for phrase in said:
        assert phrase in text, phrase
    readme = " ".join((ROOT / "README.md").read_text().split())
    for phrase in (
        f"(`retrieval@pretrained`, {acc(one, 'retrieval@pretrained')} and "
        f"{acc(five, 'retrieval@pretrained')})",
        f"with base images ({acc(one, 'tint+retrieval@pretrained')} and "
        f"{acc(five, 'tint+retrieval@pretrained')}; TINT's images beside them {own[0]} and "
        f"{own[1]})",
        f"still add {over[0]} to the fine-tuned student at 1 shot and {over[1]} at 5",
    ):
        assert phrase in readme, phrase


LORA_RUNS = ("glyphs-val-lora-1shot", "glyphs-val-lora-5shot")  # docs/RESULTS.md's LoRA trial


def lora_rows(folder: str) -> list[str]:
    """docs/RESULTS.md's table of the LoRA trial: each method's accuracy, its paired difference
    to the same method with the pilot's `tint` and `ti` images (where the pilot ran it), its
    share of what the pilot's fine-tuned student leaves, and its own seconds an episode."""
    from tint.eval.variance import summarize

    shots = json.loads((ROOT / "benchmarks" / folder / "run.json").read_text())["shots"]
    pilot = f"glyphs-val-recipe-{shots}shot"
    assert_first_episodes(folder, pilot)
    ran = json.loads((ROOT / "benchmarks" / pilot / "results.json").read_text())["settings"]
    mean = {
        m: summarize(counts(pilot, m)[: len(counts(folder, "lora"))])["accuracy"]
        for m in ("teacher", "supports@pretrained")
    }
    rows = []
    for m in json.loads((ROOT / "benchmarks" / folder / "run.json").read_text())["methods"]:
        mine = counts(folder, m)
        cells = [f"`{m}`", accuracy(mine)]
        for other in (m.replace("lora", "tint"), m.replace("lora", "ti")):
            theirs = counts(pilot, other)[: len(mine)] if other in ran["methods"] else None
            cells.append(difference(mine, theirs) if theirs else "")
        share = (summarize(mine)["accuracy"] - mean["supports@pretrained"]) / (
            mean["teacher"] - mean["supports@pretrained"]
        )
        cells += [f"{share:.2f}", seconds(folder, m)]
        rows.append(" ".join(f"| {' | '.join(cells)} |".split()))
    assert summarize(counts(folder, "lora"))["episodes"] == 10
    return rows


def test_the_lora_tables_are_the_committed_val_trials():
    """docs/RESULTS.md's val trial of the LoRA generator, each row recomputed from its committed
    run and the pilot's, on the pilot's episodes."""
    page = page_rows("docs/RESULTS.md")
    for folder in LORA_RUNS:
        for row in lora_rows(folder):
            assert row in page, row
    text = " ".join((ROOT / "docs" / "RESULTS.md").read_text().split())
    (one, five), pilot = LORA_RUNS, "glyphs-val-recipe-{}shot"

    def points(folder: str, method: str, other: str, shots: int) -> str:
        theirs = counts(pilot.format(shots), other)[:10]
        return difference(counts(folder, method), theirs)

    said = [
        f"costs {-float(points(one, 'lora', 'tint', 1).split()[0]):.1f} points at 1 shot and "
        f"{-float(points(five, 'lora', 'tint', 5).split()[0]):.1f} at 5",
        f"({points(one, 'lora', 'ti', 1).split()[0]} against textual inversion's",
        f"pretrained {-float(points(one, 'lora@pretrained', 'tint@pretrained', 1).split()[0]):.1f}"
        f" and {-float(points(five, 'lora@pretrained', 'tint@pretrained', 5).split()[0]):.1f}",
        f"({points(one, 'lora+retrieval@pretrained', 'tint+retrieval@pretrained', 1)} and "
        f"{points(five, 'lora+retrieval@pretrained', 'tint+retrieval@pretrained', 5)})",
        f"costs {seconds(one, 'lora', 'lora')} an episode at 1 shot and "
        f"{seconds(five, 'lora', 'lora')} at 5",
    ]
    for phrase in said:
        assert phrase in text, phrase


SPEED_PRECISIONS = ("float32", "bfloat16", "auto")  # docs/measurements/speed-PRECISION.json


def speed_precision_rows() -> list[str]:
    """docs/PERFORMANCE.md's table of `tint speed` in each precision, from the committed JSON."""
    runs = [
        json.loads((ROOT / "docs" / "measurements" / f"speed-{p}.json").read_text())
        for p in SPEED_PRECISIONS
    ]
    rows = [
        (
            "arithmetic of generation / inversions",
            lambda r: f"{r['precision']} / {r['inversion_precision']}",
        ),
        ("textual inversion", lambda r: f"{r['seconds']['textual_inversion']:.2f} s"),
        ("null-text inversion", lambda r: f"{r['seconds']['null_text_inversion']:.2f} s"),
        ("generation of 64 images", lambda r: f"{r['seconds']['generation']:.2f} s"),
        ("generation, TFLOP/s", lambda r: f"{r['generation_tflops']:.3f}"),
        ("float32 matmul peak, TFLOP/s", lambda r: f"{r['float32_matmul_peak_tflops']:.3f}"),
        ("generation, share of that peak", lambda r: f"{r['generation_share_of_peak']:.0%}"),
        ("reconstruction PSNR", lambda r: f"{r['reconstruction_psnr']:.2f} dB"),
        ("peak memory", lambda r: f"{r['peak_memory_mb']:.0f} MB"),
    ]
    return [f"| {label} | {' | '.join(cell(r) for r in runs)} |" for label, cell in rows]


def test_the_precision_speed_table_is_the_committed_measurements():
    """docs/PERFORMANCE.md's `tint speed` in float32, bfloat16 and auto: each row from the JSON
    the command printed, which says which precision it used."""
    page = page_rows("docs/PERFORMANCE.md")
    for row in speed_precision_rows():
        assert " ".join(row.split()) in page, row


def test_todays_5shot_baseline_extends_the_committed_one():
    """glyphs-val-today-5shot is glyphs-val-genbf16-5shot run on to 17 episodes: the same
    settings, and its first episodes and counts are that run's."""
    first, extended = "glyphs-val-genbf16-5shot", "glyphs-val-today-5shot"
    runs = [
        json.loads((ROOT / "benchmarks" / f / "run.json").read_text()) for f in (first, extended)
    ]
    for run in runs:
        del run["out"], run["episodes"]
    assert runs[0] == runs[1]
    assert_first_episodes(first, extended)
    for m in ("tint", "tint@pretrained"):
        assert counts(extended, m)[: len(counts(first, m))] == counts(first, m)
    assert len(counts(extended, "tint")) == 17


NULL_TEXT_SWEEP = [  # docs/measurements/null-text-STEPS-LR.json: (inner steps, learning rate)
    (10, "0.01"),
    (10, "0.03"),
    (5, "0.05"),
    (4, "0.01"),
    (4, "0.03"),
    (4, "0.1"),
    (3, "0.05"),
    (2, "0.1"),
]


def test_the_null_text_sweep_is_the_committed_measurements():
    """docs/PERFORMANCE.md's null-text settings: each row's seconds and reconstruction from the
    JSON `tint speed` printed at those settings (the rest of the settings the same in every
    one), and the time relative to tint 0.6's settings (10 steps at 0.01, the first)."""
    runs = {
        (steps, lr): json.loads(
            (ROOT / "docs" / "measurements" / f"null-text-{steps}-{lr}.json").read_text()
        )
        for steps, lr in NULL_TEXT_SWEEP
    }

    def others(run: dict) -> dict:
        """The run's settings but null-text inversion's."""
        generation = {k: v for k, v in run["config"]["generation"].items() if k != "null_text"}
        return run["config"] | {"generation": generation}

    before = runs[NULL_TEXT_SWEEP[0]]
    page = page_rows("docs/PERFORMANCE.md")
    for (steps, lr), run in runs.items():
        assert run["config"]["generation"]["null_text"]["inner_steps"] == steps
        assert run["config"]["generation"]["null_text"]["lr"] == float(lr)
        assert others(run) == others(before), (steps, lr)
        spent = run["seconds"]["null_text_inversion"]
        ratio = spent / before["seconds"]["null_text_inversion"]
        cells = [str(steps), lr, f"{spent:.1f} s", f"{ratio:.2f}"]
        cells.append(f"{run['reconstruction_psnr']:.2f} dB")
        row = f"| {' | '.join(cells)} |"
        assert row in page, row


UPSCALE_RUNS = {  # docs/RESULTS.md's small-support trial: shots -> (bicubic, upscaler) runs
    1: ("glyphs-val-small16-bicubic-1shot", "glyphs-val-small16-upscaler-1shot"),
    5: ("glyphs-val-small16-bicubic-5shot", "glyphs-val-small16-upscaler-5shot"),
}


def upscale_rows() -> list[str]:
    """docs/RESULTS.md's table of the small-support trial: per shot count and method, the recipe
    pilot's accuracy on the same episodes at full size, both 16 px runs', the upscaler's
    paired difference to bicubic, and TINT's specialisation seconds an episode in each."""
    rows = []
    for shots, (bicubic, upscaler) in UPSCALE_RUNS.items():
        pilot = f"glyphs-val-recipe-{shots}shot"
        for folder in (bicubic, upscaler):
            assert_first_episodes(folder, pilot)
            run = json.loads((ROOT / "benchmarks" / folder / "run.json").read_text())
            assert (run["split"], run["shots"], run["shrink"]) == ("val", shots, 16)
        for m in json.loads((ROOT / "benchmarks" / bicubic / "run.json").read_text())["methods"]:
            a, b = counts(bicubic, m), counts(upscaler, m)
            full = counts(pilot, m)[: len(a)]
            cells = [str(shots), f"`{m}`", accuracy(full), accuracy(a), accuracy(b)]
            cells.append(difference(b, a))
            rows.append(" ".join(f"| {' | '.join(cells)} |".split()))
    return rows


def test_the_small_support_trial_is_the_committed_val_runs():
    """Supports made 16 px, made large again by bicubic resizing or by the shipped glyph
    upscaler before TINT: the table and the upscaler's quality recomputed from what is
    committed."""
    page = page_rows("docs/RESULTS.md")
    for row in upscale_rows():
        assert row in page, row
    quality = json.loads((ROOT / "src/tint/assets/glyph-upscaler/quality.json").read_text())
    psnr = quality["psnr"]
    text = " ".join((ROOT / "docs" / "RESULTS.md").read_text().split())
    stages = ("textual_inversion", "null_text_inversion", "generation")

    def tint_seconds(shots: int) -> str:
        spent = [seconds(f, "tint", *stages).split()[0] for f in UPSCALE_RUNS[shots]]
        return " s and ".join(spent) + " s an episode"

    def smaller(method: str, shots: int) -> str:
        bicubic = UPSCALE_RUNS[shots][0]
        full = counts(f"glyphs-val-recipe-{shots}shot", method)
        return difference(counts(bicubic, method), full[: len(counts(bicubic, method))])

    for phrase in (
        f"{psnr['upscaler']:.2f} dB against {psnr['bicubic']:.2f} dB for bicubic resizing "
        f"and {psnr['resize']:.2f} dB for bilinear",
        f"({tint_seconds(1)} at 1 shot, {tint_seconds(5).replace(' an episode', '')} at 5,",
        f"`supports@pretrained` {smaller('supports@pretrained', 1)}, `tint@pretrained` "
        f"{smaller('tint@pretrained', 1)} bicubic), little at 5 "
        f"({smaller('supports@pretrained', 5)} and {smaller('tint@pretrained', 5)})",
    ):
        assert phrase in text, phrase
