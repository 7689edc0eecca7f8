"""The TINT blending rule."""

import torch

from tint.diffusion.sampler import blend_noise, rms


def test_rms_is_the_root_mean_square_of_each_sample():
    x = torch.tensor([[3.0, 4.0], [1.0, 1.0]])
    assert torch.allclose(rms(x).flatten(), torch.tensor([12.5**0.5, 1.0]))


def test_blend_rescales_to_the_interpolated_norm():
    g = torch.Generator().manual_seed(0)
    zT = 0.7 * torch.randn(4, 4, 8, 8, generator=g)
    eps = 1.3 * torch.randn(4, 4, 8, 8, generator=g)
    alpha = torch.tensor([0.0, 0.25, 0.6, 1.0])
    z = blend_noise(zT, eps, alpha)
    a = alpha.reshape(-1, 1, 1, 1)
    expected_norm = (1 - a) * rms(zT) + a * rms(eps)
    torch.testing.assert_close(rms(z), expected_norm)
    direction = (1 - a) * zT + a * eps
    cosine = torch.nn.functional.cosine_similarity(z.flatten(1), direction.flatten(1))
    torch.testing.assert_close(cosine, torch.ones(4))


def test_alpha_zero_is_the_inverted_latent_and_one_is_the_noise():
    g = torch.Generator().manual_seed(1)
    zT, eps = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    torch.testing.assert_close(blend_noise(zT, eps, torch.zeros(2)), zT)
    torch.testing.assert_close(blend_noise(zT, eps, torch.ones(2)), eps)


def test_a_plain_blend_would_shrink_the_norm_and_the_rescale_undoes_it():
    g = torch.Generator().manual_seed(2)
    zT, eps = torch.randn(1, 4, 32, 32, generator=g), torch.randn(1, 4, 32, 32, generator=g)
    half = torch.tensor([0.5])
    assert rms(0.5 * zT + 0.5 * eps).item() < 0.75
    assert abs(rms(blend_noise(zT, eps, half)).item() - 1.0) < 0.02
