"""Stage 3: a model fitted on the split's train part, or loaded from its checkpoint.

``runs/<dataset>/<split>/<model>/checkpoint/`` is one cached folder (`bench.core.cache`)
whose key names the adapter's config, the budget, the split and version, the cache keys of
the training clips, and what else the adapter's training data depends on (`Adapter.data_key`,
e.g. the OpenFace CSVs au-tcsan reads its AU labels from): a change in any of them retrains.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from bench.adapters import Adapter
from bench.core import cache, distributed
from bench.core.devices import training_threads
from bench.data.clip import ClipRef
from bench.provenance import stable_hash
from bench.stages.workspace import Workspace


@dataclass
class Trained:
    """A model ready to generate: the adapter, its training key and its training log."""

    adapter: Adapter
    key: str
    log: dict


def fit_or_load(ws: Workspace, cls: type[Adapter], model_dir: Path,
                options: dict | None = None) -> Trained:
    """The model trained on the split's train part (``options``: the adapter's keyword
    options, e.g. ``steps``), from its checkpoint when one was cached for the same key. Under
    torchrun every rank trains on its shard of the clips with its own seed and rank 0 writes
    the checkpoint (:mod:`bench.core.distributed`)."""
    world = distributed.current(ws.device)
    adapter = make_adapter(ws, cls, options)
    train_refs = ws.prepare("train") if cls.trainable else []
    val_refs = ws.prepare("val") if cls.trainable else []
    key = training_key(ws, adapter, train_refs)
    checkpoint = model_dir / "checkpoint"
    distributed.barrier(world)  # every rank reads the cache as rank 0 left it
    done = cache.read_folder(checkpoint, key, ws.echo if world.is_main else None)
    if done is not None:
        adapter.load(checkpoint)
        return Trained(adapter, key, done.get("log", {}))
    if cls.trainable and not train_refs:
        raise ValueError("no prepared training clips")
    shard = distributed.shard(train_refs, world)
    ws.echo(f"{cls.name}: training ({ws.cfg.budget} budget, {len(train_refs)} clips"
            + (f", {len(shard)} on each of {world.size} ranks" if world.distributed else "")
            + ")")
    start = time.perf_counter()
    adapter.seed = distributed.rank_seed(ws.cfg.seed, world)  # the run seed on rank 0
    with distributed.data_parallel(world), training_threads() as threads:
        log = adapter.fit(ws.lazy(shard), ws.lazy(val_refs) if val_refs else None,
                          ws.cfg.budget) or {}
    nets = getattr(adapter, "nets", None)
    if nets is not None:
        distributed.same_on_all(distributed.tensor_digest(nets), world, cls.name)
    log = {**log, "wall_s": round(time.perf_counter() - start, 3), "train_threads": threads,
           **distributed.provenance(world, log, nets is not None)}

    def fill(folder: Path) -> dict:
        adapter.save(folder)
        return {"model": cls.name, "log": log}

    if world.is_main:
        cache.write_folder(checkpoint, key, fill)
    distributed.barrier(world)  # the checkpoint is in place for every rank
    return Trained(adapter, key, log)


def make_adapter(ws: Workspace, cls: type[Adapter], options: dict | None = None) -> Adapter:
    """``cls`` made for this run: its seed, device, run options and ``options``."""
    adapter = cls(seed=ws.cfg.seed, device=ws.device,
                  **{**run_options(ws, cls), **(options or {})})
    adapter.echo = ws.echo
    return adapter


def training_key(ws: Workspace, adapter: Adapter, train_refs: list[ClipRef]) -> str:
    """The checkpoint's cache key (see the module docstring)."""
    data = adapter.data_key([r.clip_id for r in train_refs])
    return stable_hash({
        "adapter": adapter.config(), "budget": ws.cfg.budget,
        "budget_config": _budget_config(adapter, ws.cfg.budget),
        "split": [ws.split.name, ws.split.version],
        "train": [ws.clip_key(r) for r in train_refs],
        **({"data": data} if data else {}),  # absent: the keys of before stay valid
        **ws.training_facts(),
    })


def is_trained(ws: Workspace, cls: type[Adapter]) -> bool:
    """True when ``cls``'s checkpoint for this run is cached (nothing to train)."""
    adapter = make_adapter(ws, cls)
    train_refs = ws.prepare("train") if cls.trainable else []
    key = training_key(ws, adapter, train_refs)
    return cache.read_folder(ws.run_dir / cls.name / "checkpoint", key) is not None


def run_options(ws: Workspace, cls: type[Adapter]) -> dict[str, str]:
    """The run-wide inputs ``cls`` takes (`Adapter.run_options`) that this run has: the
    OpenFace CSV folder of ``--openface`` (`RunConfig.openface`) for models that learn from AU
    labels."""
    have = {"openface": ws.cfg.openface}
    return {name: str(value) for name, value in have.items()
            if value is not None and name in cls.run_options}


def _budget_config(adapter: Adapter, budget: str) -> dict | None:
    """The budget's sizes and schedule as the adapter will train them (a torch adapter's
    ``config_for``), so that retuning a budget retrains instead of reusing the checkpoint
    trained at the old values; None for adapters without budget configs."""
    config_for = getattr(adapter, "config_for", None)
    if config_for is None:
        return None
    return dataclasses.asdict(config_for(budget))


def load_checkpoint(adapter: Adapter, checkpoint: Path) -> None:
    """Load ``checkpoint`` into ``adapter``; ValueError in one line when the folder is another
    model's checkpoint or cannot be loaded (not hundreds of missing state-dict keys)."""
    import json

    try:
        done = json.loads((Path(checkpoint) / cache.DONE).read_text())
    except (OSError, ValueError):
        done = {}
    other = done.get("model") if isinstance(done, dict) else None
    if other and other != adapter.name:
        raise ValueError(f"{checkpoint} is a checkpoint of {other}, not of {adapter.name}")
    try:
        adapter.load(Path(checkpoint))
    except Exception as err:  # noqa: BLE001 - any failure to load is one line for the user
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise ValueError(f"{checkpoint}: not a {adapter.name} checkpoint that loads "
                         f"({type(err).__name__}: {first})") from None
