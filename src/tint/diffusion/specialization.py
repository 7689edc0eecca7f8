"""A class's specialisation on disk: its textual-inversion token and, per support, the inverted
latent and null-text embeddings. `save(dir)` and `load(dir)` are exact inverses.

    <dir>/learned_embeds.safetensors   {token: (1, D)}, as stock diffusers reads it
    <dir>/textual_inversion.json       token, prompt, settings of the textual-inversion stage
    <dir>/null_text.safetensors        latents_T (K, C, h, w), null_embeddings (K, N, L, D)
    <dir>/specialization.json          supports, sizes, DDIM grid, settings of the null-text stage

The two stages are saved separately so an interrupted run resumes at the null-text stage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from tint.errors import TintError
from tint.io.storage import read_json_object, read_safetensors, write_json, write_safetensors

EMBEDS = "learned_embeds.safetensors"
TI_JSON = "textual_inversion.json"
NULL_TEXT = "null_text.safetensors"
SPEC_JSON = "specialization.json"


@dataclass
class TokenEmbedding:
    """The textual-inversion stage of one class."""

    token: str
    prompt: str
    embedding: torch.Tensor  # (D,) float32
    settings: dict  # what produced it; a resumed run reuses it only if these match

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        write_safetensors(directory / EMBEDS, {self.token: self.embedding.reshape(1, -1)})
        write_json(
            directory / TI_JSON,
            {"token": self.token, "prompt": self.prompt, "settings": self.settings},
        )

    def is_saved_in(self, directory: Path) -> bool:
        if not (directory / TI_JSON).is_file():
            return False
        saved = TokenEmbedding.load(directory)
        return (saved.token, saved.prompt, saved.settings) == (
            self.token,
            self.prompt,
            self.settings,
        ) and torch.equal(saved.embedding, self.embedding)

    @classmethod
    def load(cls, directory: str | Path) -> TokenEmbedding:
        directory = Path(directory)
        meta = _fields(
            directory / TI_JSON, "textual-inversion file", ("token", "prompt", "settings")
        )
        tensors = read_safetensors(directory / EMBEDS)
        if meta["token"] not in tensors:
            raise TintError(f"{directory / EMBEDS}: has no embedding for {meta['token']}")
        return cls(meta["token"], meta["prompt"], tensors[meta["token"]][0], meta["settings"])


@dataclass
class Specialization:
    """Both stages of one class: everything TINT needs to generate more of it."""

    name: str
    token_embedding: TokenEmbedding
    supports: list[str]  # file names, in the order of the tensors below
    support_sizes: list[tuple[int, int]]  # (width, height) of each support as read
    latents_T: torch.Tensor  # (K, C, h, w)
    null_embeddings: torch.Tensor  # (K, N, L, D), one per DDIM step in sampling order
    settings: dict

    @staticmethod
    def exists(directory: str | Path) -> bool:
        return (Path(directory) / SPEC_JSON).is_file()

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        if not self.token_embedding.is_saved_in(directory):
            self.token_embedding.save(directory)
        write_safetensors(
            directory / NULL_TEXT,
            {"latents_T": self.latents_T, "null_embeddings": self.null_embeddings},
        )
        # Written last: its presence marks the specialisation complete.
        write_json(
            directory / SPEC_JSON,
            {
                "name": self.name,
                "supports": self.supports,
                "support_sizes": [list(s) for s in self.support_sizes],
                "settings": self.settings,
            },
        )

    @classmethod
    def load(cls, directory: str | Path) -> Specialization:
        directory = Path(directory)
        meta = _fields(
            directory / SPEC_JSON, "specialisation file", ("name", "supports", "support_sizes")
        )
        tensors = read_safetensors(directory / NULL_TEXT)
        missing = {"latents_T", "null_embeddings"} - set(tensors)
        if missing:
            raise TintError(f"{directory / NULL_TEXT}: has no {min(missing)} tensor")
        return cls(
            name=meta["name"],
            token_embedding=TokenEmbedding.load(directory),
            supports=meta["supports"],
            support_sizes=[tuple(s) for s in meta["support_sizes"]],
            latents_T=tensors["latents_T"],
            null_embeddings=tensors["null_embeddings"],
            settings=meta.get("settings", {}),
        )


def _fields(path: Path, what: str, names: tuple[str, ...]) -> dict:
    meta = read_json_object(path, what)
    missing = [n for n in names if n not in meta]
    if missing:
        raise TintError(f"{path}: not a {what} (no {missing[0]!r})")
    return meta
