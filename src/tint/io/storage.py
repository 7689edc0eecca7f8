"""Files on disk: atomic writes (every file appears whole or not at all: temp file in the same
folder + rename) and reads that turn a missing, truncated or malformed file into one TintError
naming it."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from tint.errors import TintError

TEMPORARY = ".*.tmp"  # the names `atomic_path` writes to first


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds.
    The file gets the permissions of any new file (0666 less the umask), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_temporaries(folder: str | Path) -> None:
    """Delete the temporary files that a process killed in the middle of a write left behind."""
    for path in Path(folder).rglob(TEMPORARY):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def write_json(path: str | Path, data: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_safetensors(path: str | Path, tensors: dict[str, torch.Tensor]) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))


def write_png(path: str | Path, image: Image.Image) -> None:
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def describe_os_error(error: OSError) -> str:
    """'<file>: <what went wrong>' for an OSError, in words a user reads."""
    reasons = {
        errno.ENOENT: "does not exist",
        errno.EACCES: "permission denied",
        errno.EPERM: "not permitted",
        errno.EROFS: "on a read-only file system",
        errno.ELOOP: "a symbolic link that loops",
        errno.ENOTDIR: "a path through something that is not a directory",
        errno.EISDIR: "is a directory",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "over the disk quota",
    }
    reason = reasons.get(error.errno, error.strerror or str(error))
    return f"{error.filename}: {reason}" if error.filename else reason


def check_directory(path: str | Path, what: str = "directory") -> Path:
    """`path` (with ~ expanded) if it is a directory; else a TintError saying why not."""
    path = Path(path).expanduser()
    try:
        is_dir = stat.S_ISDIR(os.stat(path).st_mode)
    except OSError as e:
        reason = describe_os_error(e).replace("does not exist", f"no such {what}")
        raise TintError(reason) from None
    if not is_dir:
        raise TintError(f"{path}: not a {what}")
    return path


def read_json(path: str | Path, what: str = "JSON file") -> object:
    """The parsed contents of a JSON file; TintError naming the file if it is missing,
    unreadable or not JSON."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise TintError(describe_os_error(e)) from None
    except UnicodeDecodeError:
        raise TintError(f"{path}: not a {what} (not text)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise TintError(
            f"{path}: not a {what} (invalid JSON at line {e.lineno}: {e.msg})"
        ) from None


def read_json_object(path: str | Path, what: str = "JSON file") -> dict:
    """`read_json` for files that must hold one JSON object."""
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise TintError(f"{path}: not a {what} (holds a JSON {type(data).__name__}, not an object)")
    return data


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file; TintError naming the file if it is missing or
    damaged (truncated, not safetensors)."""
    path = Path(path)
    if not path.is_file():
        try:
            os.stat(path)
        except OSError as e:
            raise TintError(describe_os_error(e)) from None
        raise TintError(f"{path}: not a file")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise TintError(f"{path}: not a readable safetensors file ({first})") from None


def load_weights(module: torch.nn.Module, path: str | Path) -> None:
    """Load a safetensors state dict into `module`; TintError naming the file if it does not
    fit the module (missing or unexpected tensors, other shapes)."""
    tensors = read_safetensors(path)
    try:
        module.load_state_dict(tensors)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise TintError(f"{path}: weights do not fit the network ({detail})") from None
