"""Stage 5: every metric on every clip, cached per clip, in worker processes.

``scores/<clip>.json`` is one cached record per clip (`bench.core.cache`), keyed by what was
scored (the generation key; for the ground-truth row, the clip's cache key); inside it each
metric's entry carries the metric's version, so adding or changing one metric rescores only
that metric and never regenerates video. Metrics with per-clip states (FID, pooled columns)
keep them in ``states/<metric>/<clip>.npz`` (`bench.aggregate`); a damaged one is reported in
one line, removed and recomputed. Each clip a metric could not score gets one line on stderr
(`bench.aggregate.UnavailableLog`), at the time it is scored.

Parallel scoring (issue 13). Scoring one clip is CPU-bound and much of it holds the GIL (dlib's
landmarks, the descriptors' chips), so clips are scored in worker *processes*
(`ScoringPool`, ``--workers``; default: one per core on the CPU, one on a GPU). Each worker
builds the run's metrics once (judges loaded once per worker and job), runs with
``cores // workers`` torch threads (no oversubscription on small tensors), and scores whole
clips: one decode of the cached frames and one landmark pass per clip, shared by the metrics
(`bench.metrics.shared`). The parent keeps the records: it reads the cache, sends only the
clips with missing metrics, writes each record when its clip comes back, and logs the reasons
in clip order. A clip's values do not depend on which worker scored it or how many there are
(each clip is scored whole, by the same code, in the same order of metrics); with ``workers``
1 the clips are scored in this process, as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.aggregate import UnavailableLog, is_cached, score_sample
from bench.core import cache
from bench.data.clip import ClipRef
from bench.stages.generate import frames_by_emotion, identity_image, load_generated
from bench.stages.workers import ensure_registered, registrations
from bench.stages.workspace import Workspace, progress


@dataclass(frozen=True)
class ScoringJob:
    """Everything a worker needs to score clips of one row (picklable, hashable): which
    metrics, in which context, on which device, and where the row's clips and generated frames
    are."""

    metric_names: tuple[str, ...]
    device: str
    context: Any  # bench.metrics.MetricContext
    ground_truth: bool
    sweep: bool
    needs_emotion: bool
    out_dir: Path
    prep_dir: Path
    params: Any  # bench.data.preprocess.PrepParams
    protocol: str  # which protocol picks the identity image
    registered: tuple = ()  # `bench.stages.workers.registrations` of the metrics

    @property
    def metrics_key(self) -> tuple:
        """What the job's metric objects depend on (rows of one run share them)."""
        return (self.metric_names, self.device, self.context, self.ground_truth)

    def build_metrics(self) -> list:
        """The job's metric objects (on the ground-truth row, those that apply to real
        video)."""
        from bench.metrics import get_metric

        ensure_registered(self.registered)
        metrics = [get_metric(name, device=self.device, context=self.context)
                   for name in self.metric_names]
        return [m for m in metrics if m.on_ground_truth or not self.ground_truth]


def score_clip(job: ScoringJob, metrics: list, item: tuple[ClipRef, list[str]]
               ) -> dict[str, dict]:
    """Entries of the metrics named in ``item`` for its clip (`bench.aggregate.score_sample`)."""
    from bench.data.preprocess import load_prepared
    from bench.metrics.base import Sample
    from bench.protocols import get_protocol

    ref, todo = item
    clip = load_prepared(ref, job.prep_dir, job.params)
    pred = clip.frames if job.ground_truth else load_generated(job.out_dir, ref.clip_id)
    by_emotion = None
    if job.sweep and clip.emotion:
        by_emotion = frames_by_emotion(job.out_dir, ref, pred, job.needs_emotion)
    sample = Sample(clip_id=ref.clip_id, pred=pred, gt=clip.frames, audio=clip.audio,
                    identity=identity_image(get_protocol(job.protocol), clip),
                    emotion=clip.emotion, by_emotion=by_emotion)
    return score_sample([m for m in metrics if m.name in todo], sample,
                        job.out_dir / "states")


# ---------------------------------------------------------------------------------------------
# The stage


def scoring_job(ws: Workspace, out_dir: Path, ground_truth: bool,
                needs_emotion: bool) -> ScoringJob:
    """The workers' view of scoring one row of ``ws``."""
    metrics = ws.make_metrics(ground_truth=ground_truth)
    context = metrics[0].context if metrics else None
    return ScoringJob(
        metric_names=tuple(m.name for m in metrics), device=str(ws.device), context=context,
        ground_truth=ground_truth, sweep=not ground_truth and ws.emotion_sweep(),
        needs_emotion=needs_emotion, out_dir=Path(out_dir), prep_dir=ws.prep_dir,
        params=ws.params, protocol=ws.protocol.name,
        registered=registrations(tuple(m.name for m in metrics)))


def score_clips(ws: Workspace, name: str, out_dir: Path, refs: list[ClipRef],
                keys: dict[str, str] | None, needs_emotion: bool = False) -> dict[str, dict]:
    """Score ``refs``: the generated clips of a model (``keys``: their generation keys), or the
    real clips themselves when ``keys`` is None (the ground-truth row). Returns the per-clip
    records, clip id -> ``{"key", "emotion", "metrics": {name: entry}}``."""
    ground_truth = keys is None
    job = scoring_job(ws, out_dir, ground_truth, needs_emotion)
    metrics = job.build_metrics()
    records: dict[str, dict] = {}
    work: list[tuple[ClipRef, list[str]]] = []
    for ref in refs:
        key = ws.clip_key(ref) if keys is None else keys[ref.clip_id]
        path = out_dir / "scores" / f"{ref.clip_id}.json"
        record = cache.read_json(path, key, ws.echo) or {"key": key, "emotion": ref.emotion,
                                                         "metrics": {}}
        records[ref.clip_id] = record
        todo = [m.name for m in metrics
                if not is_cached(record, m, out_dir / "states", ref.clip_id, ws.echo)]
        if todo:
            work.append((ref, todo))
    log = UnavailableLog(ws.echo, prefix=f"{name}: ", shown=ws.unavailable_shown)
    results = ws.scoring_pool().map(score_clip, job, work)
    for (ref, _), entries in progress(results, f"{name}: score", ws.cfg.progress, len(work)):
        log.clip(ref.clip_id, entries)
        record = records[ref.clip_id]
        record["metrics"].update(entries)
        path = out_dir / "scores" / f"{ref.clip_id}.json"
        records[ref.clip_id] = cache.write_json(path, record["key"], record)
    log.close()
    return {ref.clip_id: records[ref.clip_id] for ref in refs}
