"""Our DDIM agrees with the stock diffusers scheduler and pipeline it follows."""

import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline

from tint.diffusion import ddim


@pytest.mark.parametrize("steps", [25, 7, 50])
def test_trailing_timesteps_match_diffusers(steps):
    scheduler = DDIMScheduler(timestep_spacing="trailing", num_train_timesteps=1000)
    scheduler.set_timesteps(steps)
    assert ddim.timesteps(1000, steps) == scheduler.timesteps.tolist()


def test_a_step_matches_the_diffusers_ddim_step(model, model_dir):
    scheduler = DDIMScheduler.from_pretrained(model_dir / "scheduler")
    scheduler.set_timesteps(5)
    grid = ddim.timesteps(model.num_train_timesteps, 5)
    g = torch.Generator().manual_seed(0)
    for t, (a_t, a_prev) in zip(grid, ddim.alpha_pairs(model, grid)):
        z, eps = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
        expected = scheduler.step(eps, t, z, eta=0.0).prev_sample
        torch.testing.assert_close(ddim.move(z, eps, a_t, a_prev), expected, rtol=1e-4, atol=1e-4)


# diffusers steps from t to t - T // N, which is off the trailing grid unless N divides T;
# ours follows the grid, so the two agree exactly when N divides T.
def test_guided_sampling_matches_the_stock_pipeline(model, model_dir):
    pipe = StableDiffusionPipeline.from_pretrained(model_dir, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    prompt = "a drawing of a object"
    expected = pipe(
        prompt, num_inference_steps=5, guidance_scale=7.5, latents=z.clone(), output_type="latent"
    ).images
    with torch.no_grad():
        cond, empty = model.encode_text([prompt]), model.encode_text([""])
    ours = ddim.sample(model, z, cond, empty, steps=5, guidance=7.5)
    torch.testing.assert_close(ours, expected, rtol=1e-3, atol=1e-3)
