"""Loading pretrained models (diffusers, transformers) from local folders, quietly, with a failure
of any kind inside a folder turned into one line that names it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from tint.errors import TintError


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
