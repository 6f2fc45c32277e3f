"""Stage 3: a model fitted on the split's train part, or loaded from its checkpoint.

``runs/<dataset>/<split>/<model>/checkpoint/`` is one cached folder (`bench.core.cache`)
whose key names the adapter's config, the budget, the split and version, and the cache keys of
the training clips: a change in any of them retrains.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.adapters import Adapter
from bench.core import cache
from bench.provenance import stable_hash
from bench.stages.workspace import Workspace


@dataclass
class Trained:
    """A model ready to generate: the adapter, its training key and its training log."""

    adapter: Adapter
    key: str
    log: dict


def fit_or_load(ws: Workspace, cls: type[Adapter], model_dir: Path) -> Trained:
    adapter = cls(seed=ws.cfg.seed, device=ws.device)
    train_refs = ws.prepare("train") if cls.trainable else []
    val_refs = ws.prepare("val") if cls.trainable else []
    key = stable_hash({
        "adapter": adapter.config(), "budget": ws.cfg.budget,
        "split": [ws.split.name, ws.split.version],
        "train": [ws.clip_key(r) for r in train_refs],
    })
    checkpoint = model_dir / "checkpoint"
    done = cache.read_folder(checkpoint, key, ws.echo)
    if done is not None:
        adapter.load(checkpoint)
        return Trained(adapter, key, done.get("log", {}))
    if cls.trainable and not train_refs:
        raise ValueError("no prepared training clips")
    ws.echo(f"{cls.name}: training ({ws.cfg.budget} budget, {len(train_refs)} clips)")
    start = time.perf_counter()
    log = adapter.fit(ws.lazy(train_refs), ws.lazy(val_refs) if val_refs else None,
                      ws.cfg.budget) or {}
    log = {**log, "wall_s": round(time.perf_counter() - start, 3)}

    def fill(folder: Path) -> dict:
        adapter.save(folder)
        return {"model": cls.name, "log": log}

    cache.write_folder(checkpoint, key, fill)
    return Trained(adapter, key, log)


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
