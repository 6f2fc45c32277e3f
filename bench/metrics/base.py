"""The metrics core: what a metric receives (`Sample`), what it reports (`Column`), and the
update/compute lifecycle every metric shares (`Metric`). See SPEC section 5.

The shape follows torchmetrics: each metric has a pure functional core (e.g.
`bench.metrics.psnr.psnr_frames`) and a thin stateful class around it. The class keeps the
per-clip values as its state (sufficient statistics for a mean), so `compute()` can aggregate
and two metrics of the same kind could be merged by concatenating their values.

A metric also owns its reduction over a test set: each `Column` declares its `Aggregation`
(mean over clips, pooled over frames/events, or set-level), and `Metric.reduce` turns the
clips' results (values, cached states, reasons) into one `ColumnResult` per column
(`bench.results`); `bench.aggregate` only gathers the clips' results and asks each metric.

Typical use::

    metric = get_metric("psnr")           # device: cuda when present, else cpu
    for sample in samples:
        try:
            row = metric.update(sample)   # {"psnr": 31.2}
        except MetricUnavailable as err:
            print(sample.clip_id, err)    # one-line reason, the run goes on
    metric.compute()                      # {"psnr": 30.8, ...}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from bench.results import (
    Aggregation,
    ClipResult,
    ColumnResult,
    first_reason,
    mean_over_clips,
    reason_examples,
)
from bench.stats import bootstrap_statistic

NEEDS = frozenset({"gt", "audio", "identity", "emotion"})
"""Everything a metric may need besides the generated frames."""


VideoKey = str
"""Which picture of a `Sample` a shared intermediate belongs to: ``"pred"``, ``"gt"`` or
``"identity"``."""


@dataclass
class ClipShared:
    """Per-clip intermediates that several metrics use, computed once per clip (SPEC 5: one
    decode and one face/landmark pass per clip): the first metric that needs one computes it
    and stores it here, the others reuse it. A new `Sample` (and so a new `ClipShared`) is made
    per clip, so the cache dies with it.
    """

    device_frames: dict[tuple[VideoKey, str, str], torch.Tensor] = field(default_factory=dict)
    """``(video, device, dtype)`` -> (T, 3, H, W) tensor of the frames, values 0..255
    (`to_device_frames`)."""
    landmarks: dict[VideoKey, np.ndarray] = field(default_factory=dict)
    """video -> dlib 68-point landmarks, (T, 68, 2) float32 with NaN rows where no face
    (`bench.metrics.shared.sample_landmarks`); ``"identity"``: (68, 2) of the image."""
    face_embeddings: dict[VideoKey, np.ndarray] = field(default_factory=dict)
    """video -> dlib face descriptors, (T, 128) float64 with NaN rows where no face
    (`bench.metrics.acd`); ``"identity"``: (128,)."""
    au_labels: dict[tuple[str, VideoKey], Any] = field(default_factory=dict)
    """``(labeller, video)`` -> per-frame `bench.judges.au_rules.AULabels` (`bench.metrics.au`)."""


@dataclass
class Sample:
    """One clip, with everything any metric may need.

    ``by_emotion`` (the EmoAcc sweep, set by the runner): requested emotion -> the frames
    generated for it, one entry per emotion of ``bench.EMOTIONS``. ``shared`` holds the
    per-clip intermediates several metrics share (`ClipShared`).
    """

    clip_id: str
    pred: np.ndarray  # (T, H, W, 3) uint8 RGB generated frames, 25 fps
    gt: np.ndarray | None = None  # (T, H, W, 3) uint8 ground-truth frames, same shape
    audio: np.ndarray | None = None  # (T * 640,) float32, 16 kHz
    identity: np.ndarray | None = None  # (H, W, 3) uint8 identity image
    emotion: str | None = None  # requested emotion (one of bench.EMOTIONS)
    by_emotion: dict[str, np.ndarray] | None = None  # requested emotion -> generated frames
    shared: ClipShared = field(default_factory=ClipShared)


@dataclass(frozen=True)
class Column:
    """One reported number of a metric (a metric may report several, e.g. LSE-D and LSE-C)."""

    name: str  # key in the per-clip rows, e.g. "psnr"
    label: str  # leaderboard header, e.g. "PSNR"
    higher_is_better: bool | None  # None: neither (e.g. a rate compared to ground truth)
    fmt: str = ".3f"
    detail: bool = False  # True: in the CSV and summary, left out of the Markdown leaderboard
    aggregation: Aggregation = Aggregation.MEAN_OVER_CLIPS  # how the test-set value is made


@dataclass(frozen=True)
class MetricContext:
    """What a metric knows about the run it scores in: the dataset whose trained judges it uses
    (`bench.judges.store.trained_judge`) and the cache they live in (None: the default).

    ``judge_identity`` and ``judge_budget``: the run's train identity
    (`bench.judges.store.train_identity`) and budget, which name exactly the judges trained
    for this run (None: the dataset's most recent judge, as ``bench score --dataset`` uses).
    ``test_speakers``: the speakers of the clips the run scores; a judge that trained on any
    of them is refused (`trained_judge` gives it, its ``load`` raises MetricUnavailable)."""

    dataset: str | None = None
    cache_dir: Path | None = None
    judge_identity: str | None = None
    judge_budget: str | None = None
    test_speakers: frozenset[str] = frozenset()

    def judge_key(self, name: str) -> str | None:
        """The cache key of judge ``name`` for this run (None without a train identity)."""
        if self.judge_identity is None:
            return None
        from bench.judges.store import judge_key

        return judge_key(name, self.judge_identity, self.judge_budget)

    def trained_judge(self, name: str):
        """The harness-trained judge ``name`` for this run, or None when none is trained; its
        ``load`` raises MetricUnavailable (one line) when it saw the test speakers."""
        if self.dataset is None:
            return None
        from bench.judges.store import trained_judge

        return trained_judge(name, self.dataset, self.cache_dir, key=self.judge_key(name),
                             test_speakers=self.test_speakers, error=MetricUnavailable)


class MetricUnavailable(Exception):
    """The value cannot be computed for this clip; the message is the reason shown to users."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means CUDA when it is available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_frames(frames: Any, what: str) -> np.ndarray:
    """Check that ``frames`` is a non-empty (T, H, W, 3) uint8 array; raise MetricUnavailable."""
    if frames is None:
        raise MetricUnavailable(f"no {what} for this clip")
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise MetricUnavailable(f"{what} must be (T, H, W, 3) RGB frames, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise MetricUnavailable(f"{what} must be uint8, got {arr.dtype}")
    if arr.shape[0] == 0:
        raise MetricUnavailable(f"{what} has no frames")
    return arr


def check_pair(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """The generated and ground-truth frames of a full-reference metric (PSNR, SSIM).

    Raises MetricUnavailable with a one-line reason when the ground truth is missing or the
    two videos do not have the same shape.
    """
    pred = check_frames(sample.pred, "generated video")
    gt = check_frames(sample.gt, "ground-truth video")
    if pred.shape != gt.shape:
        raise MetricUnavailable(
            f"generated video {pred.shape} and ground truth {gt.shape} differ in shape "
            "(T, H, W, 3); full-reference metrics need them frame-aligned at the same size"
        )
    return pred, gt


def to_device_frames(sample: Sample, key: str, device: str | torch.device,
                     dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``getattr(sample, key)`` as a (T, 3, H, W) tensor on ``device``, cached in
    ``sample.shared.device_frames`` so that metrics of the same clip share one host-to-device
    transfer.

    The uint8 frames are moved once per device and converted to ``dtype`` there; the converted
    tensor is cached too (both under ``(key, device, dtype)``). Values stay in
    0..255 (no scaling). A float64 copy of a long clip is 8 bytes per pixel, so metrics that
    process the clip in chunks (PSNR, SSIM) ask for ``dtype=torch.uint8`` and convert one chunk
    at a time.
    """
    device = torch.device(device)
    cache = sample.shared.device_frames
    name = (key, str(device), str(dtype))
    if name in cache:
        return cache[name]
    raw_name = (key, str(device), str(torch.uint8))
    if raw_name not in cache:
        frames = check_frames(getattr(sample, key), key)
        if not frames.flags.writeable:  # torch.from_numpy warns on read-only arrays
            frames = frames.copy()
        tensor = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
        cache[raw_name] = tensor.permute(0, 3, 1, 2).contiguous()  # (T, 3, H, W)
    if dtype != torch.uint8:
        cache[name] = cache[raw_name].to(dtype)
    return cache[name]


def as_frames_tensor(frames: np.ndarray | torch.Tensor,
                     device: str | torch.device | None = None) -> torch.Tensor:
    """A numpy array or tensor as a tensor on ``device`` (``None``: a tensor stays where it is,
    a numpy array goes to CUDA when available, else the CPU). Used by the functional cores."""
    if isinstance(frames, torch.Tensor):
        return frames if device is None else frames.to(device)
    return torch.from_numpy(np.array(frames, copy=True)).to(resolve_device(device))


# Frames per chunk are chosen so that one chunk holds about this many pixel values (T*C*H*W).
# On the CPU small chunks stay in cache (measured fastest at 1-2 frames of 128x128 RGB); on a
# GPU large chunks keep it busy while bounding memory (~1-2 GB of float64 intermediates).
CHUNK_VALUES = {"cpu": 2**17, "cuda": 2**23}


def frame_chunks(n_frames: int, values_per_frame: int, device: torch.device) -> list[slice]:
    """Split ``range(n_frames)`` into slices so that memory stays bounded for long clips."""
    budget = CHUNK_VALUES.get(device.type, CHUNK_VALUES["cpu"])
    step = max(1, budget // max(1, values_per_frame))
    return [slice(start, min(start + step, n_frames)) for start in range(0, n_frames, step)]


class Metric:
    """Base class: subclasses set the class attributes and write `score`.

    ``update(sample)`` scores one clip, remembers the values and returns them;
    ``compute()`` aggregates over every updated clip (default: mean of the finite per-clip
    values, in float64; a column with no finite value gives NaN); ``reset()`` forgets them.

    Over a test set scored clip by clip (the runner, ``bench score``), each clip's results are
    kept (per-clip values for `Aggregation.MEAN_OVER_CLIPS` columns, a `clip_state` for
    `Aggregation.POOLED` and `Aggregation.SET_LEVEL` columns) and `reduce` makes one
    `ColumnResult` per column from them.
    """

    name: ClassVar[str]
    columns: ClassVar[tuple[Column, ...]]
    needs: ClassVar[frozenset[str]] = frozenset()  # subset of NEEDS
    on_ground_truth: ClassVar[bool] = True  # False: scoring the real videos is meaningless
    version: ClassVar[str] = "1"  # bump when the per-clip values change
    context: MetricContext = MetricContext()  # set by `bench.metrics.get_metric`
    judge_name: ClassVar[str | None] = None
    """Name of the harness-trained judge this metric can use (`bench.judges.store.JUDGES`)."""

    def __init__(self, device: str | torch.device | None = None) -> None:
        self.device = resolve_device(device)
        self._values: dict[str, list[float]] = {c.name: [] for c in self.columns}

    # -- what subclasses write ---------------------------------------------------------------
    def score(self, sample: Sample) -> dict[str, float]:
        """Per-clip values keyed by column name; raise MetricUnavailable when impossible."""
        raise NotImplementedError

    def needs_trained_judge(self) -> bool:
        """True when the metric would use a harness-trained judge and none is cached for the
        context's dataset (the runner then trains one on the train split)."""
        if self.judge_name is None or self.context.dataset is None:
            return False
        return self.context.trained_judge(self.judge_name) is None

    def clip_state(self, sample: Sample) -> dict[str, np.ndarray]:
        """Metrics with pooled or set-level columns: what one clip contributes (arrays, cached
        on disk per clip by `bench.aggregate.score_sample`)."""
        raise NotImplementedError(f"{self.name} has no per-clip state")

    def compute_from_states(self, states: list[tuple[dict[str, np.ndarray], str | None]]
                            ) -> dict[str, float | MetricUnavailable]:
        """Metrics with pooled or set-level columns: those columns' values over the
        ``(clip_state, emotion)`` of the given clips; a column that cannot be computed holds
        the `MetricUnavailable` saying why (or the call raises it for every column)."""
        raise NotImplementedError(f"{self.name} has no per-clip state")

    def provenance(self) -> dict[str, str]:
        """What produced the numbers: reference matched, settings, judge and weights, device."""
        return {"metric": f"{self.name} v{self.version}", "device": str(self.device)}

    # -- reduction over a test set (`bench.aggregate`) ---------------------------------------
    @property
    def has_clip_values(self) -> bool:
        """Whether a clip's result holds per-clip values (`update`): some column is a mean
        over clips."""
        return any(c.aggregation is Aggregation.MEAN_OVER_CLIPS for c in self.columns)

    @property
    def has_clip_state(self) -> bool:
        """Whether a clip's result holds a `clip_state`: some column is pooled or set-level."""
        return any(c.aggregation is not Aggregation.MEAN_OVER_CLIPS for c in self.columns)

    def reduce(self, clips: list[ClipResult], seed: int = 0) -> dict[str, ColumnResult]:
        """Every column's value over the test set from the clips' results (column order).

        Default: `Aggregation.MEAN_OVER_CLIPS` columns by `bench.results.mean_over_clips`;
        the other columns from `compute_from_states` over every clip's state, with a
        bootstrap interval from resampling clips for `Aggregation.POOLED` columns and none
        for `Aggregation.SET_LEVEL` ones. Subclasses may override (e.g. to resample a cheap
        set-level statistic).
        """
        out = self.reduce_states(clips, seed) if self.has_clip_state else {}
        for column in self.columns:
            if column.aggregation is Aggregation.MEAN_OVER_CLIPS:
                out[column.name] = mean_over_clips(clips, column.name, seed)
        return {column.name: out[column.name] for column in self.columns}

    def reduce_states(self, clips: list[ClipResult], seed: int = 0) -> dict[str, ColumnResult]:
        """The pooled and set-level columns from the clips' states (see `reduce`)."""
        columns = [c for c in self.columns if c.aggregation is not Aggregation.MEAN_OVER_CLIPS]
        states = [(c.state, c.emotion) for c in clips if c.state is not None]
        reasons = {c.clip_id: c.unavailable for c in clips
                   if c.state is None and c.unavailable is not None}
        if not states:
            reason = first_reason(reasons)
            return {c.name: ColumnResult.missing(c.aggregation.value, reason, reasons)
                    for c in columns}
        try:
            values = self.compute_from_states(states)
        except MetricUnavailable as err:
            return {c.name: ColumnResult.missing(c.aggregation.value, str(err), reasons)
                    for c in columns}
        out: dict[str, ColumnResult] = {}
        for column in columns:
            value = values[column.name]
            kind = column.aggregation.value
            if isinstance(value, MetricUnavailable):
                out[column.name] = ColumnResult.missing(kind, str(value), reasons)
            elif column.aggregation is Aggregation.POOLED:
                estimate = bootstrap_statistic(states, self._statistic(column.name), seed=seed)
                out[column.name] = ColumnResult.from_estimate(kind, estimate, reasons)
            else:
                out[column.name] = ColumnResult(
                    kind=kind, value=float(value), n=len(states), n_unavailable=len(reasons),
                    unavailable_examples=reason_examples(reasons))
        return out

    def _statistic(self, column: str):
        """``states -> float``: the column over some clips' states (NaN when unavailable)."""

        def statistic(states) -> float:
            value = self.compute_from_states(states)[column]
            return math.nan if isinstance(value, MetricUnavailable) else float(value)

        return statistic

    # -- the lifecycle ---------------------------------------------------------------------
    def update(self, sample: Sample) -> dict[str, float]:
        """Score one clip, keep its values for `compute`, and return them (python floats).

        Every mean-over-clips column needs a value (NaN makes the clip unavailable); pooled
        and set-level columns come from `clip_state`, so their per-clip values are optional
        (NaN where missing in what `compute` keeps)."""
        values = {k: float(v) for k, v in self.score(sample).items()}
        for column in self.columns:
            if column.aggregation is not Aggregation.MEAN_OVER_CLIPS:
                continue
            if column.name not in values:
                raise RuntimeError(f"{self.name} returned no value for column {column.name!r}")
            if math.isnan(values[column.name]):
                raise MetricUnavailable(f"{column.label} is NaN for this clip")
        for column in self.columns:
            self._values[column.name].append(values.get(column.name, math.nan))
        return values

    def compute(self) -> dict[str, float]:
        """Dataset-level value per column: mean of the finite per-clip values (float64)."""
        out = {}
        for column in self.columns:
            values = np.asarray(self._values[column.name], dtype=np.float64)
            finite = values[np.isfinite(values)]
            out[column.name] = float(finite.mean()) if finite.size else math.nan
        return out

    def reset(self) -> None:
        """Forget every updated clip."""
        for values in self._values.values():
            values.clear()

    @property
    def n_updates(self) -> int:
        """How many clips were scored since the last reset."""
        return len(self._values[self.columns[0].name]) if self.columns else 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={str(self.device)!r})"
