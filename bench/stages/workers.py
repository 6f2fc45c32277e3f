"""Worker processes for the scoring stage and `bench score` (issue 13).

Scoring one clip is CPU-bound and much of it holds the GIL (dlib's landmarks and face chips),
so clips are scored in worker *processes*: `ScoringPool` spawns ``workers`` of them on first
use and keeps them for the whole run (interpreters and judges load once), each running with
``cores // workers`` torch threads (no oversubscription on small tensors) and one OpenCV
thread. ``workers`` 1 scores in this process. The default (`default_workers`) is one worker per
core on the CPU and one on a GPU (the judges batch there instead).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

Registration = tuple[str, str, str]
"""``(registry, name, "module:attr")`` of a metric or judge the parent process knows."""


def registrations(metric_names: tuple[str, ...]) -> tuple[Registration, ...]:
    """The registry entries behind ``metric_names`` and their judges, for worker processes: a
    metric or judge registered at run time in this process (a plugin, a script, a test) is
    unknown to a freshly spawned interpreter until `ensure_registered` adds it there."""
    from bench.judges.store import JUDGES
    from bench.metrics import METRICS

    out: list[Registration] = []
    for name in metric_names:
        judge = getattr(METRICS.get(name), "judge_name", None)  # an unknown name says so here
        out.append(("metric", name, METRICS.target(name)))
        if judge and judge in JUDGES:
            out.append(("judge", judge, JUDGES.target(judge)))
    return tuple(out)


def ensure_registered(entries: tuple[Registration, ...]) -> None:
    """Register in this process each entry it lacks (see `registrations`)."""
    from bench.judges.store import JUDGES
    from bench.metrics import METRICS

    for kind, name, target in entries:
        registry = METRICS if kind == "metric" else JUDGES
        if name not in registry:
            registry.add(name, target)


def cpu_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def default_workers(device: str | None) -> int:
    """One scoring worker per core on the CPU; one (this process) when a GPU scores."""
    import torch

    on_gpu = str(device).startswith("cuda") or (device is None and torch.cuda.is_available())
    return 1 if on_gpu else cpu_cores()


Job = TypeVar("Job", bound=Hashable)
Item = TypeVar("Item")
Result = TypeVar("Result")

_WORKER_METRICS: dict[Any, list] = {}


def init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - opencv is a dependency
        pass


def _metrics_key(job: Any) -> Any:
    """What a job's metric objects depend on (``job.metrics_key`` when it has one: jobs of
    different rows share their metrics, so judges load once per worker and run)."""
    return getattr(job, "metrics_key", job)


def _run_in_worker(fn: Callable[[Any, list, Any], Any], job: Any, item: Any) -> Any:
    key = _metrics_key(job)
    if key not in _WORKER_METRICS:  # metrics (and their judges) load once per worker
        _WORKER_METRICS[key] = job.build_metrics()
    return fn(job, _WORKER_METRICS[key], item)


class ScoringPool:
    """``workers`` processes that score clips (spawned on first use, kept for the whole run so
    interpreters and judges load once), or this process when ``workers`` is 1.

    `map` runs ``fn(job, metrics, item)`` for each item, ``metrics`` being
    ``job.build_metrics()`` made once per process and job (``fn`` must be a module-level
    function, ``job`` and the items picklable)."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))
        self.threads = max(1, cpu_cores() // self.workers)
        self._executor: ProcessPoolExecutor | None = None
        self._local: dict[Any, list] = {}

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            import multiprocessing

            # spawn, not fork: a forked child of a process whose OpenMP/torch threads already ran
            # can hang in its first parallel region.
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=init_worker, initargs=(self.threads,))
        return self._executor

    def map(self, fn: Callable[[Job, list, Item], Result], job: Job, items: list[Item]
            ) -> Iterator[tuple[Item, Result]]:
        """``(item, fn(job, metrics, item))`` for each item, in the order given; an exception
        raised on an item is raised here when its turn comes."""
        if self.workers == 1 or len(items) <= 1:
            key = _metrics_key(job)
            if key not in self._local:
                self._local[key] = job.build_metrics()  # type: ignore[attr-defined]
            for item in items:
                yield item, fn(job, self._local[key], item)
            return
        pool = self._pool()
        futures: list[tuple[Item, Future]] = [
            (item, pool.submit(_run_in_worker, fn, job, item)) for item in items]
        try:
            for item, future in futures:
                yield item, future.result()
        finally:
            for _, future in futures:
                future.cancel()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._local.clear()

    def __enter__(self) -> ScoringPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


