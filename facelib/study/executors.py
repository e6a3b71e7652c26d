"""Where a sweep's jobs run: `LocalExecutor` (processes or threads) or `RayExecutor` (Ray tasks).

Both take a picklable function and its jobs and yield (index, result, error) as jobs finish.
Standard library only (Ray is imported when a Ray executor is made), so that the notebook
pipeline (`facelib.study.pipeline`) uses them without importing torch.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
from typing import Any, Callable, Iterator, Sequence

__all__ = ["LocalExecutor", "RayExecutor", "executor", "RAY_HINT"]

RAY_HINT = "pip install -e '.[cluster]'"


class LocalExecutor:
    """Jobs in `max_workers` local processes (spawned: each its own torch state), or threads."""

    def __init__(self, max_workers: int = 1, processes: bool = True):
        if not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be a positive integer, got {max_workers!r}")
        self.max_workers, self.processes = max_workers, processes

    def run(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[int, Any, BaseException | None]]:
        """(index, result, error) per job, in the order they finish."""
        if not jobs:
            return
        workers = min(self.max_workers, len(jobs))
        pool = (futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
                if self.processes else futures.ThreadPoolExecutor(workers, thread_name_prefix="sweep"))
        with pool:
            pending = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
            for fut in futures.as_completed(pending):
                error = fut.exception()
                yield pending[fut], None if error else fut.result(), error


def _import_ray():
    try:
        import ray  # here: Ray is the optional extra `.[cluster]`
    except ImportError:
        raise ImportError(f"the Ray executor needs Ray, which is not installed; install the extra with "
                          f"`{RAY_HINT}`, or use the local executor (--executor local)") from None
    return ray


class RayExecutor:
    """One Ray task per job with `cpus` / `gpus` each, on the Ray at `address` (None: a local one)."""

    def __init__(self, address: str | None = None, cpus: float = 1, gpus: float = 0, num_cpus: int | None = None):
        if cpus <= 0 or gpus < 0:
            raise ValueError(f"a task needs cpus > 0 and gpus >= 0, got cpus={cpus}, gpus={gpus}")
        self.ray = _import_ray()
        self.address, self.cpus, self.gpus, self.num_cpus = address, cpus, gpus, num_cpus

    def _start(self) -> None:
        if self.ray.is_initialized():
            return
        if self.address:
            self.ray.init(address=self.address, log_to_driver=False)
        else:  # a private local Ray: no dashboard, a small object store (the jobs return small dicts)
            self.ray.init(num_cpus=self.num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                          object_store_memory=80 * 2**20)

    def run(self, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> Iterator[tuple[int, Any, BaseException | None]]:
        """(index, result, error) per job, in the order they finish."""
        if not jobs:
            return
        self._start()
        task = self.ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)(fn)
        refs = {task.remote(job): i for i, job in enumerate(jobs)}
        pending = list(refs)
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    yield refs[ref], self.ray.get(ref), None
                except Exception as exc:  # the task's error (RayTaskError wraps the original)
                    cause = getattr(exc, "cause", None)
                    yield refs[ref], None, cause if isinstance(cause, BaseException) else exc


def executor(kind: str = "auto", max_workers: int = 1, address: str | None = None, cpus: float = 1,
             gpus: float = 0, processes: bool = True):
    """`kind` "ray" (needs the extra), "local", or "auto": Ray when installed (or `address` given)."""
    if kind not in ("auto", "ray", "local"):
        raise ValueError(f"unknown executor {kind!r}; use auto, ray or local")
    if kind == "local" and address:
        raise ValueError("--address names a Ray cluster; it needs the Ray executor (drop --executor local)")
    if kind == "auto":
        try:
            import ray  # noqa: F401 - here: whether the optional Ray extra is installed
            kind = "ray"
        except ImportError:
            if address:
                _import_ray()
            kind = "local"
    if kind == "ray":
        return RayExecutor(address, cpus=cpus, gpus=gpus, num_cpus=None if address else max(max_workers, 1) * int(
            max(cpus, 1)))
    return LocalExecutor(max_workers, processes=processes)
