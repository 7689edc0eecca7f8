"""The output folder of a run: checked before anything is written, then owned by one process.

    OUT/run.json      the run's settings; a resumed run must have the same ones
    OUT/.tint.lock    while a process works in OUT: its pid, under an exclusive flock

The lock is an flock, so the kernel releases it when its holder dies, even by kill -9: a lock
file left by a dead process is taken over, while a live holder makes a second run refuse. A new
holder also deletes the temporary files that a killed writer left behind (see `storage`)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tint.errors import TintError
from tint.io.storage import describe_os_error, read_json_object, remove_temporaries, write_json

LOCK = ".tint.lock"
SETTINGS = "run.json"


class RunFolder:
    """`with RunFolder(out, settings, resume): ...` checks OUT, makes and locks it, writes
    run.json, and unlocks it at the end however the block ends."""

    def __init__(
        self,
        path: str | Path,
        settings: dict | None,
        resume: bool,
        may_change: tuple[str, ...] = (),
    ):
        self.path = Path(path).expanduser()
        self.settings = settings  # None: not known yet, so `check` cannot compare them
        self.resume = resume
        self.may_change = may_change  # settings a resumed run may change (it extends the run)
        self._fd: int | None = None

    def check(self) -> None:
        """Everything that can be known about OUT without writing to it."""
        out = self.path
        check_writable(out)
        try:
            used = out.is_dir() and any(p.name != LOCK for p in out.iterdir())
        except OSError as e:
            raise TintError(describe_os_error(e)) from None
        if not used:
            return
        if not self.resume:
            raise TintError(f"{out}: not empty (pass --resume to continue a run there)")
        if self.settings is not None and (out / SETTINGS).is_file():
            before = _flat(read_json_object(out / SETTINGS, "run settings file"))
            now = _flat(self.settings)
            changed = sorted(
                k
                for k in set(before) | set(now)
                if before.get(k) != now.get(k)
                and not any(k == m or k.startswith(f"{m}.") for m in self.may_change)
            )
            if changed:
                raise TintError(
                    f"{out}: made with different settings ({', '.join(changed)}); use another --out"
                )

    def __enter__(self) -> RunFolder:
        self.check()
        with writable_folder(self.path):
            self._lock()
        remove_temporaries(self.path)
        if self.settings is not None:
            write_json(self.path / SETTINGS, self.settings)
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _lock(self) -> None:
        path = self.path / LOCK
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise TintError(
                    f"{self.path}: in use by another tint process (pid {holder}); "
                    "wait for it to finish or stop it"
                ) from None
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current != os.fstat(fd).st_ino:  # its last holder removed it as we opened it
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            return

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path / LOCK)  # while still holding it: see the inode check above
        os.close(self._fd)
        self._fd = None


def _flat(settings: dict, prefix: str = "") -> dict:
    """Nested settings as {dotted path: value}."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_writable(path: str | Path) -> None:
    """Raise a TintError if `path` cannot be a folder this process writes to, as far as can be
    told without writing anything: the permission of the nearest folder that exists."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise TintError(f"{path}: exists and is not a directory")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise TintError(f"{path}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise TintError(f"{path}: cannot write there ({existing}: permission denied)")


@contextlib.contextmanager
def writable_folder(path: str | Path) -> Iterator[Path]:
    """Make the folder `path` (and its parents) and check that files can be written there; the
    block then runs. If that fails, or the block raises, the folders this made are removed, so a
    refused run leaves nothing behind."""
    path = Path(path).expanduser()
    check_writable(path)
    created = _missing_parents(path)
    try:
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as e:
            raise TintError(f"{path}: cannot write there ({describe_os_error(e)})") from None
        yield path
    except BaseException:
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def replace_folder(scratch: Path, target: Path, old: Path | None = None) -> None:
    """Put the finished folder `scratch` in the place of `target`. Readers never see `target`
    half written; a process killed between the two renames leaves `scratch` whole and `old` (the
    previous `target`), which `Checkpoint` recovers from."""
    old = old or target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    scratch.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _missing_parents(path: Path) -> list[Path]:
    """The folders `mkdir(parents=True)` would create for `path`, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing
