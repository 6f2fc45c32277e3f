"""The runner (SPEC 7): the stages of `bench.stages`, in order, for one configuration.

1. open the dataset and its split, prepare the test part (`stages.workspace`);
2. train the judges the metrics need and lack and the models without a checkpoint, side by
   side in worker processes on a multi-core CPU (`stages.train_pool`), then report the judges'
   quality (`stages.judges`);
3. score the real test clips: the ground-truth row (`stages.score`, `stages.summarise`);
4. per model: fit or load (`stages.train`), generate (`stages.generate`), score, summarise,
   and draw frame strips (`bench.report.strips`);
5. write the leaderboard (`bench.leaderboard`) and the HTML report (`bench.report.html`).

Every stage caches its records by content (`bench.core.cache`), so a run killed at any point
and started again finishes the same leaderboard without redoing finished work. Layout:
``runs/<dataset>/<split>/<model>/`` and ``runs/<dataset>/<split>/ground-truth/``. What the
evaluation is (split, metrics, identity image, emotion sweep, reported rows) comes from the
run's protocol (`bench.protocols`; ``default`` unless ``--protocol`` names another).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.adapters import Adapter, adapter_class, model_names
from bench.core import distributed
from bench.data.clip import ClipRef
from bench.leaderboard import write_leaderboard
from bench.protocols import Protocol
from bench.report.strips import write_strips
from bench.stages.generate import frames_by_emotion, generate_clips, load_generated
from bench.stages.judges import ensure_judges, report_judges
from bench.stages.score import score_clips
from bench.stages.summarise import summarise
from bench.stages.train import Trained, fit_or_load
from bench.stages.train_pool import train_in_parallel
from bench.stages.workspace import Echo, RunConfig, Workspace, open_workspace

STRIP_CLIPS = 2
"""Test clips per model that get frame strips."""


@dataclass
class RunResult:
    dataset: str
    split: str
    summaries: dict[str, dict]
    leaderboard_md: Path
    leaderboard_csv: Path
    problems: list[str]


def resolve_models(names: Sequence[str], protocol: Protocol | None = None
                   ) -> list[type[Adapter]]:
    """``all`` expands to every registered model (under a paper's protocol: the paper's models
    that exist, after the still-image baseline); other names are looked up (or imported)."""
    every = model_names() if protocol is None else protocol.run_models(model_names())
    out: list[type[Adapter]] = []
    for name in names:
        for item in (every if name == "all" else [name]):
            cls = adapter_class(item)
            if cls not in out:
                out.append(cls)
    return out


def run(cfg: RunConfig, echo: Echo = print) -> RunResult | None:
    """Run ``cfg`` end to end and regenerate the dataset's leaderboard. Under torchrun every
    rank trains the judges and the models (`bench.core.distributed`); rank 0 then generates,
    scores and writes the leaderboard, and the other ranks return None."""
    ws, world = open_workspace(cfg, echo)
    try:
        return _run(ws, ws.cfg, ws.echo, world)
    finally:
        ws.close()


def _run(ws: Workspace, cfg: RunConfig, echo: Echo,
         world: distributed.World = distributed.SINGLE) -> RunResult | None:
    models = resolve_models(cfg.models, ws.protocol)
    echo(f"{cfg.dataset} / {ws.split.name}: "
         + ", ".join(f"{k} {len(v)} clips" for k, v in ws.parts.items()))
    test = ws.prepare("test")
    skipped = {r.clip_id: ws.failed[r.clip_id] for r in ws.parts["test"]
               if r.clip_id in ws.failed}
    if not world.distributed:
        try:
            train_in_parallel(ws, models)
        except Exception as err:  # noqa: BLE001 - the stage only warms caches; go on in turn
            echo(f"warning: training side by side failed ({type(err).__name__}: {err}); "
                 "training in this process instead")
    judges = ensure_judges(ws)
    trained: dict[str, Trained | None] = {}
    if world.distributed:  # train every model on all ranks first; rank 0 goes on alone
        trained = {cls.name: fit_or_report(ws, cls) for cls in models}
        if not world.is_main:
            return None
    if judges:
        try:
            report_judges(ws, judges)
        except Exception as err:  # noqa: BLE001 - the report is a footnote, not a stage
            echo(f"warning: judges report failed: {err}")

    summaries = {"ground-truth": run_ground_truth(ws, test, skipped)}
    for cls in models:
        summary = run_model(ws, cls, test, skipped, trained.get(cls.name, _UNTRAINED))
        if summary is not None:
            summaries[cls.name] = summary

    csv_path, md_path = write_run_leaderboard(ws)
    write_run_report(ws, md_path)
    return RunResult(cfg.dataset, ws.split.name, summaries, md_path, csv_path, ws.problems)


def run_ground_truth(ws: Workspace, test: list[ClipRef], skipped: dict[str, str]) -> dict:
    """The real test clips scored as a row of their own."""
    out_dir = ws.run_dir / "ground-truth"
    start = time.perf_counter()
    records = score_clips(ws, "ground truth", out_dir, test, None)
    score_s = round(time.perf_counter() - start, 3)
    return summarise(ws, "ground-truth", "ground-truth", out_dir, records,
                     len(ws.parts["test"]), skipped, {**test_set_provenance(ws), "wall_s": score_s},
                     {"score": score_s})


def test_set_provenance(ws: Workspace) -> dict:
    """Which test clips a row was scored on: ``test_set`` names them (the leaderboard ranks
    only rows of one test set together), ``max_test_clips`` is the limit that chose them."""
    return {"test_set": ws.test_set, "max_test_clips": ws.cfg.max_test_clips}


_UNTRAINED = object()
"""``run_model``'s default: fit or load the model there and then."""


def fit_or_report(ws: Workspace, cls: type[Adapter]) -> Trained | None:
    """Fit or load ``cls``; None (reported) when training failed, so the run goes on."""
    try:
        return fit_or_load(ws, cls, ws.run_dir / cls.name)
    except Exception as err:  # noqa: BLE001 - one model failing must not stop the run
        ws.echo(f"error: {cls.name}: training failed: {err}")
        ws.problems.append(f"{cls.name}: training failed: {err}")
        return None


def run_model(ws: Workspace, cls: type[Adapter], test: list[ClipRef],
              skipped: dict[str, str], trained: Trained | None | object = _UNTRAINED
              ) -> dict | None:
    """Fit or load (unless ``trained`` is given), generate, score and summarise one model;
    None when training failed (the run goes on with the other models)."""
    model_dir = ws.run_dir / cls.name
    start = time.perf_counter()
    if trained is _UNTRAINED:
        trained = fit_or_report(ws, cls)
    if not isinstance(trained, Trained):
        return None
    stages = {"train": time.perf_counter() - start}
    generated = generate_clips(ws, trained, model_dir, test)
    stages["generate"] = time.perf_counter() - start - sum(stages.values())
    ok = [r for r in test if r.clip_id in generated.keys]
    records = score_clips(ws, cls.name, model_dir, ok, generated.keys, cls.needs_emotion)
    stages["score"] = time.perf_counter() - start - sum(stages.values())
    summary = summarise(
        ws, cls.name, "model", model_dir, records, len(ws.parts["test"]),
        {**skipped, **generated.failures},
        {**test_set_provenance(ws),
         "adapter": trained.adapter.config(), "paper": cls.paper, "budget": ws.cfg.budget,
         "train_key": trained.key, "train_log": trained.log,
         "wall_s": round(time.perf_counter() - start, 3)},
        {stage: round(seconds, 3) for stage, seconds in stages.items()})
    for ref in ok[:STRIP_CLIPS]:
        pred = load_generated(model_dir, ref.clip_id)
        by_emotion = None
        if cls.needs_emotion and ws.emotion_sweep() and ref.emotion:
            by_emotion = frames_by_emotion(model_dir, ref, pred, True)
        write_strips(model_dir, ref.clip_id, pred, ws.load_clip(ref).frames, by_emotion,
                     ref.emotion)
    return summary


def write_run_report(ws: Workspace, md_path: Path) -> Path | None:
    """The HTML report of the leaderboard's rows (`bench.report.html`), in
    ``reports/<leaderboard name>/`` beside the leaderboard folder; a report that fails is a
    warning (the leaderboard is written), not a failed run."""
    from bench.report.html import report_dir, write_report

    cfg, kw = ws.cfg, {}
    if ws.protocol.name != "default":
        kw = {"splits": [ws.split.name], "metrics": ws.metric_names(),
              "reported": ws.protocol.reported_for(cfg.dataset)}
    try:
        report = write_report(cfg.dataset, Path(cfg.runs_dir),
                              report_dir(md_path.parent, md_path.stem), name=md_path.stem,
                              echo=ws.echo, **kw)
    except Exception as err:  # noqa: BLE001 - the report is a view, not a stage
        ws.echo(f"warning: the HTML report was not written: {err}")
        return None
    ws.echo(f"report: {report.page}")
    return report.page


def write_run_leaderboard(ws: Workspace) -> tuple[Path, Path]:
    """The dataset's leaderboard; a paper protocol writes its own
    (``<dataset>-<protocol>.md``) with the protocol's metrics and reported rows."""
    cfg = ws.cfg
    if ws.protocol.name == "default":
        return write_leaderboard(cfg.dataset, Path(cfg.runs_dir), Path(cfg.leaderboard_dir))
    return write_leaderboard(
        cfg.dataset, Path(cfg.runs_dir), Path(cfg.leaderboard_dir),
        name=f"{cfg.dataset}-{ws.protocol.name}", splits=[ws.split.name],
        metrics=ws.metric_names(), reported=ws.protocol.reported_for(cfg.dataset))
