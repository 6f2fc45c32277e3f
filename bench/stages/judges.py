"""Stage 2: the learned judges the metrics need (SPEC 5: without official weights, the harness
trains its own on the split's train part), and their own quality on the real test clips.

A judge's report is one cached record per judge, ``runs/<dataset>/<split>/judges/<name>.json``,
keyed by the judge's weights hash and the test clips; ``judges.json`` beside it gathers them
for the leaderboard's footnotes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.core import cache, distributed
from bench.core.devices import training_threads
from bench.fileio import atomic_write_json
from bench.provenance import device_name, stable_hash
from bench.stages.workspace import Workspace


def train_judge(ws: Workspace, name: str):
    """Train judge ``name`` on the split's train part and cache it under the run's judge key
    (`Workspace.judge_identity`: dataset, root, split, budget, seed, train clips)."""
    from bench.judges.store import judge_key, judge_module, store_trained

    module = judge_module(name)
    train, val = ws.prepare("train"), ws.prepare("val")
    if not train:
        raise ValueError(f"no prepared training clips to train the {name} judge on")
    cfg = ws.cfg
    identity = ws.judge_identity()
    key = judge_key(name, identity, cfg.budget)
    record = {"split": ws.split.name, "split_version": ws.split.version,
              "budget": cfg.budget, "seed": cfg.seed, "n_train": len(train),
              "n_val": len(val), "device": device_name(ws.device),
              "root_hash": ws.dataset_hash, "identity": identity,
              "train_key": stable_hash([ws.clip_key(r) for r in train]),
              "train_speakers": sorted({r.speaker for r in train}),
              "val_speakers": sorted({r.speaker for r in val})}
    world = distributed.current(ws.device)
    shard = distributed.shard(train, world)
    ws.echo(f"judge {name}: training on {cfg.dataset}/{ws.split.name} train "
            f"({len(train)} clips, {cfg.budget} budget"
            + (f", {len(shard)} on each of {world.size} ranks" if world.distributed else "")
            + ")")
    kwargs = {"train": ws.lazy(shard), "val": ws.lazy(val) if val else None,
              "budget": cfg.budget, "device": ws.device,
              "seed": distributed.rank_seed(cfg.seed, world),
              "progress": cfg.progress and world.is_main}
    distributed.barrier(world)  # every rank starts from the cache as rank 0 left it

    def train_fn(out_dir: Path, **train_kwargs) -> dict:
        with distributed.data_parallel(world), training_threads() as threads:
            log = module.train(out_dir=out_dir, **train_kwargs) or {}
        log = {**log, "train_threads": threads}
        distributed.same_on_all(weights_digest(out_dir), world, f"judge {name}")
        return {**log, **distributed.provenance(world, log, True)}

    if world.is_main:
        trained = store_trained(name, cfg.dataset, train_fn, record=record,
                                cache_dir=cfg.cache_dir, key=key, **kwargs)
    else:  # the other ranks train beside rank 0 and keep nothing
        with tempfile.TemporaryDirectory(prefix=f"talkbench-{name}-rank{world.rank}-") as tmp:
            train_fn(Path(tmp), **kwargs)
        trained = None
    distributed.barrier(world)  # rank 0's judge is in place for every rank
    return trained


def weights_digest(folder: Path) -> str:
    """:func:`bench.core.distributed.tensor_digest` of every ``.pt``/``.pth`` file in
    ``folder`` (the weights, not the logs and times beside them)."""
    import torch

    states = {path.name: torch.load(path, map_location="cpu", weights_only=True)
              for path in sorted(Path(folder).iterdir()) if path.suffix in (".pt", ".pth")}
    return distributed.tensor_digest(states)


def judges_to_train(ws: Workspace) -> dict[str, bool]:
    """Each judge the run's metrics use -> whether it still has to be trained (none cached)."""
    out: dict[str, bool] = {}
    for metric in ws.make_metrics(ground_truth=False):
        name = metric.judge_name
        if name is not None and name not in out:
            out[name] = metric.needs_trained_judge()
    return out


def ensure_judges(ws: Workspace) -> list[str]:
    """Train the judges the run's metrics need and lack; returns the judges the metrics use.
    A failure is reported and the metrics that needed the judge say they are unavailable."""
    needed = judges_to_train(ws)
    for name, untrained in needed.items():
        try:
            if untrained:
                train_judge(ws, name)
        except Exception as err:  # noqa: BLE001 - a judge failing must not stop the run
            ws.echo(f"error: judge {name}: training failed: {err}")
            ws.problems.append(f"judge {name}: training failed: {err}")
    return sorted(needed)


def report_judges(ws: Workspace, names: Sequence[str] | None = None) -> dict[str, dict]:
    """Each trained judge's provenance and its own quality on the real test clips, cached per
    judge and gathered in ``runs/<dataset>/<split>/judges.json``."""
    from bench.judges.store import JUDGES, judge_key, judge_module, trained_judge

    test = ws.prepare("test")
    report: dict[str, dict] = {}
    for name in names or JUDGES.names():
        judge = trained_judge(name, ws.cfg.dataset, ws.cfg.cache_dir,
                              key=judge_key(name, ws.judge_identity(), ws.cfg.budget),
                              test_speakers={r.speaker for r in ws.parts["test"]})
        if judge is None:
            continue
        refusal = judge.refusal()
        if refusal is not None:  # never measured on (or used for) speakers it trained on
            ws.echo(f"error: {refusal}")
            ws.problems.append(refusal)
            continue
        key = stable_hash([judge.record.get("weights_sha256"), [ws.clip_key(r) for r in test]])
        path = ws.run_dir / "judges" / f"{name}.json"
        record = cache.read_json(path, key, ws.echo)
        if record is None:
            model = judge.load(ws.device)
            module = judge_module(name)
            quality = module.evaluate(model, ws.lazy(test), device=ws.device)
            truth_files = [r.truth for r in test]
            against_truth = getattr(module, "evaluate_against_truth", None)
            if against_truth is not None and test and all(truth_files):
                # independent truth (the synthetic corpus's): it becomes the judge's figure;
                # the figure evaluate() gave stays under its own name, its chance renamed
                quality = {**quality, "first_chance": quality.get("chance"),
                           **against_truth(model, ws.lazy(test), truth_files,
                                           device=ws.device)}
            record = cache.write_json(path, key, {
                "judge": judge.describe(), "n_test": len(test), "test": quality,
                "train_log": judge.record.get("log", {})})
        report[name] = record
    atomic_write_json(ws.run_dir / "judges.json", report)
    return report
