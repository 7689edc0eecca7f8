"""Null-text inversion: it makes guided DDIM retrace each support."""

import torch

from tint.diffusion import ddim, null_text
from tint.diffusion.null_text import NullTextConfig
from tint.diffusion.sampler import blend_noise

from .conftest import support_latents

STEPS = 10  # mechanics tests
REAL_STEPS = 25  # quality tests: the default, at which the tiny model inverts well


def _supports(model, n=3):
    return support_latents(model, n)


def _error(a, b):
    return (a - b).pow(2).flatten(1).mean(1)


def test_optimised_null_embeddings_beat_plain_ddim_inversion(model):
    z0, cond = _supports(model)
    inv = null_text.invert(model, z0, cond, REAL_STEPS, NullTextConfig(), progress=False)
    with torch.no_grad():
        empty = model.encode_text([""]).expand(len(z0), -1, -1)
    plain = ddim.sample(model, inv.latents_T, cond, empty, REAL_STEPS, guidance=7.5)
    start = blend_noise(inv.latents_T, torch.randn_like(z0), torch.zeros(len(z0)))  # alpha = 0
    tuned = ddim.sample(model, start, cond, inv.null_embeddings, REAL_STEPS, guidance=7.5)
    assert (_error(tuned, z0) < 0.1 * _error(plain, z0)).all()
    # alpha = 0 returns (close to) the support's latent: within 2% of its mean square.
    assert (_error(tuned, z0) < 0.02 * z0.pow(2).flatten(1).mean(1)).all()


def test_batched_inversion_matches_one_support_at_a_time(model):
    z0, cond = _supports(model)
    # A small learning rate, so that rounding noise stays small beside what is compared.
    config = NullTextConfig(inner_steps=10, lr=1e-2)
    batched = null_text.invert(model, z0, cond, STEPS, config, progress=False)
    for i in range(len(z0)):
        alone = null_text.invert(
            model, z0[i : i + 1], cond[i : i + 1], STEPS, config, progress=False
        )
        assert torch.equal(batched.inner_steps_used[:, i], alone.inner_steps_used[:, 0])
        # Batched products round differently, and Adam turns rounding noise on near-zero
        # gradients into steps of up to lr: a few elements differ by ~lr, the mass does not.
        gap = (batched.null_embeddings[:, i] - alone.null_embeddings[:, 0]).abs()
        assert gap.mean() < 1e-3 and gap.max() < 3 * config.lr * config.inner_steps
        together = ddim.sample(
            model,
            batched.latents_T[i : i + 1],
            cond[i : i + 1],
            batched.null_embeddings[:, i : i + 1],
            STEPS,
            7.5,
        )
        apart = ddim.sample(
            model, alone.latents_T, cond[i : i + 1], alone.null_embeddings, STEPS, 7.5
        )
        err_together, err_apart = _error(together, z0[i : i + 1]), _error(apart, z0[i : i + 1])
        assert abs(err_together - err_apart) <= 0.05 * err_apart + 1e-6


def test_each_support_stops_on_its_own_below_the_tolerance(model):
    z0, cond = _supports(model, n=2)
    loose = null_text.invert(model, z0, cond, STEPS, NullTextConfig(tolerance=1e9), progress=False)
    assert (loose.inner_steps_used == 0).all()
    with torch.no_grad():
        empty = model.encode_text([""])
    assert torch.equal(loose.null_embeddings, empty.expand_as(loose.null_embeddings))
    config = NullTextConfig(tolerance=0.0)
    strict = null_text.invert(model, z0, cond, STEPS, config, progress=False)
    assert (strict.inner_steps_used == config.inner_steps).all()


def test_a_tolerance_between_two_supports_errors_stops_only_one(model):
    z0, cond = _supports(model, n=2)
    path = ddim.invert(model, z0, cond, STEPS)
    grid = ddim.timesteps(model.num_train_timesteps, STEPS)
    a_t, a_prev = ddim.alpha_pairs(model, grid)[0]
    with torch.no_grad():
        empty = model.encode_text([""]).expand(2, -1, -1)
        eps = ddim.guided_noise(model, path[-1], grid[0], cond, empty, 7.5)
    first = _error(ddim.move(path[-1], eps, a_t, a_prev), path[-2])  # before any Adam step
    assert first[0] != first[1]
    low, high = sorted(first.tolist())
    config = NullTextConfig(tolerance=(low * high) ** 0.5)
    inv = null_text.invert(model, z0, cond, STEPS, config, progress=False)
    easy = int(first.argmin())
    assert inv.inner_steps_used[0, easy] == 0
    assert inv.inner_steps_used[0, 1 - easy] > 0
