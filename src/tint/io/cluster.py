"""Work spread over a Ray cluster (the optional extra: `pip install 'tint[ray]'`): one Ray task per
unit of work (a benchmark episode, a shard of classes), each result handed to the driver as soon
as it finishes, so the driver writes it to the run folder at once.

Ray schedules, retries and moves the data; tint adds no scheduler of its own. A task that dies
with its worker is retried by Ray (`RETRIES` times); one that raises is reported with its index,
and the others go on. Workers read and write the run's files themselves, so every node must see
the same paths (a shared filesystem)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from tint.errors import TintError
from tint.io.progress import bar

T = TypeVar("T")
RETRIES = 3  # Ray's retries of a task whose worker died (a task that raises is not retried)
MISSING = "--ray needs Ray, an optional extra: pip install 'tint[ray]' (or pip install ray)"


@dataclass(frozen=True)
class Cluster:
    """Where tasks run, and what each one holds while it runs."""

    address: str = ""  # a cluster's address, "auto", or "" (RAY_ADDRESS, else a local instance)
    cpus: float = 1.0  # CPU cores per task; its torch threads too
    gpus: float = 0.0  # GPUs per task

    def start(self) -> None:
        """Connect to the cluster, or start a local Ray instance for this process (unless this
        process is connected already)."""
        try:
            import ray
        except ImportError:
            raise TintError(MISSING) from None
        if ray.is_initialized():
            return
        _STARTED.add(self)
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                logging_level="ERROR",
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = address or "a local instance"
            detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise TintError(f"Ray: cannot start or reach {where}: {detail}") from None
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < self.cpus:
            raise TintError(f"Ray: a task needs {self.cpus:g} CPUs; the cluster has {cpus:g}")
        if self.gpus and ray.cluster_resources().get("GPU", 0) < self.gpus:
            raise TintError(f"Ray: a task needs {self.gpus:g} GPUs; the cluster has none to give")

    def stop(self) -> None:
        """Disconnect, and stop the local instance if one was started, if `start` connected."""
        if self in _STARTED:
            import ray

            _STARTED.discard(self)
            ray.shutdown()


_STARTED: set[Cluster] = set()


def run_tasks(
    cluster: Cluster,
    function: Callable[[Any], Any],
    jobs: Iterable[tuple[int, Any]],
    finished: Callable[[int, Any], None],
    desc: str,
    *,
    progress: bool = True,
    total: int | None = None,
    shared: Iterable[str] = (),
) -> list[tuple[int, str]]:
    """Run `function(job)` as a Ray task for each (index, job), calling `finished(index, result)`
    in this process as each one ends, in the order they end. Returns the failures, (index,
    message), once every task has ended. `shared` are the absolute paths the jobs read or
    write: a worker that cannot see one fails its task saying so."""
    import ray

    cluster.start()
    remote = ray.remote(_in_worker).options(
        num_cpus=cluster.cpus, num_gpus=cluster.gpus, max_retries=RETRIES
    )
    threads, shared = max(1, int(cluster.cpus)), tuple(shared)
    pending = {remote.remote(function, job, threads, shared): index for index, job in jobs}
    failures = []
    # On Ctrl-C the tasks still running end with this driver: Ray ends a job's tasks with it.
    with bar(total=total or len(pending), desc=desc, show=progress) as shown:
        shown.update((total or len(pending)) - len(pending))
        while pending:
            [ready], _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(ready)
            try:
                result = ray.get(ready)
            except ray.exceptions.RayError as e:
                failures.append((index, _message(e)))
            else:
                finished(index, result)
            shown.update(1)
    return sorted(failures)


def _in_worker(
    function: Callable[[Any], Any], job: Any, threads: int, shared: tuple[str, ...]
) -> Any:
    import torch

    for path in shared:
        if not os.path.exists(path):
            raise TintError(
                f"{path}: not found on the worker's node ({socket.gethostname()}); every node "
                "must see the models, data and OUT at the same paths (a shared filesystem)"
            )
    torch.set_num_threads(threads)
    return function(job)


_KEPT: dict[Hashable, Any] = {}


def kept(key: Hashable, make: Callable[[], T]) -> T:
    """What this worker made for `key`, made by its first task of that key and kept for the
    tasks that follow; a new key replaces it (a worker holds one set of models at a time)."""
    if key not in _KEPT:
        _KEPT.clear()
        _KEPT[key] = make()
    return _KEPT[key]


def _message(error: Exception) -> str:
    """One line for a failed task: the error it raised, or why its worker went away."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, BaseException):
        text = str(cause).strip()
        return f"{type(cause).__name__}: {text.splitlines()[0]}" if text else type(cause).__name__
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def failed(failures: list[tuple[int, str]], what: str, total: int, out: str) -> TintError:
    """The one-line error for tasks that failed while the others' work was written."""
    first, message = failures[0]
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return TintError(
        f"{len(failures)} of {total} {what}s failed; the rest are written to {out} and --resume "
        f"runs the failed ones again: {what} {first}: {message}{more}"
    )
