"""``bench score``: score folders of videos made by any generator against the real ones
(SPEC 7), from the command line (`run_score`) or Python (`score_folders`, also
``bench.score_folders``).

Generated and ground-truth videos are paired by file stem (``pred/abc.mp4`` with
``gt/abc.mpg``). Optional identity images (``identity/abc.png``) and audio (``audio/abc.wav``)
are matched the same way; without ``--audio`` the audio comes from the generated file, else
from the ground-truth file. Everything is decoded once at 25 fps / 16 kHz mono.

Geometry (``align``):

- ``gt`` (default): faces are aligned as the runner aligns its clips (dlib landmarks,
  similarity to the canonical face, 128x128 crop, `bench.data.preprocess`), with the
  transforms found on the *ground-truth* video applied to both videos when they have the same
  frame size, so misplaced generated faces stay visible to PSNR/SSIM; a generated video of
  another size is aligned on its own landmarks;
- ``each``: each video aligned on its own landmarks;
- ``none``: the frames as they are (already aligned crops).

The identity image defaults to the first ground-truth frame (aligned the same way). Clips that
cannot be scored (missing pair, unreadable file, no face, lengths that differ by more than one
frame) get one line each and are listed in the summary; the others are scored. With
``--openface-pred DIR --openface-gt DIR`` (both or neither) the AU metric labels each clip with
the OpenFace 2.x CSVs ``DIR/<clip>.csv`` of its generated and real video, as seed 004 does
(Sect. 5), instead of the harness's labeller. Outputs in
``--out``: ``scores.csv`` (per clip), ``summary.json`` and ``leaderboard.md`` (the same
leaderboard code as ``bench run``); without an output folder (the Python API's default) the
per-clip table and the summary are only returned.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.aggregate import (
    UnavailableLog,
    clip_table,
    coverage,
    metric_timing,
    score_sample,
    summarise_records,
    table_csv,
)
from bench.data.clip import Clip, align_audio
from bench.fileio import atomic_write_json, atomic_write_text
from bench.metrics.base import MetricContext, Sample
from bench.provenance import device_name, git_commit, package_versions
from bench.stages.executors import make_scoring_pool
from bench.stages.workers import ensure_registered, registrations

if TYPE_CHECKING:
    import pandas as pd

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".flv", ".mpg", ".mpeg", ".webm")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".aac")
ALIGN_MODES = ("gt", "each", "none")
MAX_LENGTH_DIFFERENCE = 1  # frames trimmed silently (codec rounding); more is an error


class ScoreError(Exception):
    """One clip cannot be scored; the message is the line shown to the user."""


@dataclass
class ScoreConfig:
    pred_dir: Path
    gt_dir: Path | None = None
    identity_dir: Path | None = None
    audio_dir: Path | None = None
    out_dir: Path | None = Path("scores")  # None: write nothing (states in a temporary folder)
    metrics: list[str] | None = None  # None: every registered metric
    align: str = "gt"
    dataset: str | None = None  # whose trained judges to use (LSE, EmoAcc, AU)
    emotion: str | None = None  # requested emotion of every clip (EmoAcc)
    device: str | None = None
    cache_dir: Path | None = None
    seed: int = 0
    progress: bool = True
    workers: int | None = None  # scoring processes (None: one per core; one on a GPU)
    executor: str = "local"  # where clips are scored: local processes or "ray" (issue 19)
    ray_address: str | None = None  # --executor ray: the cluster (None: a local instance)
    openface_pred: Path | None = None  # OpenFace CSVs of the generated videos (AU metric)
    openface_gt: Path | None = None  # ... and of the real ones; both or neither


@dataclass
class ScoreResult:
    summary: dict
    table: pd.DataFrame  # per clip: index clip_id, one float column per metric column
    skipped: dict[str, str] = field(default_factory=dict)
    leaderboard_md: Path | None = None  # None when nothing was written


def _by_stem(folder: Path | None, suffixes: tuple[str, ...]) -> dict[str, Path]:
    if folder is None:
        return {}
    if not Path(folder).is_dir():
        raise ValueError(f"{folder} is not a folder")
    return {p.stem: p for p in sorted(Path(folder).iterdir())
            if p.is_file() and p.suffix.lower() in suffixes}


def _read_video(path: Path, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    from bench.data.media import MediaError, read_media

    try:
        media = read_media(path)
    except MediaError as err:
        raise ScoreError(f"{what} {path.name}: {err}") from err
    if media.frames is None or len(media.frames) == 0:
        raise ScoreError(f"{what} {path.name}: no video frames")
    return media.frames, media.audio


def _read_audio(path: Path) -> np.ndarray:
    from bench.data.media import MediaError, read_media

    try:
        media = read_media(path, video=False)
    except MediaError as err:
        raise ScoreError(f"audio {path.name}: {err}") from err
    if media.audio is None or media.audio.size == 0:
        raise ScoreError(f"audio {path.name}: no audio samples")
    return media.audio


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise ScoreError(f"identity image {path.name}: cannot be read ({err})") from err


def _align(frames: np.ndarray, clip_id: str, what: str, transforms: np.ndarray | None = None):
    """Aligned crops (and the transforms used) of ``frames``; ScoreError without a face."""
    from bench.data.preprocess import PrepError, PrepParams, align_clip, warp_frames

    params = PrepParams()
    if transforms is not None:
        return warp_frames(frames, transforms, params.size), transforms
    audio = np.zeros(frames.shape[0] * 640, dtype=np.float32)
    try:
        aligned = align_clip(Clip(speaker="", clip_id=clip_id, frames=frames, audio=audio),
                             params)
    except PrepError as err:
        raise ScoreError(f"{what} {clip_id}: {err}") from err
    return aligned.frames, aligned.transforms


def load_pair(cfg: ScoreConfig | FolderJob, stem: str, pred_path: Path, gt_path: Path | None,
              identity_path: Path | None, audio_path: Path | None) -> Sample:
    """Decode, check lengths, align and assemble one clip's Sample (ScoreError if it can't)."""
    pred, pred_audio = _read_video(pred_path, "generated video")
    gt = gt_audio = None
    if gt_path is not None:
        gt, gt_audio = _read_video(gt_path, "ground-truth video")
        if abs(len(pred) - len(gt)) > MAX_LENGTH_DIFFERENCE:
            raise ScoreError(f"{stem}: lengths differ: generated {len(pred)} frames, ground "
                             f"truth {len(gt)} frames (25 fps)")
        n = min(len(pred), len(gt))
        pred, gt = pred[:n], gt[:n]
    audio = _read_audio(audio_path) if audio_path else (
        pred_audio if pred_audio is not None and pred_audio.size else gt_audio)
    if audio is not None:
        audio, _ = align_audio(audio, len(pred))
    identity = _read_image(identity_path) if identity_path else None
    if cfg.align != "none":
        transforms = None
        if gt is not None:
            same_size = gt.shape[1:] == pred.shape[1:]
            gt, transforms = _align(gt, stem, "ground-truth video")
            if cfg.align == "each" or not same_size:
                transforms = None
        pred, _ = _align(pred, stem, "generated video", transforms)
        if identity is not None:
            identity = _align(identity[None], stem, "identity image")[0][0]
    if identity is None and gt is not None:
        identity = gt[0]
    return Sample(clip_id=stem, pred=pred, gt=gt, audio=audio, identity=identity,
                  emotion=cfg.emotion)


@dataclass(frozen=True)
class FolderJob:
    """What a scoring worker needs for `bench score` (picklable, hashable)."""

    metric_names: tuple[str, ...]
    device: str | None
    context: MetricContext
    align: str
    emotion: str | None
    states_dir: Path
    registered: tuple = ()  # `bench.stages.workers.registrations` of the metrics
    openface: tuple[Path, Path] | None = None  # OpenFace CSV folders: generated, real

    def build_metrics(self) -> list:
        from bench.metrics import get_metric

        ensure_registered(self.registered)
        metrics = [get_metric(name, device=self.device, context=self.context)
                   for name in self.metric_names]
        if self.openface is not None:  # the AU metric labels with the user's CSVs
            for metric in metrics:
                if hasattr(metric, "use_openface"):
                    metric.use_openface(*self.openface)
        return metrics


def score_pair(job: FolderJob, metrics: list,
               item: tuple[str, Path, Path | None, Path | None, Path | None]
               ) -> str | tuple[dict[str, dict], bool, int]:
    """One clip of `bench score`: decode, align and score it (in a worker process). Returns
    ``(entries, has_audio, frames)``, or the one-line reason it was skipped."""
    stem, pred_path, gt_path, identity_path, audio_path = item
    try:
        sample = load_pair(job, stem, pred_path, gt_path, identity_path, audio_path)
    except ScoreError as err:
        return str(err)
    return (score_sample(metrics, sample, job.states_dir), sample.audio is not None,
            len(sample.pred))


def _openface_folders(cfg: ScoreConfig, metrics: Sequence[str]) -> tuple[Path, Path] | None:
    """The OpenFace CSV folders of the generated and the real videos (``--openface-pred``,
    ``--openface-gt``), which the AU metric labels with (`bench.metrics.au.AU.use_openface`;
    seed 004 Sect. 5); None when neither is given. ValueError when only one is, when one is
    not a folder, or when the AU metric is not scored."""
    given = {"--openface-pred": cfg.openface_pred, "--openface-gt": cfg.openface_gt}
    if all(v is None for v in given.values()):
        return None
    missing = [k for k, v in given.items() if v is None]
    if missing:
        other = next(k for k in given if k not in missing)
        raise ValueError(f"{other} needs {missing[0]} too: the AU metric compares the OpenFace "
                         "labels of the generated videos with those of the real ones (give "
                         "both folders, or neither to use the harness's AU labeller)")
    for option, folder in given.items():
        if not Path(folder).is_dir():
            raise ValueError(f"{option} {folder} is not a folder (expected OpenFace CSVs named "
                             "<clip>.csv after the videos)")
    if "au" not in metrics:
        raise ValueError("--openface-pred/--openface-gt label the AU metric, which --metrics "
                         "leaves out")
    return Path(cfg.openface_pred), Path(cfg.openface_gt)


def run_score(cfg: ScoreConfig, echo: Callable[[str], None] = print) -> ScoreResult:
    """Score every generated video in ``cfg.pred_dir`` (see the module docstring) and, when
    ``cfg.out_dir`` is set, write ``scores.csv``, ``summary.json`` and ``leaderboard.md``
    there."""
    if cfg.out_dir is None:
        with tempfile.TemporaryDirectory(prefix="talkbench-score-") as tmp:
            return _score(cfg, Path(tmp) / "states", echo)
    return _score(cfg, Path(cfg.out_dir) / "states", echo)


def _score(cfg: ScoreConfig, states_dir: Path, echo: Callable[[str], None]) -> ScoreResult:
    from bench.leaderboard import build_table, render_markdown
    from bench.metrics import METRICS

    if cfg.align not in ALIGN_MODES:
        raise ValueError(f"--align must be one of {', '.join(ALIGN_MODES)}")
    preds = _by_stem(cfg.pred_dir, VIDEO_SUFFIXES)
    if not preds:
        raise ValueError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) in {cfg.pred_dir}")
    gts = _by_stem(cfg.gt_dir, VIDEO_SUFFIXES)
    identities = _by_stem(cfg.identity_dir, IMAGE_SUFFIXES)
    audios = _by_stem(cfg.audio_dir, AUDIO_SUFFIXES)
    context = MetricContext(dataset=cfg.dataset, cache_dir=cfg.cache_dir)
    names = tuple(cfg.metrics or METRICS.names())
    job = FolderJob(metric_names=names, device=cfg.device, context=context, align=cfg.align,
                    emotion=cfg.emotion, states_dir=Path(states_dir),
                    registered=registrations(names), openface=_openface_folders(cfg, names))
    metrics = job.build_metrics()

    skipped: dict[str, str] = {}
    for stem in sorted(set(gts) - set(preds)):
        skipped[stem] = f"{stem}: ground truth {gts[stem].name} has no generated video"
    records: dict[str, dict] = {}
    log = UnavailableLog(echo)
    work: list[tuple[str, Path, Path | None, Path | None, Path | None]] = []
    for stem in sorted(preds):
        if cfg.gt_dir is not None and stem not in gts:
            skipped[stem] = f"{stem}: no ground-truth video named {stem}.* in {cfg.gt_dir}"
        elif cfg.audio_dir is not None and stem not in audios:
            skipped[stem] = f"{stem}: no audio named {stem}.* in {cfg.audio_dir}"
        else:
            work.append((stem, preds[stem], gts.get(stem), identities.get(stem),
                         audios.get(stem)))
    start = time.perf_counter()
    with make_scoring_pool(cfg.workers, cfg.device, cfg.executor, cfg.ray_address) as pool:
        results = pool.map(score_pair, job, work)
        if cfg.progress:
            from tqdm import tqdm

            results = tqdm(results, desc="score", unit="clip", leave=False, total=len(work))
        for (stem, *_), outcome in results:
            if isinstance(outcome, str):
                skipped[stem] = outcome
                continue
            entries, has_audio, frames = outcome
            if not has_audio:
                echo(f"warning: {stem}: no audio in the generated or ground-truth file (give "
                     "--audio DIR); audio metrics are unavailable for it")
            log.clip(stem, entries)
            records[stem] = {"emotion": cfg.emotion, "frames": frames, "metrics": entries}
        workers, threads = pool.workers, pool.threads
    score_s = round(time.perf_counter() - start, 3)
    log.close()
    for reason in skipped.values():
        echo(f"skipped: {reason}")

    columns, aggregate, provenance = summarise_records(metrics, records, states_dir, cfg.seed,
                                                       echo)
    table = clip_table(records, list(columns))
    summary = {
        "model": Path(cfg.pred_dir).name or "generated", "kind": "model",
        "dataset": cfg.dataset or "custom", "split": "bench score", "budget": None,
        "n_test": len(preds) + len(set(gts) - set(preds)), "n_scored": len(records),
        "skipped": skipped, "columns": columns, "aggregate": aggregate,
        "clips": coverage(metrics, records),
        "timing": {"stages_s": {"score": score_s}, "metrics": metric_timing(records),
                   "frames": sum(int(r["frames"]) for r in records.values()),
                   "device": device_name(str(metrics[0].device) if metrics else "cpu"),
                   "workers": workers, "torch_threads_per_worker": threads},
        "provenance": {
            "git_commit": git_commit(), "packages": package_versions(),
            "pred_dir": str(cfg.pred_dir), "gt_dir": str(cfg.gt_dir), "align": cfg.align,
            "seed": cfg.seed, "device": device_name(str(metrics[0].device) if metrics
                                                    else "cpu"),
            "metrics": provenance,
        },
    }
    if cfg.out_dir is None:
        return ScoreResult(summary=summary, table=table, skipped=skipped)
    out_dir = Path(cfg.out_dir)
    atomic_write_text(out_dir / "scores.csv", table_csv(table, records))
    atomic_write_json(out_dir / "summary.json", summary)
    rows, cols = build_table(summary["dataset"], [summary], reported=[])
    md = atomic_write_text(out_dir / "leaderboard.md",
                           render_markdown(summary["dataset"], rows, cols))
    return ScoreResult(summary=summary, table=table, skipped=skipped, leaderboard_md=md)


def partial_columns(summary: dict) -> list[tuple[str, int]]:
    """``(label, clips)`` of each leaderboard column whose value covers fewer clips than
    were scored (no value: 0), in the summary's column order."""
    from bench.results import ColumnResult

    out = []
    for name, data in summary.get("aggregate", {}).items():
        info = summary.get("columns", {}).get(name, {})
        if info.get("detail"):
            continue
        n = ColumnResult.from_dict(data).n_covered
        if n < summary.get("n_scored", 0):
            out.append((info.get("label", name), n))
    return out


def nothing_scored(summary: dict) -> bool:
    """True when no clip could be read, or no metric gave a value on any clip."""
    from bench.results import ColumnResult

    return summary.get("n_scored", 0) == 0 or not any(
        ColumnResult.from_dict(data).available for data in summary.get("aggregate", {}).values())


def scored_line(summary: dict) -> str:
    """The one-line outcome: clips read, and each metric that covered fewer of them, e.g.
    ``"2/2 clips read and scored; not every metric scored every clip: ACD 1/2, AU F1 1/2"``."""
    n, total = summary.get("n_scored", 0), summary.get("n_test", 0)
    if n == 0:
        return f"no clip of {total} could be scored"
    partial = partial_columns(summary)
    if not partial:
        return f"scored {n}/{total} clips with every metric"
    return (f"{n}/{total} clips read; not every metric scored every clip: "
            + ", ".join(f"{label} {k}/{n}" for label, k in partial) + " (reasons above)")


def score_folders(pred_dir: str | Path, gt_dir: str | Path | None = None, *,
                  metrics: str | Sequence[str] | None = None,
                  out_dir: str | Path | None = None, align: str = "gt",
                  dataset: str | None = None, emotion: str | None = None,
                  identity_dir: str | Path | None = None, audio_dir: str | Path | None = None,
                  device: str | None = None, cache_dir: str | Path | None = None,
                  seed: int = 0, progress: bool = False,
                  openface_pred: str | Path | None = None,
                  openface_gt: str | Path | None = None,
                  echo: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Score the generated videos in ``pred_dir`` against the real ones in ``gt_dir`` (paired
    by file name, aligned as ``align`` says; see the module docstring) and return the per-clip
    table: index ``clip_id``, one float column per metric column, NaN where a clip has no
    value. ``table.attrs["summary"]`` holds the summary (``aggregate``: each column's value
    over the clips, `bench.results`) and ``table.attrs["skipped"]`` the clips that could not
    be scored, with their reasons.

    ``metrics``: names (a list or ``"psnr,ssim"``; default: every registered metric);
    ``out_dir``: also write ``scores.csv``, ``summary.json`` and ``leaderboard.md`` there
    (default: write nothing); ``dataset``: whose trained judges to use (LSE, EmoAcc, AU);
    ``emotion``: the emotion every clip was asked for (EmoAcc); ``openface_pred`` and
    ``openface_gt``: folders of OpenFace CSVs (``<clip>.csv``) of the generated and the real
    videos, the AU metric's labels (both or neither). ``echo`` receives one line per skipped
    clip or warning (default: standard error).

    Example::

        import bench
        table = bench.score_folders("generated/", "real/", metrics=["psnr", "ssim"])
        table["psnr"].mean(), table.attrs["summary"]["aggregate"]["psnr"]["value"]
    """
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]

    def path(value: str | Path | None) -> Path | None:
        return None if value is None else Path(value)

    cfg = ScoreConfig(pred_dir=Path(pred_dir), gt_dir=path(gt_dir),
                      identity_dir=path(identity_dir), audio_dir=path(audio_dir),
                      out_dir=path(out_dir), metrics=list(metrics) if metrics else None,
                      align=align, dataset=dataset, emotion=emotion, device=device,
                      cache_dir=path(cache_dir), seed=seed, progress=progress,
                      openface_pred=path(openface_pred), openface_gt=path(openface_gt))
    result = run_score(cfg, echo or (lambda line: print(line, file=sys.stderr)))
    table = result.table
    table.attrs["summary"] = result.summary
    table.attrs["skipped"] = dict(result.skipped)
    return table
