"""The training pattern the generators (:mod:`bench.generators`) and the harness-trained judges
(:mod:`bench.judges`) share.

- A *budget* is a named, frozen dataclass of sizes and schedule (``smoke``, ``demo``,
  ``paper``); :func:`budget_plan` looks one up by name with the same error everywhere.
- The step loop is :func:`run_steps`: ``step(i)`` for ``i = 1..steps`` (each returns its
  losses), stopping early once ``max_seconds`` have passed (checked before each step), with a
  :class:`TrainLog` of what ran; ``bench profile`` collects the logs of every loop run inside
  :func:`recording_training`.
- Learning-rate schedules: :func:`log_linear_lr` (from ``lr`` at the first step to
  ``lr_final`` at the last), :class:`StepDecay` (multiply by a factor every so many steps),
  :func:`set_learning_rate`.
- :func:`state_snapshot` keeps the weights of the best validation so far;
  :func:`progress_range` shows a bar while training clips load.

None of these draws random numbers or changes an operation of the loops that use them: a
loop moved onto them trains the same weights (checked weight for weight when the loops were
moved here). Users: every generator's training stages (:mod:`bench.generators`), and the
judges' training (:mod:`bench.judges.syncnet_train`, :mod:`bench.judges.emotion_classifier`,
:mod:`bench.judges.au_classifier`), each of which runs its steps through :func:`run_steps`.

What stays with its owner, and why:

- each budget dataclass: the fields are the model's or judge's own (a network's sizes, a
  contrastive margin, AU class-weight floors), so only the lookup is shared;
- the emotion classifier's StepLR (``torch.optim.lr_scheduler.StepLR``, as EmoGen's script):
  it counts epochs and decays *after* an epoch's last step, so its log's ``final_lr`` shows a
  decay that falls on the last step; :class:`StepDecay` decays before the next step and would
  leave it out;
- the validation of each model (lower-half L1, full-frame L1, MRM, offset accuracy): each is
  its paper's measure, and the loops differ in what they generate.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from bench.core import distributed

Plan = TypeVar("Plan")


def budget_plan(budgets: Mapping[str, Plan], name: str, owner: str = "") -> Plan:
    """``budgets[name]``, or ValueError naming the budgets there are (``owner``: who asks)."""
    if name not in budgets:
        prefix = f"{owner}: " if owner else ""
        raise ValueError(f"{prefix}unknown budget {name!r}; choose one of "
                         f"{', '.join(budgets)}")
    return budgets[name]


# ---------------------------------------------------------------------------------------------
# Learning rates


def log_linear_lr(lr: float, lr_final: float, step: int, total: int) -> float:
    """Log-linear decay from ``lr`` (step 1) to ``lr_final`` (step ``total``)."""
    if total <= 1:
        return lr
    frac = (step - 1) / (total - 1)
    return float(lr * (lr_final / lr) ** frac)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Every parameter group of ``optimizer`` at ``lr``."""
    for group in optimizer.param_groups:
        group["lr"] = lr


@dataclass
class StepDecay:
    """Multiply each optimiser's learning rate by its factor every ``every`` steps: called with
    the step number before each step, it decays before steps ``every + 1``, ``2 every + 1``,
    ... (an optimiser of None is skipped)."""

    every: int
    factors: list[tuple[torch.optim.Optimizer | None, float]]

    @classmethod
    def every_epochs(cls, epochs: float, items: int, items_per_step: int,
                     factors: Iterable[tuple[torch.optim.Optimizer | None, float]]
                     ) -> StepDecay:
        """Decay every ``epochs`` epochs, an epoch being as many steps as it takes to show
        ``items`` (e.g. training frames) at ``items_per_step`` a step."""
        epoch = max(1, math.ceil(items / items_per_step))
        return cls(max(1, round(epochs * epoch)), list(factors))

    def __call__(self, step: int) -> None:
        if step > 1 and (step - 1) % self.every == 0:
            for optimizer, factor in self.factors:
                if optimizer is None:
                    continue
                for group in optimizer.param_groups:
                    group["lr"] *= factor


def progress_range(n: int, enabled: bool, desc: str, unit: str = "clip") -> Iterable[int]:
    """``range(n)``, behind a tqdm bar when ``enabled`` (loading training clips)."""
    if not enabled:
        return range(n)
    from tqdm import tqdm

    return tqdm(range(n), desc=desc, unit=unit, leave=False)


def state_snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of ``module``'s state dict (to restore the best weights later)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# ---------------------------------------------------------------------------------------------
# The step loop


@dataclass
class TrainLog:
    """What a training run did (plain JSON via :meth:`as_dict`)."""

    steps: int = 0
    seconds: float = 0.0
    stopped_early: bool = False
    first: dict[str, float] | None = None
    last: dict[str, float] | None = None
    desc: str = "train"
    step_seconds: list[float] = field(default_factory=list)
    """Wall-clock seconds of each step (the GPU synchronised first when one was used)."""

    @property
    def median_step_seconds(self) -> float | None:
        """Median step time leaving out the first step (warm-up) when there are more."""
        times = self.step_seconds[1:] if len(self.step_seconds) > 1 else self.step_seconds
        return float(np.median(times)) if times else None

    def as_dict(self) -> dict[str, Any]:
        median = self.median_step_seconds
        return {"steps": self.steps, "seconds": round(self.seconds, 2),
                "median_step_s": None if median is None else round(median, 4),
                "stopped_early": self.stopped_early, "losses_first": self.first,
                "losses_last": self.last}


_RECORDERS: list[list[TrainLog]] = []


@contextlib.contextmanager
def recording_training() -> Iterator[list[TrainLog]]:
    """Collect the :class:`TrainLog` of every :func:`run_steps` call made inside the block
    (``bench profile`` uses it to time each training stage of an adapter's ``fit``)."""
    logs: list[TrainLog] = []
    _RECORDERS.append(logs)
    try:
        yield logs
    finally:
        _RECORDERS.remove(logs)


def _synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def run_steps(step: Callable[[int], Mapping[str, float]], steps: int,
              max_seconds: float | None = None, progress: bool = False,
              desc: str = "train", average: int = 20, started: float | None = None
              ) -> TrainLog:
    """Call ``step(i)`` for ``i = 1..steps`` (each returns its losses as floats), stopping
    early once ``max_seconds`` have passed since ``started`` (a ``time.perf_counter()``
    reading; default: the call). The log keeps the losses averaged over the first and last
    ``average`` steps; its ``seconds`` count from the call."""
    world = distributed.current()
    steps = distributed.agree_steps(steps, world)
    progress = progress and world.is_main
    bar: Any = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc=desc, unit="step", leave=False)
    history: list[dict[str, float]] = []
    log = TrainLog(desc=desc)
    for recorder in _RECORDERS:
        recorder.append(log)
    start = time.perf_counter()
    origin = start if started is None else started
    try:
        for i in range(1, steps + 1):
            if max_seconds is not None and time.perf_counter() - origin > max_seconds:
                log.stopped_early = True
                break
            began = time.perf_counter()
            history.append({k: float(v) for k, v in step(i).items()})  # float() waits for the GPU
            _synchronize()
            log.step_seconds.append(time.perf_counter() - began)
            log.steps = i
            if bar is not None:
                bar.update(1)
                if i % 10 == 0:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in history[-1].items()})
    finally:
        if bar is not None:
            bar.close()
    log.seconds = time.perf_counter() - start

    def mean(rows: list[dict[str, float]]) -> dict[str, float] | None:
        if not rows:
            return None
        return {k: float(np.mean([r[k] for r in rows if k in r])) for k in rows[0]}

    log.first = mean(history[:average])
    log.last = mean(history[-average:])
    return log
