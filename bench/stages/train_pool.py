"""Stage 2a: the judges and models that still have to be trained, trained side by side in
worker processes on a CPU with cores to spare (issue 13).

Every training job runs on the fixed training thread count
(`bench.core.devices.train_threads`, 2 by default), so a checkpoint does not depend on how many
jobs run at once or on which process ran it. With ``cores // threads`` of 2 or more (a 4-core
CPU and up at the default; ``--workers`` caps the cores used) that many jobs run together
instead of taking turns. On the 2-core box the default gives one job at a time: the stage is
skipped and the run trains as before (`bench.core.devices.DEFAULT_TRAIN_THREADS` says why).

The stage only fills the caches: each worker opens the run's workspace, calls the same
`bench.stages.judges.train_judge` or `bench.stages.train.fit_or_load` the runner calls, and
leaves the judge or checkpoint in the cache under the same key; the runner then finds them
there. A job that fails in a worker is not reported here: the runner trains it again in its
own process and reports the error there, once, as without this stage. The stage is skipped on
a GPU (one device: jobs take turns there), under torchrun (the ranks already share the work),
and when at most one job is left.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from bench.adapters import Adapter, adapter_class
from bench.core import distributed
from bench.core.devices import train_threads
from bench.stages.judges import judges_to_train, train_judge
from bench.stages.train import fit_or_load, is_trained
from bench.stages.workers import cpu_cores, init_worker
from bench.stages.workspace import RunConfig, Workspace

Job = tuple[str, str, str]
"""``(kind, label, target)``: ``("judge", name, name)`` or ``("model", name, "module:Class")``."""


def importable_target(cls: type[Adapter]) -> str | None:
    """``module:Class`` that a fresh interpreter can import ``cls`` from (None for classes made
    inside a function)."""
    if "<locals>" in cls.__qualname__ or cls.__module__ == "__main__":
        return None
    return f"{cls.__module__}:{cls.__qualname__}"


def pending_jobs(ws: Workspace, models: list[type[Adapter]]) -> list[Job]:
    """The judges the run's metrics need and lack, then the models without a cached
    checkpoint (those a worker process can import)."""
    jobs: list[Job] = [("judge", name, name)
                       for name, untrained in judges_to_train(ws).items() if untrained]
    for cls in models:
        target = importable_target(cls)
        if cls.trainable and target is not None and not is_trained(ws, cls):
            jobs.append(("model", cls.name, target))
    return jobs


def train_workers(ws: Workspace) -> int:
    """How many training processes this run uses: the cores (at most ``--workers``) divided by
    the training thread count; 1 on a GPU or under torchrun."""
    if str(ws.device).startswith("cuda") or distributed.current(ws.device).distributed:
        return 1
    cores = min(ws.cfg.workers or cpu_cores(), cpu_cores())
    return max(1, cores // train_threads())


def train_in_parallel(ws: Workspace, models: list[type[Adapter]]) -> list[str]:
    """Train the pending judges and models (`pending_jobs`) in `train_workers` processes;
    returns the labels of the jobs that finished. Does nothing when fewer than two jobs or
    workers are there."""
    workers = train_workers(ws)
    if workers < 2:
        return []
    ws.prepare("train")
    ws.prepare("val")
    jobs = pending_jobs(ws, models)
    if len(jobs) < 2:
        return []
    workers = min(workers, len(jobs))
    ws.echo(f"training {len(jobs)} judges and models side by side in {workers} processes of "
            f"{train_threads()} threads: "
            + ", ".join(label if kind == "model" else f"judge {label}"
                        for kind, label, _ in jobs))
    cfg = dataclasses.replace(ws.cfg, workers=1, progress=False)
    done: list[str] = []
    start = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=init_worker, initargs=(train_threads(),)) as pool:
        running: dict[Future, Job] = {pool.submit(train_job, cfg, job): job for job in jobs}
        bar = _bar(len(jobs), ws.cfg.progress)
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                _, label, _ = running.pop(future)
                if future.exception() is None:
                    done.append(label)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str("left: " + ", ".join(j[1] for j in running.values()))
        if bar is not None:
            bar.close()
    ws.echo(f"trained {len(done)} of {len(jobs)} in {time.perf_counter() - start:.0f} s")
    return done


def train_job(cfg: RunConfig, job: Job) -> None:
    """In a worker process: train one judge or model into the cache (messages are dropped;
    the runner shows what it loads, and reports a failure when it trains the job again)."""
    kind, _, target = job
    ws = Workspace(cfg, echo=lambda line: None)
    try:
        if kind == "judge":
            train_judge(ws, target)
        else:
            cls = adapter_class(target)
            fit_or_load(ws, cls, ws.run_dir / cls.name)
    finally:
        ws.close()


def _bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="training (judges and models)", unit="job", leave=False)
