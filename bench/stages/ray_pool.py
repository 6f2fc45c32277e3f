"""Per-clip scoring on a Ray cluster (issue 19; SPEC 7: ``--executor ray``).

`RayScoringPool` offers `bench.stages.workers.ScoringPool`'s interface (``map``, ``close``,
``workers``, ``threads``) with one Ray actor per worker instead of one process: each actor
builds the job's metrics (and loads its judges) once, asks Ray for one CPU (decode, dlib) and,
when the scoring device is CUDA, one GPU, and is restarted by Ray when its worker is lost, its
unfinished calls retried (``max_restarts``, ``max_task_retries``). The parent keeps the records
exactly as with local processes: it sends only the clips whose metrics are missing, gets each
clip's entries back and writes the content-keyed record itself, so a clip's record and its
per-clip states (``states/<metric>/<clip>.npz``, written by whoever scored the clip, under the
same path) do not depend on where it was scored. Set-level metrics (FID) are reduced later,
in the parent, from those per-clip states in clip order: no shard, rank or actor enters them.

``ray`` is an optional extra (``pip install 'talkbench[ray]'``), imported only here, and only
when this executor is chosen. The workers must reach the run's files (runs, cache, prepared
clips) under the same paths: a shared filesystem on a multi-node cluster.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any

MAX_RETRIES = 3
"""Restarts of a lost actor, and retries of the calls it held (Ray's own fault tolerance)."""

ENV_PREFIX = "TALKBENCH_"
"""Environment variables the actors receive from the driver (judge weights, cache folder)."""


def import_ray() -> Any:
    """The ``ray`` module, or ImportError in one line saying how to install it."""
    try:
        import ray
    except ImportError as err:
        raise ImportError("--executor ray needs Ray: pip install 'talkbench[ray]' (or "
                          "'ray>=2.9')") from err
    return ray


def on_gpu(device: str | None) -> bool:
    """Whether scoring runs on CUDA (``None``: CUDA when this process sees a GPU)."""
    if device is None:
        import torch

        return torch.cuda.is_available()
    return str(device).startswith("cuda")


class _Actor:
    """One scoring worker: metrics built once per job (`bench.stages.workers._run_in_worker`)."""

    def __init__(self, threads: int, cwd: str) -> None:
        from bench.stages.workers import init_worker

        init_worker(threads)
        if os.path.isdir(cwd):  # relative run paths mean the same folders as in the driver
            os.chdir(cwd)

    def run(self, fn: Callable, job: Any, item: Any) -> Any:
        from bench.stages.workers import _run_in_worker

        return _run_in_worker(fn, job, item)


class RayScoringPool:
    """``workers`` Ray actors that score clips (started on first use, kept until `close`).

    `map` runs ``fn(job, metrics, item)`` for each item on the actors, each actor holding at
    most one clip at a time (the next clip goes to whichever actor is free), and yields
    ``(item, result)`` in the order given. ``address``: an existing cluster
    (``ray.init(address=...)``; ``"auto"`` finds a local one); None starts a local instance
    with ``workers`` CPUs (shut down by `close`)."""

    def __init__(self, workers: int | None, device: str | None = None,
                 address: str | None = None, max_retries: int = MAX_RETRIES) -> None:
        self.address = address
        self.gpus = 1 if on_gpu(device) else 0
        self.max_retries = max_retries
        self.workers = max(1, int(workers)) if workers else 0  # 0: known once connected
        self.threads = 1  # torch threads per actor (one CPU each)
        self._actors: list[Any] = []
        self._started_ray = False

    def _connect(self) -> Any:
        ray = import_ray()
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, logging_level="WARNING",
                         log_to_driver=False)
            else:
                from bench.stages.workers import cpu_cores

                cpus = self.workers or cpu_cores()
                ray.init(num_cpus=cpus, num_gpus=None if self.gpus else 0,
                         include_dashboard=False, logging_level="WARNING",
                         log_to_driver=False)
            self._started_ray = True
        if not self.workers:  # one actor per CPU (per GPU when scoring on CUDA) of the cluster
            resources = ray.cluster_resources()
            self.workers = max(1, int(resources.get("GPU" if self.gpus else "CPU", 1)))
        return ray

    def _pool(self) -> list[Any]:
        if not self._actors:
            ray = self._connect()
            env = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
            actor = ray.remote(_Actor).options(
                num_cpus=1, num_gpus=self.gpus, max_restarts=self.max_retries,
                max_task_retries=self.max_retries, runtime_env={"env_vars": env})
            self._actors = [actor.remote(self.threads, os.getcwd()) for _ in range(self.workers)]
        return self._actors

    def map(self, fn: Callable[[Any, list, Any], Any], job: Any, items: list
            ) -> Iterator[tuple[Any, Any]]:
        """``(item, fn(job, metrics, item))`` for each item, in the order given; an exception
        raised on an item is raised here when its turn comes."""
        if not items:
            return
        ray = self._connect()
        actors = self._pool()
        job_ref = ray.put(actor_job(job, self.gpus))
        free = list(actors)
        pending: dict[Any, tuple[int, Any]] = {}  # object ref -> (index, actor)
        done: dict[int, Any] = {}  # index -> object ref of a finished clip
        queue = iter(enumerate(items))
        following = 0
        try:
            while following < len(items):
                for actor in list(free):  # each free actor gets the next clip
                    index, item = next(queue, (None, None))
                    if index is None:
                        break
                    free.remove(actor)
                    pending[actor.run.remote(fn, job_ref, item)] = (index, actor)
                if following not in done:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    for ref in ready:
                        index, actor = pending.pop(ref)
                        done[index] = ref
                        free.append(actor)
                    continue
                yield items[following], ray.get(done.pop(following))
                following += 1
        finally:
            for ref in pending:
                try:
                    ray.cancel(ref)
                except Exception:  # noqa: BLE001 - best effort: the actors are killed on close
                    pass

    def close(self) -> None:
        """Stop the actors (and the local Ray instance this pool started)."""
        if self._actors:
            ray = import_ray()
            for actor in self._actors:
                ray.kill(actor)
            self._actors = []
        if self._started_ray:
            import_ray().shutdown()
            self._started_ray = False

    def __enter__(self) -> RayScoringPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def actor_job(job: Any, gpus: int) -> Any:
    """``job`` as an actor sees it: Ray gives a GPU actor exactly one visible device, so a
    ``cuda:N`` device becomes ``cuda`` there (a job without a ``device`` field is unchanged)."""
    device = getattr(job, "device", None)
    if gpus and dataclasses.is_dataclass(job) and str(device).startswith("cuda:"):
        return dataclasses.replace(job, device="cuda")
    return job
