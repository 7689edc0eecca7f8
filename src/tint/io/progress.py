"""Progress that suits its reader: a bar per stage on a terminal; where stderr is a file or a
pipe (a log, CI), one line per stage when it ends, with its count and seconds, instead of a
stream of carriage-return updates:

    generating: 200/200 img in 7.9 s
    distilling: 400/400 it in 14.9 s, loss=0.0123

Inner loops (the DDIM steps inside a stage) show a transient bar on a terminal and nothing in a
log."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable


def bar(
    iterable: Iterable | None = None,
    desc: str = "",
    show: bool = True,
    *,
    total: int | None = None,
    unit: str = "it",
    initial: int = 0,
    inner: bool = False,
):
    """A progress bar over `iterable` (or updated by hand, with `total`): tqdm's on a terminal,
    one line at the end elsewhere, nothing when `show` is False."""
    if show and sys.stderr.isatty():
        from tqdm.auto import tqdm

        return tqdm(iterable, desc, total=total, unit=unit, initial=initial, leave=not inner)
    return Lines(iterable, desc, show and not inner, total, unit, initial)


class Lines:
    """The part of tqdm's interface tint uses, printing one line to stderr when closed."""

    def __init__(self, iterable, desc: str, show: bool, total, unit: str, initial: int):
        self.iterable, self.desc, self.show, self.unit = iterable, desc, show, unit
        if total is None and hasattr(iterable, "__len__"):
            total = initial + len(iterable)
        self.total, self.n, self.postfix = total, initial, ""
        self.started, self.closed = time.perf_counter(), False

    def __iter__(self):
        try:
            for item in self.iterable:
                yield item
                self.n += 1
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.show:
            return
        count = f"{self.n:,}" if self.total is None else f"{self.n:,}/{self.total:,}"
        line = f"{self.desc}: {count} {self.unit} in {time.perf_counter() - self.started:.1f} s"
        print(line + (f", {self.postfix}" if self.postfix else ""), file=sys.stderr, flush=True)
