"""Data-parallel training under ``torchrun`` (SPEC 7: PyTorch's own launcher, no home-made
scheduler).

``torchrun --nproc-per-node N -m bench train --model M ...`` starts N copies of the command;
each reads its rank from the environment torchrun sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``) and :func:`current` joins the process group
(``nccl`` when the run is on CUDA, ``gloo`` on CPUs). Without those variables the world is one
process and nothing here does anything: a single-process run is unchanged, weight for weight.

What each rank does (the train stage, :mod:`bench.stages.train`, and the judges' stage,
:mod:`bench.stages.judges`, call these):

- **Data**: :func:`shard` gives rank ``r`` the prepared train clips ``r, r + N, r + 2N, ...``
  (a distributed sampler over clips; the split, and so speaker disjointness, is untouched),
  and every step loop runs the fewest steps any rank planned (:func:`agree_steps`, called by
  :func:`bench.core.training.run_steps`: epoch-sized budgets count their shard's windows).
  Validation clips are not sharded: every rank validates on all of them, so choices made on
  validation (best snapshot, sync gates) are the same on every rank.
- **Seeds**: :func:`rank_seed` derives rank ``r``'s seed from the run seed (rank 0 keeps the
  run seed), so batch draws, augmentations and dropout differ between ranks.
- **Gradients** (:func:`data_parallel`): DistributedDataParallel's arithmetic for every
  network a training loop builds, without rewriting the loops: a module's parameters and
  buffers are broadcast from rank 0 on its first forward (DDP does this when it wraps a
  module), the gradients of every optimiser's parameters are averaged over the ranks
  (all-reduce, sum / N) just before each ``optimizer.step()`` (DDP averages them during
  ``backward``; no loop clips gradients in between, so the update is the same), and BatchNorm
  running statistics are broadcast from rank 0 after each training forward (DDP's
  ``broadcast_buffers``). Why not the ``DistributedDataParallel`` class itself: it synchronises
  only through the wrapped module's ``forward``, and the loops call sub-networks and methods
  (``net.audio(...)``, ``generator.encode(...)``) directly; wrapping each of them loop by loop
  would touch every generator and judge. GAN and discriminator optimisers are averaged each at
  its own step, as one DDP wrapper per network would.
- **BatchNorm**: per-rank statistics (the per-rank batch is the budget's ``batch``;
  ``SyncBatchNorm`` needs CUDA and the loops' modules), which the provenance states.
- **Checkpoint**: rank 0 writes it (atomically, with ``done.json`` last, as every cached
  folder); every rank first checks that all ranks hold identical weights (:func:`same_on_all`)
  and then waits for rank 0 (:func:`barrier`).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import hashlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = World()


def current(device: str | None = None) -> World:
    """The world torchrun started this process in, joining its process group on first call
    (``nccl`` when ``device`` is CUDA or is unset with CUDA present, else ``gloo``)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dist = torch.distributed
    if not dist.is_initialized():
        on_cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
        backend = "nccl" if on_cuda else "gloo"
        if on_cuda:
            torch.cuda.set_device(local_rank)
        # Rank 0 may score between two trainings while the others wait (bench run).
        dist.init_process_group(backend, timeout=datetime.timedelta(hours=6))
        # Leave the group before the interpreter tears down gloo's threads (else: abort).
        atexit.register(_leave)
    return World(rank, size, local_rank, dist.get_backend())


def finish_and_exit(world: World) -> None:
    """End a torchrun process that finished its work: leave the process group together (wait
    for every rank, then destroy it: gloo aborts a process whose group is torn down while
    another rank still talks to it), flush the output and leave with status 0 without the
    interpreter's teardown (gloo's threads sometimes abort it after the group is gone:
    "terminate called without an active exception", measured in about 1 of 15 two-rank runs
    here). Does nothing in a single process."""
    if not world.distributed:
        return
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _leave() -> None:
    """At exit (also after an error, when :func:`finish` did not run): destroy the group."""
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def device_for(world: World, device: str | None) -> str | None:
    """The device of this rank: its own GPU (``cuda:LOCAL_RANK``) when the run is on CUDA."""
    if world.backend == "nccl" and (device is None or device == "cuda"):
        return f"cuda:{world.local_rank}"
    return device


def shard(items: Sequence[T], world: World) -> list[T]:
    """Rank ``r``'s part of ``items``: ``items[r::N]`` after padding with the first items to a
    multiple of N, so every rank has as many (as torch's ``DistributedSampler`` pads; all of
    them in a single process)."""
    if not world.distributed:
        return list(items)
    padded = -(-len(items) // world.size) * world.size
    order = [i % len(items) for i in range(padded)] if items else []
    return [items[i] for i in order[world.rank::world.size]]


def agree_steps(steps: int, world: World) -> int:
    """The fewest steps any rank planned (a loop that sizes its epochs from its shard's clips
    or windows would otherwise run a step the others do not join)."""
    if not world.distributed:
        return steps
    count = torch.tensor([steps], dtype=torch.int64)
    torch.distributed.all_reduce(count, op=torch.distributed.ReduceOp.MIN)
    return int(count.item())


def rank_seed(seed: int, world: World) -> int:
    """Rank ``r``'s seed: the run seed on rank 0, else drawn from ``SeedSequence([seed, r])``."""
    if world.rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, world.rank]).generate_state(1)[0] % 2**31)


def barrier(world: World) -> None:
    """Wait for every rank (nothing in a single process)."""
    if world.distributed:
        torch.distributed.barrier()


@contextlib.contextmanager
def rank_zero_first(world: World) -> Iterator[None]:
    """Rank 0 runs the block first, the others after it (so they find what it cached:
    the corpus, the prepared clips)."""
    if not world.is_main:
        barrier(world)
    yield
    if world.is_main:
        barrier(world)


def provenance(world: World, log: dict[str, Any], checked: bool) -> dict[str, Any]:
    """What a distributed training records: world size, backend, per-rank batch (the
    ``batch`` a training ``log`` gives at its top level, in its ``config`` or its ``plan``) and
    effective batch, and whether :func:`same_on_all` checked the ranks' weights (``checked``;
    empty in a single process, so single-process records are unchanged)."""
    if not world.distributed:
        return {}
    per_rank_batch = _batch_in(log)
    effective = None if per_rank_batch is None else per_rank_batch * world.size
    return {"distributed": {"world_size": world.size, "backend": world.backend,
                            "per_rank_batch": per_rank_batch, "effective_batch": effective,
                            "batchnorm": "per-rank statistics, rank 0's running stats kept",
                            "weights_checked_identical_on_ranks": checked}}


def _batch_in(log: dict[str, Any]) -> int | None:
    for where in (log, log.get("config") or {}, log.get("plan") or {}):
        if isinstance(where.get("batch"), int):
            return where["batch"]
    return None


# ---------------------------------------------------------------------------------------------
# DDP's arithmetic for any training loop


def _broadcast(tensors: Sequence[torch.Tensor]) -> None:
    for tensor in tensors:
        torch.distributed.broadcast(tensor.data, src=0)


def _average_gradients(params: Sequence[torch.Tensor], size: int) -> None:
    """Average ``params``' gradients over the ranks. A parameter that has a gradient on any
    rank gets the average on every rank (a missing gradient counts as zeros there)."""
    if not params:
        return
    dist = torch.distributed
    device = params[0].device
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.int32, device=device)
    dist.all_reduce(has, op=dist.ReduceOp.MAX)
    chosen = [p for p, flag in zip(params, has.tolist(), strict=True) if flag]
    for p in chosen:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for p in chosen:
        groups.setdefault((p.grad.device, p.grad.dtype), []).append(p)
    for members in groups.values():
        flat = torch.cat([p.grad.reshape(-1) for p in members])
        dist.all_reduce(flat)
        flat /= size
        offset = 0
        for p in members:
            n = p.grad.numel()
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
            offset += n


@contextlib.contextmanager
def data_parallel(world: World) -> Iterator[None]:
    """Inside the block, every module's first forward broadcasts its parameters and buffers
    from rank 0, every optimiser step averages the gradients over the ranks first, and every
    BatchNorm forward in training mode ends by broadcasting rank 0's running statistics (see
    the module docstring). Nothing happens in a single process."""
    if not world.distributed:
        yield
        return
    seen: set[int] = set()

    def first_forward(module: nn.Module, args: Any) -> None:
        if id(module) in seen:
            return
        members = list(module.modules())
        seen.update(id(m) for m in members)
        _broadcast(list(module.parameters()) + list(module.buffers()))

    def after_forward(module: nn.Module, args: Any, output: Any) -> None:
        if (isinstance(module, nn.modules.batchnorm._BatchNorm) and module.training
                and module.track_running_stats):
            _broadcast(list(module.buffers(recurse=False)))

    def before_step(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        _average_gradients(params, world.size)

    from torch.nn.modules.module import (
        register_module_forward_hook,
        register_module_forward_pre_hook,
    )
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    handles = [register_module_forward_pre_hook(first_forward),
               register_module_forward_hook(after_forward),
               register_optimizer_step_pre_hook(before_step)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# ---------------------------------------------------------------------------------------------
# Same weights on every rank


def tensor_digest(obj: Any) -> str:
    """sha256 of every tensor in ``obj`` (a module, a state dict, nested dicts/lists), keys
    sorted: equal digests mean equal weights, bit for bit."""
    digest = hashlib.sha256()

    def visit(item: Any, where: str) -> None:
        if isinstance(item, nn.Module):
            visit(item.state_dict(), where)
        elif isinstance(item, torch.Tensor):
            tensor = item.detach().cpu().contiguous()
            digest.update(f"{where}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(item, dict):
            for key in sorted(item, key=str):
                visit(item[key], f"{where}/{key}")
        elif isinstance(item, list | tuple):
            for i, value in enumerate(item):
                visit(value, f"{where}[{i}]")

    visit(obj, "")
    return digest.hexdigest()


def same_on_all(digest: str, world: World, what: str) -> None:
    """RuntimeError unless every rank passed the same ``digest`` (of ``what``'s weights)."""
    if not world.distributed:
        return
    digests: list[Any] = [None] * world.size
    torch.distributed.all_gather_object(digests, digest)
    differing = [rank for rank, d in enumerate(digests) if d != digests[0]]
    if differing:
        raise RuntimeError(f"{what}: ranks {differing} ended training with weights that differ "
                           f"from rank 0's")
