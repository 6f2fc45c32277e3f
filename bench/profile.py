"""``bench profile``: time a few training steps of a generator at a budget's sizes.

For each model, ``fit`` runs with every training stage shortened to ``steps`` steps and no
time limit (:meth:`TorchAdapter.profile_options`), on the first few prepared training clips
of a dataset. Each stage's :class:`~bench.core.training.TrainLog` gives the median step
time (the first, warm-up step left out); stages that train the generator on generated frames
also give frames per second (:meth:`TorchAdapter.frames_per_step`). Peak memory is the CUDA
allocator's peak on a GPU, and on a CPU the rise of the process's resident memory over its
level before ``fit``, sampled every 10 ms (Linux ``/proc``; unavailable elsewhere).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.adapters.torch_base import TorchAdapter
from bench.core.devices import resolve_device
from bench.core.training import recording_training
from bench.data.clip import Clip


def _rss_bytes() -> int | None:
    """Resident memory of this process (Linux), else None."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak memory while the block runs: CUDA allocator peak on a GPU; on a CPU the peak rise
    of resident memory above its level at the start, sampled by a thread. The CPU figure is a
    lower bound: memory the allocator reuses from what the process already holds does not
    rise (``bench profile`` is most exact as the first thing a process does)."""

    def __init__(self, device: torch.device, interval: float = 0.01) -> None:
        self.device, self.interval = device, interval
        self.kind = "cuda max_memory_allocated" if device.type == "cuda" else "CPU RSS rise"
        self.peak_bytes: int | None = None
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        self._start = _rss_bytes()
        self._high = self._start
        if self._start is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            now = _rss_bytes()
            if now is not None and self._high is not None:
                self._high = max(self._high, now)

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = int(torch.cuda.max_memory_allocated(self.device))
            return
        if self._start is None:
            return
        self._stop.set()
        self._thread.join()
        now = _rss_bytes() or 0
        self.peak_bytes = int(max(self._high or 0, now) - self._start)


def profile_training(cls: type[TorchAdapter], train: Sequence[Clip], budget: str, steps: int,
                     device: str | None = None, seed: int = 0,
                     options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``cls``'s ``fit`` at ``budget`` with ``steps`` steps per stage on ``train`` and
    return the timing of each stage, frames per second and peak memory. ``options`` (config
    fields) change the budget's config further."""
    if not issubclass(cls, TorchAdapter):
        raise ValueError(f"{cls.name}: bench profile needs a TorchAdapter (it times the "
                         "training stages of run_steps)")
    if steps < 2:
        raise ValueError("profile at least 2 steps (the first is left out as warm-up)")
    probe = cls(seed=seed, device=device)
    fields = {f.name for f in dataclasses.fields(probe.config_for(budget))}
    unknown = sorted(set(options or {}) - fields)
    if unknown:
        raise ValueError(f"{cls.name}: no config field {', '.join(unknown)}; fields: "
                         f"{', '.join(sorted(fields))}")
    adapter = cls(seed=seed, device=device, **{**probe.profile_options(steps), **(options or {})})
    torch_device = resolve_device(device)
    cfg = adapter.config_for(budget)
    frames = adapter.frames_per_step(cfg, train)
    start = time.perf_counter()
    with PeakMemory(torch_device) as memory, recording_training() as logs:
        adapter.fit(train, None, budget)
    stages = []
    for log in logs:
        median = log.median_step_seconds
        generator_stage = log.desc not in cls.side_stages
        stages.append({
            "stage": log.desc, "steps": log.steps,
            "median_step_s": None if median is None else round(median, 4),
            "frames_per_step": frames if generator_stage else None,
            "frames_per_s": (round(frames / median, 2)
                             if generator_stage and median else None)})
    return {"model": cls.name, "budget": budget, "device": str(torch_device),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "size": getattr(cfg, "size", None), "batch": getattr(cfg, "batch", None),
            "train_clips": len(train), "options": dict(options or {}), "stages": stages,
            "fit_s": round(time.perf_counter() - start, 2),
            "peak_memory_mib": (None if memory.peak_bytes is None
                                else round(memory.peak_bytes / 2**20, 1)),
            "peak_memory_kind": memory.kind}


PROFILE_HEADER = ("| Model | Budget | Device | Stage | Steps | s/step (median) | frames/step | "
                  "frames/s | Peak memory (MiB) |\n|---|---|---|---|---:|---:|---:|---:|---:|")


def profile_table(rows: Sequence[dict[str, Any]], header: bool = True) -> str:
    """Markdown table: one line per model and stage (``header=False``: the lines only)."""
    lines = [PROFILE_HEADER] if header else []

    def show(value: Any) -> str:
        return "—" if value is None else str(value)

    for row in rows:
        for stage in row["stages"]:
            lines.append(
                f"| {row['model']} | {row['budget']} | {row['device']} | {stage['stage']} | "
                f"{stage['steps']} | {show(stage['median_step_s'])} | "
                f"{show(stage['frames_per_step'])} | {show(stage['frames_per_s'])} | "
                f"{show(row['peak_memory_mib'])} ({row['peak_memory_kind']}) |")
    return "\n".join(lines)
