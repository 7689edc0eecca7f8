"""Textual inversion: one new token per class, trained on the class's supports.

All classes of a call train in one batched loop; each batch element is conditioned on its own
class's token. Only the new tokens' embedding rows are trainable: they live in their own
parameter and are spliced into the embedding table's output by a forward hook, so every other row
stays exactly as loaded."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch

from tint.config import SettingError, setting
from tint.diffusion.memory import FittingBatch
from tint.diffusion.model import DiffusionModel
from tint.errors import TintError
from tint.io import seeds
from tint.io.progress import bar


@dataclass
class TextualInversionConfig:
    steps: int = setting(300, "optimisation steps (all classes advance together)", minimum=1)
    lr: float = setting(5e-3, "AdamW's learning rate, constant", above=0)
    batch: int = setting(4, "images per class per step", minimum=1)
    min_timestep: int = setting(250, "timesteps are drawn from [this, T)", minimum=0)
    template: str = setting("a photo of a {}", "the prompt; {} is the class token")
    init_word: str = setting("object", "the token starts from this word's embedding")


def add_tokens(model: DiffusionModel, tokens: list[str], init_word: str) -> list[int]:
    """Add `tokens` to the tokenizer (those an earlier call added are reused) and set each one's
    row to the embedding of `init_word` (the mean of its pieces if the tokenizer splits it), so
    training starts from the same point every time."""
    tok = model.tokenizer
    init_ids = tok(init_word, add_special_tokens=False).input_ids
    if not init_ids:
        raise SettingError("ti.init_word", f"{init_word!r} gives no tokens")
    fresh = [t for t in tokens if t not in tok.get_vocab()]
    tok.add_tokens(fresh)
    ids = tok.convert_tokens_to_ids(tokens)
    if len(set(ids)) != len(ids):
        raise TintError("class tokens must be distinct")
    old_rows = model.text_encoder.get_input_embeddings().weight.shape[0]
    if len(tok) > old_rows:
        model.text_encoder.resize_token_embeddings(len(tok), mean_resizing=False)
    table = model.text_encoder.get_input_embeddings().weight
    with torch.no_grad():
        table[ids] = table[init_ids].mean(0)
    return ids


def set_embeddings(model: DiffusionModel, tokens: list[str], embeddings: torch.Tensor) -> None:
    """Install trained embeddings (C, D) for `tokens`, adding the tokens if needed."""
    ids = add_tokens(model, tokens, "a")
    with torch.no_grad():
        model.text_encoder.get_input_embeddings().weight[ids] = embeddings.to(model.device)


def train(
    model: DiffusionModel,
    tokens: list[str],
    latents: list[torch.Tensor],
    config: TextualInversionConfig,
    seed: int,
    *,
    progress: bool = True,
) -> torch.Tensor:
    """Learn one embedding per token from its class's support latents.

    Args:
        tokens: one new token per class, e.g. "<dog>".
        latents: per class, a (K_c, C, h, w) tensor of VAE latents of its supports.
    Returns:
        (num_classes, D) learned embeddings, float32 on the CPU. The tokens are installed in the
        model's tokenizer and text encoder as a side effect.
    """
    ids = add_tokens(model, tokens, config.init_word)
    embedding = model.text_encoder.get_input_embeddings()
    learned = torch.nn.Parameter(embedding.weight[ids].detach().clone())  # (C, D)
    slot = torch.full((embedding.weight.shape[0],), -1, dtype=torch.long, device=model.device)
    slot[torch.tensor(ids, device=model.device)] = torch.arange(len(ids), device=model.device)

    def splice(_module, inputs, output):
        where = slot[inputs[0]]  # (B, L): index into `learned`, or -1
        return torch.where((where >= 0)[..., None], learned[where.clamp(min=0)], output)

    prompts = model.tokenize([config.template.format(t) for t in tokens])  # (C, L)
    # A class's stream depends on (seed, token) only: it trains the same batched or alone.
    generators = [seeds.generator(seed, t) for t in tokens]
    optimizer = torch.optim.AdamW([learned], lr=config.lr)
    T = model.num_train_timesteps
    if not 0 <= config.min_timestep < T:
        raise SettingError("ti.min_timestep", f"must be below {T}, got {config.min_timestep}")
    hook = embedding.register_forward_hook(splice)
    try:
        fit(
            model,
            prompts,
            latents,
            generators,
            optimizer,
            config.steps,
            config.batch,
            config.min_timestep,
            "textual inversion",
            progress,
        )
    finally:
        hook.remove()
    result = learned.detach()
    if not torch.isfinite(result).all():
        raise SettingError("ti.lr", "textual inversion diverged (a non-finite embedding): lower it")
    with torch.no_grad():
        embedding.weight[ids] = result
    return result.cpu()


def fit(
    model: DiffusionModel,
    prompts: torch.Tensor,
    latents: list[torch.Tensor],
    generators: list[torch.Generator],
    optimizer: torch.optim.Optimizer,
    steps: int,
    batch: int,
    min_timestep: int,
    what: str,
    progress: bool,
) -> None:
    """`steps` steps of the denoising loss: each step draws `batch` of each class's latents
    (from its own generator), noise and timesteps in [min_timestep, T), with the class's prompt
    (`prompts`: (C, L) token ids), and steps `optimizer` on whatever parameters the loss reaches
    (a token's embedding; adapters in the UNet)."""
    sample_prompts = prompts.repeat_interleave(batch, 0)  # (C*batch, L)
    fitting = FittingBatch(len(sample_prompts), what)
    T = model.num_train_timesteps
    for _ in bar(range(steps), what, progress):
        z0, noise, t = [], [], []
        for lat, g in zip(latents, generators):
            pick = torch.randint(len(lat), (batch,), generator=g)
            z0.append(lat[pick])
            noise.append(torch.randn(lat[pick].shape, generator=g))
            t.append(torch.randint(min_timestep, T, (batch,), generator=g))
        z0 = torch.cat(z0).to(model.device)  # (C*batch, C, h, w)
        noise = torch.cat(noise).to(model.device)
        t = torch.cat(t).to(model.device)
        optimizer.zero_grad(set_to_none=True)
        step = partial(_backward, model, sample_prompts, z0, noise, t, batch)
        for _ in fitting.slices(len(z0), step):
            pass
        optimizer.step()


def _backward(model, prompts, z0, noise, t, batch: int, part: slice) -> None:
    """Add the gradient of the samples in `part` to the trained parameters. The loss is the sum
    over classes of each class's mean error (`batch` samples per class), so that every token gets
    the gradient it would get if trained alone, and slices add up to the whole batch's gradient."""
    text = model.text_encoder(prompts[part])[0]
    pred = model.unet(
        model.add_noise(z0[part], noise[part], t[part]).to(model.dtype),
        t[part],
        encoder_hidden_states=text.to(model.dtype),
    ).sample.float()
    error = (pred - model.training_target(z0[part], noise[part], t[part])).pow(2)
    (error.flatten(1).mean(1).sum() / batch).backward()
