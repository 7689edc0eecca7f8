"""Loading pretrained models (diffusers, transformers) as users name them, quietly: a local folder,
or a hub id found in the local Hugging Face cache (nothing is downloaded); a failure of any kind
inside a folder becomes one line that names it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from tint.errors import TintError
from tint.io.storage import check_directory


def quiet_libraries() -> None:
    """Keep diffusers' and transformers' advice and loading bars off the user's terminal."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for logging in (diffusers_logging, transformers_logging):
        logging.set_verbosity_error()
        logging.disable_progress_bar()


@contextlib.contextmanager
def loading(path: Path, what: str) -> Iterator[None]:
    """Load `what` from `path` inside this block: the libraries fail in many ways on a folder
    that is not what they expect, and each becomes "PATH: cannot load the WHAT (first line)"."""
    quiet_libraries()
    try:
        yield
    except TintError:
        raise
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TintError(f"{path}: cannot load the {what} ({first})") from None


def model_folder(name: str | Path, what: str = "model directory") -> Path:
    """The folder of a model named by its local path, or by a hub id ("org/name", optionally
    "org/name@revision") found in the Hugging Face cache (HF_HOME or HF_HUB_CACHE): the cached
    snapshot, offline. A name that is neither is one line naming both places looked in."""
    path = Path(name).expanduser()
    text = str(name)
    if path.exists() or not _hub_id(text):
        return check_directory(path, what)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo, _, revision = text.partition("@")
    cache = hub_cache()
    try:
        found = snapshot_download(
            repo, revision=revision or None, cache_dir=cache, local_files_only=True
        )
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        raise TintError(
            f"{text}: not a local {what}, and not in the Hugging Face cache ({cache}); download "
            f"it there first (huggingface-cli download {repo}) or give its folder"
        ) from None
    return Path(found)


def user_cache() -> Path:
    """The user's cache folder, as the environment says now: XDG_CACHE_HOME, else ~/.cache."""
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser()


def hub_cache() -> Path:
    """The Hugging Face cache of models, as the environment says now: HF_HUB_CACHE, else
    HF_HOME/hub, else the user's cache's huggingface/hub."""
    home = os.environ.get("HF_HOME") or user_cache() / "huggingface"
    return Path(os.environ.get("HF_HUB_CACHE") or Path(home) / "hub").expanduser()


def _hub_id(text: str) -> bool:
    """Whether `text` is spelled like a hub id: org/name, without a path's other marks."""
    repo = text.partition("@")[0]
    parts = repo.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "~", "/"))
