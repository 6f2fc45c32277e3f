"""Stage 5: every metric on every clip, cached per clip.

``scores/<clip>.json`` is one cached record per clip (`bench.core.cache`), keyed by what was
scored (the generation key; for the ground-truth row, the clip's cache key); inside it each
metric's entry carries the metric's version, so adding or changing one metric rescores only
that metric and never regenerates video. Metrics with per-clip states (FID, pooled columns)
keep them in ``states/<metric>/<clip>.npz`` (`bench.aggregate`); a damaged one is reported in
one line, removed and recomputed. Each clip a metric could not score gets one line on stderr
(`bench.aggregate.UnavailableLog`), at the time it is scored.
"""

from __future__ import annotations

from pathlib import Path

from bench.aggregate import UnavailableLog, is_cached, score_sample
from bench.core import cache
from bench.data.clip import ClipRef
from bench.stages.generate import frames_by_emotion, identity_image, load_generated
from bench.stages.workspace import Workspace, progress


def score_clips(ws: Workspace, name: str, out_dir: Path, refs: list[ClipRef],
                keys: dict[str, str] | None, needs_emotion: bool = False) -> dict[str, dict]:
    """Score ``refs``: the generated clips of a model (``keys``: their generation keys), or the
    real clips themselves when ``keys`` is None (the ground-truth row). Returns the per-clip
    records, clip id -> ``{"key", "emotion", "metrics": {name: entry}}``."""
    from bench.metrics.base import Sample

    ground_truth = keys is None
    metrics = ws.make_metrics(ground_truth=ground_truth)
    sweep = not ground_truth and ws.emotion_sweep()
    records: dict[str, dict] = {}
    log = UnavailableLog(ws.echo, prefix=f"{name}: ")
    for ref in progress(refs, f"{name}: score", ws.cfg.progress):
        key = ws.clip_key(ref) if keys is None else keys[ref.clip_id]
        path = out_dir / "scores" / f"{ref.clip_id}.json"
        record = cache.read_json(path, key, ws.echo) or {"key": key, "emotion": ref.emotion,
                                                "metrics": {}}
        todo = [m for m in metrics
                if not is_cached(record, m, out_dir / "states", ref.clip_id, ws.echo)]
        if todo:
            clip = ws.load_clip(ref)
            pred = clip.frames if ground_truth else load_generated(out_dir, ref.clip_id)
            by_emotion = None
            if sweep and clip.emotion:
                by_emotion = frames_by_emotion(out_dir, ref, pred, needs_emotion)
            sample = Sample(clip_id=ref.clip_id, pred=pred, gt=clip.frames, audio=clip.audio,
                            identity=identity_image(ws, clip), emotion=clip.emotion,
                            by_emotion=by_emotion)
            record["metrics"].update(score_sample(todo, sample, out_dir / "states", log))
            record = cache.write_json(path, key, record)
        records[ref.clip_id] = record
    log.close()
    return records
