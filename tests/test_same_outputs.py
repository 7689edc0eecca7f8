"""The same seeds give the same outputs as before the code was reorganised: the bytes of
`tint generate`'s images and specialisations and of `tint distill`'s student, and the counts of
a 2-episode `tint benchmark`, on the glyph world. Floating-point kernels differ between CPU kinds
(AVX2, AVX-512), and so do the bytes and, now and then, a count; tests/data/same-outputs.json
holds a reference for each kind it was recorded on, made with the code as it was before a
change. On a kind with no reference, TINT_RECORD=1 makes these tests record one (with the code
checked out before the change) instead of comparing. The runs keep the paper's null-text rule
(`--null-blend 0`), the one the references were recorded with."""

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from tint.cli import main
from tint.data import glyphs
from tint.data.images import to_image

FILE = Path(__file__).parent / "data" / "same-outputs.json"
KIND = torch.backends.cpu.get_cpu_capability()
RECORD = os.environ.get("TINT_RECORD") == "1"
REFERENCE = json.loads(FILE.read_text())["kinds"].get(KIND)
pytestmark = pytest.mark.skipif(
    REFERENCE is None and not RECORD, reason=f"no reference recorded on this CPU kind ({KIND})"
)


def _check(part: str, observed) -> None:
    if RECORD:
        everything = json.loads(FILE.read_text())
        everything["kinds"].setdefault(KIND, {})[part] = observed
        FILE.write_text(json.dumps(everything, indent=1) + "\n")
    else:
        assert observed == REFERENCE[part]


def _hashes(root: Path, paths) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in paths
    }


@pytest.fixture(scope="module")
def supports(tmp_path_factory):
    root = tmp_path_factory.mktemp("same")
    for glyph in glyphs.split("novel")[:2]:
        (root / "supports" / glyph.name).mkdir(parents=True)
        for i, x in enumerate(glyphs.benchmark_instances(glyph, 2)):
            to_image(x).save(root / "supports" / glyph.name / f"{i}.png")
    return root


def test_generate_and_distill_write_the_bytes_they_wrote_before(supports):
    root = supports
    argv = ["generate", root / "supports", "--out", root / "gen", "--num", "4", "--ti-steps", "10"]
    argv += ["--ddim-steps", "5", "--null-blend", "0", "--quiet"]
    assert main([str(a) for a in argv]) == 0
    made = [p for p in sorted((root / "gen").rglob("*")) if p.suffix in (".png", ".safetensors")]
    _check("generate", _hashes(root / "gen", made))

    argv = ["distill", root / "supports", "--out", root / "dis", "--num", "4", "--ti-steps", "10"]
    argv += ["--ddim-steps", "5", "--null-blend", "0", "--distill-steps", "30", "--quiet"]
    assert main([str(a) for a in argv]) == 0
    made = [root / "dis" / "student.safetensors"]
    made += sorted((root / "dis" / "generated" / "images").rglob("*.png"))
    _check("distill", _hashes(root / "dis", made))


def test_a_two_episode_benchmark_counts_what_it_counted_before(tmp_path):
    argv = ["benchmark", "--dataset", "glyphs", "--out", tmp_path, "--episodes", "2", "--ways"]
    argv += ["3", "--shots", "1", "--queries", "8", "--methods", "teacher,supports,tint", "--num"]
    argv += ["3", "--distill-steps", "30", "--ti-steps", "5", "--ddim-steps", "3"]
    argv += ["--null-blend", "0", "--quiet"]
    assert main([str(a) for a in argv]) == 0
    episodes = json.loads((tmp_path / "results.json").read_text())["episodes"]
    counts = [{m: [r["correct"], r["total"]] for m, r in e["methods"].items()} for e in episodes]
    _check("benchmark", counts)
