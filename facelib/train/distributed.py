"""Data-parallel training on torch.distributed: what `fit` does differently in N processes.

Two ways in, one code path:

* ``torchrun --nproc-per-node N -m facelib train ...`` (or any script calling `fit` under
  torchrun, on one machine or several): `fit` reads RANK / WORLD_SIZE / LOCAL_RANK from the
  environment and starts the process group itself (gloo on the CPU, NCCL on CUDA);
* ``fit(..., nproc=N)`` (``python -m facelib train --nproc N``): `fit` spawns N local
  processes that do the above and hands back rank 0's result in the calling process.

Every process holds the whole in-memory data set and the same batch plan (it depends on the
seed and epoch only); each takes its share of every global batch (`Ranks.shard`: a slice of
the images, or of the groups for grouped batches, so a group stays on one rank). The model
objectives (`BaseVAE.objectives()`: modules whose forward returns the loss terms) are each
wrapped in torch's DistributedDataParallel (`data_parallel`), so every backward the training
step takes through one averages its gradients over the ranks; FactorVAE's discriminator is
an objective of its own, with its own wrapper. The loss
terms of a step are averaged over the ranks (weighted by images) before they enter the
history, so the history reads as one process with the same global batch would write it,
up to the reparameterisation noise, which each rank draws from its own seed. Rank 0 alone
writes checkpoints; they hold every rank's RNG state, so a resume with the same number of
processes is exact. At the end the ranks check that they hold the same weights.
"""

from __future__ import annotations

import atexit
import copy
import datetime
import math
import os
import socket
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = ["Ranks", "from_environment", "process_group", "device_for", "data_parallel", "check_batches",
           "spawn_fit"]


@dataclass
class Ranks:
    """This process's place among the data-parallel processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    #: where collectives run: the CPU for gloo, this rank's GPU for NCCL (set by `process_group`)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- batches ---------------------------------------------------------------------------
    def shard(self, item: Any) -> Any:
        """This rank's part of a global batch: a slice of its images, or for a grouped batch
        `(idx, group)` a slice of its groups (whole groups, relabelled from 0)."""
        if not self.active:
            return item
        if isinstance(item, torch.Tensor):
            return item.tensor_split(self.world_size)[self.rank]
        idx, group = item
        n_groups = int(group[-1]) + 1 if group.numel() else 0
        size = idx.numel() // max(n_groups, 1)
        mine = torch.arange(n_groups).tensor_split(self.world_size)[self.rank]
        if mine.numel() == 0:
            return idx[:0], group[:0]
        lo, hi = int(mine[0]) * size, (int(mine[-1]) + 1) * size
        return idx[lo:hi], group[lo:hi] - int(mine[0])

    # -- collectives (no-ops in one process) ------------------------------------------------
    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """`values` summed over the ranks (float64)."""
        values = values.detach().to(self.device, torch.float64)
        if self.active:
            torch.distributed.all_reduce(values)
        return values.cpu()

    def mean_terms(self, terms: dict[str, float], n: int) -> tuple[dict[str, float], int]:
        """Loss terms averaged over the ranks, weighted by their images; and the global count."""
        if not self.active:
            return terms, n
        keys = list(terms)
        total = self.sum(torch.tensor([float(n)] + [terms[k] * n for k in keys])).tolist()
        count = int(round(total[0]))
        return {k: v / count for k, v in zip(keys, total[1:])}, count

    def all_true(self, ok: bool) -> bool:
        """Whether `ok` holds in every process."""
        if not self.active:
            return ok
        return bool(self.sum(torch.tensor([0.0 if ok else 1.0]))[0] == 0)

    def gather(self, obj: Any) -> list[Any]:
        """`obj` from every rank, in rank order."""
        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def raise_if_any(self, error: BaseException | None) -> None:
        """Re-raise `error` here, and make every other rank stop too (a collective)."""
        if self.all_true(error is None):
            return
        if error is not None:
            raise error
        raise RuntimeError("another data-parallel process failed while setting up (see its error); stopping")


#: The environment variables that make a process one rank of a data-parallel run.
DIST_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
#: Seconds the ranks wait for each other (rendezvous and every collective; torch's default is 30 min).
TIMEOUT_VARIABLE = "FACELIB_DIST_TIMEOUT"
DEFAULT_TIMEOUT_SECONDS = 600.0
#: The longest wait accepted (torch's timedelta overflows on inf).
MAX_TIMEOUT_SECONDS = 86400.0


def rendezvous_timeout() -> float:
    """Seconds to wait for the other ranks: `$FACELIB_DIST_TIMEOUT`, else 10 minutes."""
    text = os.environ.get(TIMEOUT_VARIABLE, "")
    if not text:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value) and value <= MAX_TIMEOUT_SECONDS):
        raise ValueError(f"{TIMEOUT_VARIABLE}={text!r} is not a number of seconds from 0 to {MAX_TIMEOUT_SECONDS:g} "
                         "(a day); unset it or give e.g. 300")
    return value


def from_environment() -> Ranks:
    """The ranks torchrun (or `spawn_fit`) gave this process; one process without them."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return Ranks()
    rank = int(os.environ.get("RANK", "0"))
    return Ranks(rank=rank, world_size=world, local_rank=int(os.environ.get("LOCAL_RANK", rank)))


def device_for(device: torch.device, ranks: Ranks) -> torch.device:
    """The device of this rank: on CUDA the GPU of its local rank; refuses what cannot work."""
    if not ranks.active:
        return device
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if ranks.local_rank >= count:
            raise ValueError(
                f"{ranks.world_size} processes per machine asked for, but this machine has {count} GPU(s); "
                f"use --nproc-per-node {count} (one process per GPU), or device='cpu'")
        torch.cuda.set_device(ranks.local_rank)
        return torch.device("cuda", ranks.local_rank)
    if device.type != "cpu":
        raise ValueError(f"data-parallel training runs on the CPU (gloo) or on CUDA (NCCL), not on {device.type}; "
                         "use device='cpu' or a single process")
    return device


def process_group(ranks: Ranks, device: torch.device) -> Ranks:
    """Start the process group for `ranks` (gloo on the CPU, NCCL on CUDA) unless it runs
    already; it stays up for later `fit` calls of this process (torchrun's rendezvous serves
    one start per process) and ends when the process does."""
    if not ranks.active:
        return ranks
    dist = torch.distributed
    if not dist.is_available():  # pragma: no cover - builds without distributed
        raise RuntimeError("this torch build has no torch.distributed; train in a single process")
    if not dist.is_initialized():
        timeout = rendezvous_timeout()
        try:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=ranks.rank,
                                    world_size=ranks.world_size, timeout=datetime.timedelta(seconds=timeout))
        except (RuntimeError, ValueError) as exc:  # DistStoreError is a RuntimeError
            stale = " ".join(f"{k}={os.environ[k]}" for k in DIST_VARIABLES if k in os.environ)
            raise RuntimeError(
                f"the data-parallel processes did not all join within {timeout:g} s ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); this process has {stale} in its environment. "
                "If no other ranks were started these variables are stale (left from another launch): unset "
                "them to train in one process; otherwise start every rank (torchrun --nproc-per-node N, or "
                f"fit(nproc=N)), or give slower machines more time with {TIMEOUT_VARIABLE}=SECONDS") from None
        atexit.register(_end_process_group)
    if dist.get_world_size() != ranks.world_size:
        raise RuntimeError(f"the process group has {dist.get_world_size()} processes, WORLD_SIZE says "
                           f"{ranks.world_size}")
    ranks.device = device if dist.get_backend() == "nccl" else torch.device("cpu")
    return ranks


def _end_process_group() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def check_batches(config: Any, grouping: Any, ranks: Ranks) -> None:
    """Refuse global batches that do not split evenly over the ranks (each rank's mean would
    then weigh differently from one process's), with the fix."""
    if not ranks.active:
        return
    what, value = (("groups_per_batch", grouping.groups_per_batch) if grouping is not None
                   else ("batch_size", config.batch_size))
    if value < ranks.world_size or value % ranks.world_size:
        raise ValueError(
            f"{what}={value} does not split evenly over {ranks.world_size} processes; use a multiple of "
            f"{ranks.world_size} (each process takes its share of every batch), or fewer processes")


def data_parallel(objectives: list[nn.Module], optimizers: list[torch.optim.Optimizer], ranks: Ranks,
                  device: torch.device) -> list[nn.Module]:
    """Each objective wrapped in DistributedDataParallel (unchanged in one process), which
    averages the gradients of every backward through it over the ranks.

    A wrapper syncs only the parameters its own optimizer steps: FactorVAE's VAE loss runs
    through the frozen discriminator, which the discriminator's objective trains.
    """
    if not ranks.active:
        return list(objectives)
    wrapped = []
    for objective, opt in zip(objectives, optimizers, strict=True):
        stepped = {id(p) for group in opt.param_groups for p in group["params"]}
        others = [name for name, p in objective.named_parameters() if id(p) not in stepped]
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(objective, others)
        wrapped.append(DistributedDataParallel(objective, device_ids=[device.index] if device.type == "cuda" else None))
    return wrapped


# -- fit(nproc=N): local processes ----------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawned_rank(rank: int, fit: Callable[..., Any], world: int, port: int, model: nn.Module, dataset: Any,
                  config: Any, callbacks: list, queue: Any) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    model = copy.deepcopy(model)  # its own weights: spawn hands every process the same shared memory
    try:
        result = fit(model, dataset, config, callbacks=callbacks)
    except BaseException as exc:
        try:
            queue.put(("error", rank, exc, traceback.format_exc()))
        except Exception:  # an exception that does not pickle: its text
            queue.put(("error", rank, RuntimeError(str(exc)), traceback.format_exc()))
        raise
    if torch.distributed.is_initialized():
        # every rank done before any tears the group down: gloo aborts a process (SIGABRT,
        # "terminate called without an active exception") whose peer closes mid-teardown
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if rank == 0:
        queue.put(("ok", rank, {
            # numpy, pickled by value: a tensor would travel as a handle to this process's memory
            "state_dict": {k: v.detach().cpu().numpy() for k, v in result.model.state_dict().items()},
            "history": result.history, "checkpoint": result.checkpoint, "last": result.last,
            "best": result.best, "device": result.device, "precision": result.precision,
            "stopped": result.stopped, "step_history": result.step_history,
        }, ""))


def spawn_fit(fit: Callable[..., Any], model: nn.Module, dataset: Any, config: Any,
              callbacks: list = ()) -> dict[str, Any]:
    """Run `fit` (the engine's, passed in: it pickles by reference) in `config.nproc` local processes
    (gloo or NCCL) with `callbacks` (rank 0 calls them); rank 0's outcome as a dict (state_dict,
    history, ...), or the first error a rank raised, raised here."""
    nproc = int(config.nproc)
    threads = config.num_threads or max(1, (os.cpu_count() or 1) // nproc)
    child_config = config.replace(nproc=None, num_threads=threads)
    queue = mp.get_context("spawn").SimpleQueue()
    messages: list[tuple] = []
    processes = mp.start_processes(_spawned_rank, args=(fit, nproc, _free_port(), model.to("cpu"), dataset, child_config,
                                                        list(callbacks), queue), nprocs=nproc, join=False, start_method="spawn")
    try:
        while True:  # read while they run: a large result would fill the pipe and block its writer
            while not queue.empty():
                messages.append(queue.get())
            if processes.join(timeout=0.2):
                break
    except mp.ProcessRaisedException as exc:
        while not queue.empty():
            messages.append(queue.get())
        errors = sorted((rank, payload) for kind, rank, payload, _ in messages if kind == "error")
        if errors:
            raise errors[0][1] from exc
        raise
    except mp.ProcessExitedException as exc:  # killed (out of memory, kill -9): no error of its own to show
        where = f"; {config.out} keeps the last checkpoint: rerun with --resume" if config.out else ""
        raise RuntimeError(
            f"data-parallel process {exc.error_index} of {nproc} stopped without an error of its own ({exc}); "
            f"the others were stopped. Something outside training ended it: often the system running out of "
            f"memory (fewer --nproc or a smaller batch use less){where}") from None
    while not queue.empty():
        messages.append(queue.get())
    for kind, _, payload, _ in messages:
        if kind == "ok":
            return payload
    raise RuntimeError("the data-parallel processes ended without a result from rank 0")
