"""Textual inversion trains the new token rows and nothing else."""

import torch

from tint.diffusion import textual_inversion
from tint.diffusion.textual_inversion import TextualInversionConfig


def _latents(seed, n=3):
    return torch.randn(n, 4, 8, 8, generator=torch.Generator().manual_seed(seed))


CONFIG = TextualInversionConfig(steps=15, lr=5e-2, batch=2, template="a photo of a {}")


def test_only_the_new_embedding_rows_change(model):
    before = model.text_encoder.get_input_embeddings().weight.detach().clone()
    other = {n: p.detach().clone() for n, p in model.text_encoder.named_parameters()}
    unet = {n: p.detach().clone() for n, p in model.unet.named_parameters()}
    learned = textual_inversion.train(
        model, ["<a-cls>", "<b-cls>"], [_latents(0), _latents(1)], CONFIG, seed=0, progress=False
    )
    table = model.text_encoder.get_input_embeddings().weight.detach()
    ids = model.tokenizer.convert_tokens_to_ids(["<a-cls>", "<b-cls>"])
    assert table.shape[0] == before.shape[0] + 2
    assert torch.equal(table[: before.shape[0]], before)
    assert torch.equal(table[ids], learned)
    start = before[model.tokenizer("object", add_special_tokens=False).input_ids].mean(0)
    for row in learned:
        assert (row - start).abs().max() > 1e-3  # it trained
    for name, p in model.text_encoder.named_parameters():
        if "token_embedding" not in name:
            assert torch.equal(p, other[name]), name
    assert all(torch.equal(p, unet[n]) for n, p in model.unet.named_parameters())


def test_a_class_learns_the_same_embedding_batched_or_alone(model_dir):
    from tint.diffusion.model import DiffusionModel

    together = textual_inversion.train(
        DiffusionModel.load(model_dir),
        ["<a-cls>", "<b-cls>"],
        [_latents(0), _latents(1)],
        CONFIG,
        seed=3,
        progress=False,
    )
    alone = textual_inversion.train(
        DiffusionModel.load(model_dir),
        ["<b-cls>"],
        [_latents(1)],
        CONFIG,
        seed=3,
        progress=False,
    )
    torch.testing.assert_close(together[1], alone[0], rtol=1e-4, atol=1e-5)


def test_the_new_token_is_one_token_in_prompts(model):
    textual_inversion.add_tokens(model, ["<my-class>"], "object")
    pieces = model.tokenizer.tokenize("a photo of a <my-class>")
    assert pieces[-1] == "<my-class>" and len(pieces) == 5


def test_training_lowers_the_held_out_denoising_loss(model, supports):
    from tint.data.images import load_class_folders, to_tensor

    classes = load_class_folders(supports)
    latents = [
        model.encode_images(torch.stack([to_tensor(im.image, (16, 16)) for im in images]))
        for images in classes.values()
    ]
    tokens = ["<first>", "<second>"]
    textual_inversion.add_tokens(model, tokens, "object")
    before = denoising_loss(model, tokens, latents, CONFIG.template)
    config = TextualInversionConfig(steps=60, lr=2e-2, batch=3, template=CONFIG.template)
    textual_inversion.train(model, tokens, latents, config, seed=0, progress=False)
    after = denoising_loss(model, tokens, latents, CONFIG.template)
    assert all(a < b for a, b in zip(after, before)), (before, after)


@torch.no_grad()
def denoising_loss(
    model,
    tokens: list[str],
    latents: list[torch.Tensor],
    template: str,
    min_timestep: int = 250,
    draws: int = 32,
    seed: int = 1234,
) -> list[float]:
    """Per class, the mean epsilon-MSE of the model on its supports prompted with its token,
    over `draws` fixed (timestep, noise) pairs per support: the quantity textual inversion
    minimises, measured on draws it did not train on. Tokens must be installed in the model."""
    prompts = model.tokenize([template.format(t) for t in tokens])
    text = model.text_encoder(prompts)[0]
    losses = []
    for c, lat in enumerate(latents):
        g = torch.Generator().manual_seed(seed)
        z0 = lat.repeat_interleave(draws, 0).to(model.device)
        noise = torch.randn(z0.shape, generator=g).to(model.device)
        t = torch.randint(min_timestep, model.num_train_timesteps, (len(z0),), generator=g)
        t = t.to(model.device)
        cond = text[c : c + 1].expand(len(z0), -1, -1)
        eps = model.predict_noise(model.add_noise(z0, noise, t), t, cond)
        losses.append(float((eps - noise).pow(2).mean()))
    return losses
