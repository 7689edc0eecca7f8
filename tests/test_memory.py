"""Work that does not fit the accelerator's memory is split into smaller batches that give the
same result. Running out of memory is simulated: the UNet refuses batches above a limit."""

import pytest
import torch

from tint.diffusion import ddim, null_text, textual_inversion
from tint.diffusion.memory import FittingBatch
from tint.diffusion.model import DiffusionModel
from tint.diffusion.null_text import NullTextConfig
from tint.diffusion.textual_inversion import TextualInversionConfig

from .conftest import support_latents

TI = TextualInversionConfig(steps=15, lr=5e-2, batch=2, template="a photo of a {}")


def _limit(module, samples: int):
    """Make a module raise CUDA's out-of-memory error on more than `samples` samples."""

    def check(_module, args, kwargs):
        x = args[0] if args else kwargs["sample"]
        if len(x) > samples:
            raise torch.cuda.OutOfMemoryError(f"simulated: {len(x)} samples")

    return module.register_forward_pre_hook(check, with_kwargs=True)


def test_a_slice_that_runs_out_of_memory_is_retried_at_half_size(capsys):
    def work(part):
        if part.stop - part.start > 3:
            raise torch.cuda.OutOfMemoryError("simulated")
        return list(range(part.start, part.stop))

    fitting = FittingBatch(8, "test work")
    done = [x for _, result in fitting.slices(11, work) for x in result]
    assert done == list(range(11))  # every sample once, in order
    assert fitting.batch == 2  # 8 and 4 did not fit; the size that did is kept
    err = capsys.readouterr().err
    assert "test work: out of accelerator memory at batch 8, going on with batch 4" in err


def test_one_sample_that_does_not_fit_is_an_error():
    def work(part):
        raise torch.cuda.OutOfMemoryError("simulated")

    with pytest.raises(torch.cuda.OutOfMemoryError):
        list(FittingBatch(4, "test work").slices(4, work))


def test_null_text_inversion_split_by_memory_matches_one_batch(model):
    z0, cond = support_latents(model, 4)
    whole = null_text.invert(model, z0, cond, 10, NullTextConfig(), progress=False)
    hook = _limit(model.unet, 2)  # two supports at a time
    try:
        split = null_text.invert(model, z0, cond, 10, NullTextConfig(), progress=False)
    finally:
        hook.remove()
    assert torch.equal(split.inner_steps_used, whole.inner_steps_used)
    torch.testing.assert_close(split.latents_T, whole.latents_T, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        a = ddim.sample(model, whole.latents_T, cond, whole.null_embeddings, 10, 7.5)
        b = ddim.sample(model, split.latents_T, cond, split.null_embeddings, 10, 7.5)
    err_a, err_b = (a - z0).pow(2).mean(), (b - z0).pow(2).mean()
    assert abs(err_a - err_b) <= 0.05 * err_a + 1e-6


def test_textual_inversion_split_by_memory_learns_the_same_embeddings(model_dir):
    g = torch.Generator().manual_seed(0)
    tokens, latents = ["<a-cls>", "<b-cls>"], [torch.randn(3, 4, 8, 8, generator=g) for _ in "ab"]
    whole = textual_inversion.train(
        DiffusionModel.load(model_dir), tokens, latents, TI, seed=3, progress=False
    )
    model = DiffusionModel.load(model_dir)
    hook = _limit(model.unet, 1)
    try:
        split = textual_inversion.train(model, tokens, latents, TI, seed=3, progress=False)
    finally:
        hook.remove()
    torch.testing.assert_close(split, whole, rtol=1e-4, atol=1e-5)


def test_vae_decoding_split_by_memory_gives_the_same_images(model, capsys):
    z = torch.randn(5, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    whole = model.decode_latents(z)
    calls = []
    hook = model.vae.decoder.register_forward_pre_hook(lambda _m, args: calls.append(len(args[0])))
    limit = _limit(model.vae.decoder, 2)  # the VAE decoder takes two images at a time
    try:
        split = model.decode_latents(z)
        again = model.decode_latents(z[:3])
    finally:
        limit.remove()
        hook.remove()
    torch.testing.assert_close(split, whole, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(again, whole[:3], rtol=1e-4, atol=1e-5)
    # 5 did not fit, half of it did and is kept: the second call does not search again.
    assert calls == [5, 2, 2, 1, 2, 1]
    err = capsys.readouterr().err
    assert "VAE decoding: out of accelerator memory at batch 5, going on with batch 2" in err
