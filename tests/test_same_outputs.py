"""The same seeds give the same outputs as before the code was reorganised: the bytes of
`tint generate`'s images and specialisations and of `tint distill`'s student, and the counts of
a 2-episode `tint benchmark`, on the glyph world. The reference was recorded with tint 0.1
(tests/data/same-outputs.json). Floating-point kernels differ between CPU kinds (AVX2, AVX-512),
so bytes are compared on the kind the reference was recorded on; the benchmark's counts on any."""

import hashlib
import json
from pathlib import Path

import pytest
import torch

from tint.cli import main
from tint.data import glyphs
from tint.data.images import to_image

REFERENCE = json.loads((Path(__file__).parent / "data" / "same-outputs.json").read_text())
SAME_KIND = torch.backends.cpu.get_cpu_capability() == REFERENCE["recorded_on"]


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


@pytest.mark.skipif(
    not SAME_KIND, reason="bytes are compared on the CPU kind they were recorded on"
)
def test_generate_and_distill_write_the_bytes_they_wrote_before(supports):
    root = supports
    argv = ["generate", root / "supports", "--out", root / "gen", "--num", "4", "--ti-steps", "10"]
    assert main([str(a) for a in [*argv, "--ddim-steps", "5", "--quiet"]]) == 0
    made = [p for p in sorted((root / "gen").rglob("*")) if p.suffix in (".png", ".safetensors")]
    assert _hashes(root / "gen", made) == REFERENCE["generate"]

    argv = ["distill", root / "supports", "--out", root / "dis", "--num", "4", "--ti-steps", "10"]
    argv += ["--ddim-steps", "5", "--distill-steps", "30", "--quiet"]
    assert main([str(a) for a in argv]) == 0
    made = [root / "dis" / "student.safetensors"]
    made += sorted((root / "dis" / "generated" / "images").rglob("*.png"))
    assert _hashes(root / "dis", made) == REFERENCE["distill"]


def test_a_two_episode_benchmark_counts_what_it_counted_before(tmp_path):
    argv = ["benchmark", "--dataset", "glyphs", "--out", tmp_path, "--episodes", "2", "--ways"]
    argv += ["3", "--shots", "1", "--queries", "8", "--methods", "teacher,supports,tint", "--num"]
    argv += ["3", "--distill-steps", "30", "--ti-steps", "5", "--ddim-steps", "3", "--quiet"]
    assert main([str(a) for a in argv]) == 0
    episodes = json.loads((tmp_path / "results.json").read_text())["episodes"]
    counts = [{m: [r["correct"], r["total"]] for m, r in e["methods"].items()} for e in episodes]
    assert counts == REFERENCE["benchmark"]
