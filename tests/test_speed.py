"""`tint speed`: the fast path computes what the reference way computes, and says how fast."""

import json

import pytest

from tint.cli import main

SMALL = ["--ways", "2", "--shots", "2", "--ti-steps", "3", "--ddim-steps", "5", "--images", "6"]


@pytest.mark.e2e
def test_fast_path_and_reference_agree_and_both_are_timed(capsys):
    args = ["speed", *SMALL, "--batch", "4", "--distill-steps", "10", "--compare", "reference"]
    code = main([*args, "--precision", "float32", "--json", "--quiet"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["precision"] == "float32"
    # Same inputs, same seeds, float32 both: batching changes only rounding.
    assert abs(result["psnr_drop_db"]) < 0.05
    assert result["generated_mean_abs_difference"] < 2e-3
    for stage in ("textual_inversion", "null_text_inversion", "generation"):
        assert result["seconds"][stage] > 0 and result["reference"]["seconds"][stage] > 0
    assert set(result["speedup"]) >= {"specialization", "generation"}
    # Distillation is timed on the fast way's images, its teacher's labels apart; it has no
    # reference way.
    distillation = [result["seconds"][k] for k in ("teacher_labels", "distillation")]
    assert all(s > 0 for s in distillation) and "distillation" not in result["reference"]["seconds"]
    assert result["distillation_steps_per_s"] == pytest.approx(10 / sum(distillation), rel=0.01)
    assert result["images_per_s"] > 0 and result["peak_memory_mb"] > 0
    # FLOPs: a UNet forward of one 8x8x4 latent is millions of FLOPs, not zero or trillions; a
    # forward and backward to the conditioning with frozen weights is about two forwards.
    flops = result["flops_per_sample"]
    assert 1e6 < flops["unet"] < 1e10
    assert 1.5 < flops["unet_trained"] / flops["unet"] < 2.5
    assert 1e6 < flops["vae_decode"] < 1e10
    assert result["tflops"] > 0 and result["device"].startswith("cpu")
    # Both ways count the same work, and only the timed stages': 4 supports, 5 steps, 6 images.
    samples = result["samples"]
    assert samples == result["reference"]["samples"]
    # Forward only: DDIM inversion, then at each step the conditional half and the final
    # unconditional one per support; then 6 images x 5 steps x both halves.
    assert samples["unet_forward"] == 5 * 4 + 5 * 4 * 2 + 6 * 5 * 2
    # With a backward: 2 classes x 3 textual-inversion steps, then 1 to 10 Adam steps per
    # support and step of null-text inversion.
    assert 2 * 3 + 5 * 4 <= samples["unet_trained"] <= 2 * 3 + 5 * 4 * 10
    assert samples["vae_decoded"] == 6
    work = (
        flops["unet"] * samples["unet_forward"]
        + flops["unet_trained"] * samples["unet_trained"]
        + flops["vae_decode"] * samples["vae_decoded"]
    )
    seconds = sum(result["seconds"][k] for k in ("textual_inversion", "null_text_inversion"))
    seconds += result["seconds"]["generation"]  # the diffusion model's work, which FLOPs count
    assert abs(result["tflops"] - work / seconds / 1e12) <= 1e-3 * result["tflops"]
    # Generation alone: its 6 images x 5 steps x both halves, and 6 decodes, over its seconds,
    # against this machine's float32 matrix-product peak, measured in the same run.
    rendered = flops["unet"] * 6 * 5 * 2 + flops["vae_decode"] * 6
    generation = rendered / result["seconds"]["generation"] / 1e12
    assert result["generation_tflops"] == pytest.approx(generation, rel=1e-2)
    peak = result["float32_matmul_peak_tflops"]
    assert 1e-3 < peak < 1e3
    assert result["generation_share_of_peak"] == pytest.approx(generation / peak, rel=1e-2)


def test_fast_settings_apply_to_the_fast_path_only():
    import torch

    from tint.commands import world
    from tint.diffusion.model import DiffusionModel
    from tint.eval.speed import SpeedConfig, _fast_settings

    model = DiffusionModel.load(world.DEFAULT_MODEL)
    unet, graphs = model.unet, torch._dynamo.config.cache_size_limit
    conv = unet.conv_in.weight
    with _fast_settings(model, SpeedConfig(channels_last=True, compile=True)):
        assert model.unet is not unet and model.unet._orig_mod is unet
        assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
        assert torch._inductor.config.freezing
    # The reference way then runs the UNet as loaded: eager, in the default layout, and later
    # compiles in the process are not frozen.
    assert model.unet is unet and conv.is_contiguous()
    assert torch._dynamo.config.cache_size_limit == graphs
    assert not torch._inductor.config.freezing


@pytest.mark.slow
def test_compiled_fast_path_computes_what_the_reference_way_computes(capsys):
    # Generation's frozen graphs hold the UNet's weights as constants; the images must still be
    # the reference way's from the same seeds, and the inversions as close.
    args = ["speed", *SMALL, "--batch", "4", "--compile", "--compare", "reference", "--json"]
    assert main([*args, "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["compile_s"] > 0
    assert abs(result["psnr_drop_db"]) < 0.05
    assert result["generated_mean_abs_difference"] < 2e-3


@pytest.mark.slow
def test_sd15_architecture_has_stable_diffusion_15s_parameter_counts():
    from tint.commands import world
    from tint.eval.speed import sd15_model

    model = sd15_model("cpu", "float32", world.DEFAULT_MODEL / "tokenizer")
    count = {
        name: sum(p.numel() for p in getattr(model, name).parameters())
        for name in ("unet", "vae", "text_encoder")
    }
    # The published model's sizes: the same layers, so the same compute per image.
    assert count == {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480}


def test_the_pool_figures_time_both_searches_and_faiss_finds_the_neighbours(capsys):
    assert main(["speed", "--pool", "3000", "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pool"] == 3000 and result["dim"] > 0
    assert result["embeddings_mb"] == pytest.approx(3000 * result["dim"] * 4 / 2**20, abs=0.1)
    for key in ("embedding_images_per_s", "exhaustive_query_s", "faiss_build_s", "faiss_query_s"):
        assert result[key] > 0, key
    assert result["faiss_recall"] > 0.9
