"""AU F1 / AU accuracy: speech-related action units of the generated vs the real frames.

Seed 004 (Chen et al., Sect. 5, Tables 2-6) measures lip-sync by the occurrence of five
speech-related AUs (AU10 upper lip raiser, AU14 dimpler, AU20 lip stretcher, AU25 lips part,
AU26 jaw drop): OpenFace labels each AU present or absent in every generated frame, and the
labels are compared with those of the ground-truth frames. Per AU, over all frames of the
test set (frame-level binary occurrence, the ground-truth frames' labels as the reference)::

    F1_i  = 2 TP_i / (2 TP_i + FP_i + FN_i)          (the positive class, "AU present")
    Acc_i = (TP_i + TN_i) / frames                   (reported in %)
    AU F1 = mean_i F1_i,  AU Acc = mean_i Acc_i      (Table 6: Avg. = mean of the five AUs)

Pooling. F1 over a few frames is noisy (and undefined when an AU occurs in neither video), so
the reported numbers pool the frame counts TP/FP/FN/TN of every clip before dividing, as the
paper's test-set numbers do. Every column is `Aggregation.POOLED`: each clip's state is
its (5, 4) count table (``clip_state``) and ``compute_from_states`` pools them (with a
bootstrap interval from resampling clips, `Metric.reduce`); the per-clip
values (``score``/``update``, whose ``compute`` pools the same way) stay available for
analysis, with NaN for an AU whose F1 is undefined in the clip and the clip's ``au_f1`` the
mean over the AUs that are defined there. A pooled per-AU F1 that is still undefined (the AU
occurs in no frame of either side) is unavailable, and so is the average.

Which AUs. OpenFace labels all five. AU14 (dimpler) cannot be seen in 68 landmarks, so the
landmark-based labellers (the rules and the classifier trained on them) report it unavailable
(`NOT_IN_LANDMARKS`) and their AU F1 / AU Acc average the other four (``averaged_aus`` in the
provenance says which), never counting AU14 as a zero.

Labels (the same labeller on both sides of a clip), in this order of preference:

1. OpenFace 2.x CSVs the user made for the generated and the real videos, ``<clip_id>.csv``
   in one folder each (:meth:`AU.use_openface`; ``bench score --openface-pred DIR
   --openface-gt DIR``; the reader is `bench.core.openface`), as seed 004;
2. the seed-004 AU classifier trained by the harness on the dataset's train split
   (`bench.judges.au_classifier`, judge ``au``), on the frames' 68 shared landmarks;
3. talkbench's landmark rules (`bench.judges.au_rules`).

The provenance names the labeller; states made with different labellers are not pooled.
Frames without a label on either side (no face, OpenFace failure) are left out; generated and
real videos must have the same number of frames (the comparison is frame by frame).
``on_ground_truth`` is False: the real video against itself scores 1.0 by construction.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from bench.judges.au_rules import AUS, AULabels, au_counts, au_scores
from bench.metrics.base import (
    Aggregation,
    Column,
    Metric,
    MetricUnavailable,
    Sample,
    check_frames,
)

AU_NUMBERS = tuple(name[2:] for name in AUS)  # "10", "14", ...

SOURCES = ("openface", "au-classifier", "landmark-rules")

METRIC_VERSION = "2"
"""Bump when the per-clip values change for the same labeller (2: AU14 left out of the
averages of landmark-based labellers)."""

NOT_IN_LANDMARKS: dict[str, str] = {
    "AU14": "AU14 (dimpler) cannot be seen in 68 landmarks (the landmark rules' F1 on dlib "
            "landmarks is at chance on the synthetic corpus), so it is unavailable from the "
            "landmark-based labellers and left out of the AU average; give OpenFace CSVs "
            "(`bench score --openface-pred DIR --openface-gt DIR`) to score it",
}
"""AUs a labeller working from 68 landmarks (the rules, the AU classifier trained on their
labels) cannot see, with why; reported unavailable, never averaged in as a zero."""


def covered_aus(source: str) -> tuple[str, ...]:
    """The AUs ``source`` (one of `SOURCES`) labels and the averages cover."""
    if source == "openface":
        return AUS
    return tuple(au for au in AUS if au not in NOT_IN_LANDMARKS)


def _columns() -> tuple[Column, ...]:
    pooled = Aggregation.POOLED  # counts pooled over every frame of every clip
    cols = [Column("au_f1", "AU F1", higher_is_better=True, fmt=".3f", aggregation=pooled),
            Column("au_acc", "AU Acc (%)", higher_is_better=True, fmt=".2f",
                   aggregation=pooled)]
    for n in AU_NUMBERS:
        cols.append(Column(f"au{n}_f1", f"AU{n} F1", higher_is_better=True, fmt=".3f",
                           detail=True, aggregation=pooled))
        cols.append(Column(f"au{n}_acc", f"AU{n} Acc (%)", higher_is_better=True, fmt=".2f",
                           detail=True, aggregation=pooled))
    return tuple(cols)


def values_from_counts(counts: np.ndarray, aus: tuple[str, ...] = AUS) -> dict[str, float]:
    """Column values from pooled (5, 4) [TP, FP, FN, TN] counts: per-AU F1 and accuracy (%)
    of the AUs in ``aus`` (NaN for the others) and their means over ``aus``; NaN where
    undefined (the averages too, when any covered AU's value is undefined)."""
    f1, acc = au_scores(counts)
    covered = np.array([au in aus for au in AUS])
    out = {"au_f1": float(np.mean(f1[covered])), "au_acc": float(100.0 * np.mean(acc[covered]))}
    for n, au, f, a in zip(AU_NUMBERS, AUS, f1, acc, strict=True):
        out[f"au{n}_f1"] = float(f) if au in aus else math.nan
        out[f"au{n}_acc"] = float(100.0 * a) if au in aus else math.nan
    return out


def _unavailable_reason(column: str, counts: np.ndarray, aus: tuple[str, ...] = AUS) -> str:
    """Why a pooled column is NaN."""
    for au, why in NOT_IN_LANDMARKS.items():
        if au not in aus and column.startswith(f"au{au[2:]}_"):
            return why
    if counts.sum() == 0:
        return "no frame had AU labels on both the generated and the ground-truth side"
    f1, _ = au_scores(counts)
    missing = [au for au, f in zip(AUS, f1, strict=True) if math.isnan(f) and au in aus]
    if column == "au_f1":
        return (f"F1 of {', '.join(missing)} is undefined (the AU occurs in no generated and "
                f"no ground-truth frame), so the average over {', '.join(aus)} is too")
    return (f"{column}: the AU occurs in no generated and no ground-truth frame, so its F1 is "
            f"undefined")


class AU(Metric):
    """Speech-related AU occurrence of the generated frames against the ground truth."""

    name = "au"
    columns = _columns()
    needs = frozenset({"gt"})
    on_ground_truth = False  # the real video against itself is 1.0 by construction
    judge_name = "au"

    openface_pred_dir: Path | None = None
    """Folder of OpenFace CSVs of the generated videos, ``<clip_id>.csv`` (None: not used)."""
    openface_gt_dir: Path | None = None
    """Folder of OpenFace CSVs of the real videos, ``<clip_id>.csv``."""

    def __init__(self, device=None) -> None:
        super().__init__(device)
        self._counts: list[np.ndarray] = []
        self._classifier: Any = None

    # -- labels ------------------------------------------------------------------------------
    def use_openface(self, pred_dir: str | Path, gt_dir: str | Path) -> None:
        """Label with OpenFace CSVs: ``pred_dir/<clip_id>.csv`` for the generated video and
        ``gt_dir/<clip_id>.csv`` for the real one (FeatureExtraction ... -aus)."""
        self.openface_pred_dir = Path(pred_dir)
        self.openface_gt_dir = Path(gt_dir)

    def _trained(self):
        if self.context.dataset is None:
            return None
        return self.context.trained_judge(self.judge_name)

    def label_source(self) -> str:
        """Which labeller this metric uses: "openface", "au-classifier" or "landmark-rules"."""
        if self.openface_pred_dir is not None or self.openface_gt_dir is not None:
            return "openface"
        return "au-classifier" if self._trained() is not None else "landmark-rules"

    @property
    def version(self) -> str:  # type: ignore[override]
        """``METRIC_VERSION/labeller``: cached clip results are redone when the labeller
        changes (a classifier trained or retrained, other OpenFace folders)."""
        source = self.label_source()
        if source == "au-classifier":
            found = self._trained()
            tag = f"{source}-{(found.record.get('weights_sha256') or '?')[:12] if found else '?'}"
        elif source == "openface":
            import hashlib

            where = f"{self.openface_pred_dir}|{self.openface_gt_dir}".encode()
            tag = f"{source}-{hashlib.sha256(where).hexdigest()[:8]}"
        else:
            tag = source
        return f"{METRIC_VERSION}/{tag}"

    def needs_trained_judge(self) -> bool:
        """No classifier is needed when OpenFace labels are given."""
        return self.label_source() != "openface" and super().needs_trained_judge()

    def _openface_labels(self, sample: Sample, key: str, n_frames: int) -> AULabels:
        from bench.core.openface import OpenFaceError, read_openface_csv

        folder = self.openface_pred_dir if key == "pred" else self.openface_gt_dir
        what = "generated" if key == "pred" else "ground-truth"
        if folder is None:
            raise MetricUnavailable(f"no OpenFace folder for the {what} videos was given")
        path = Path(folder) / f"{sample.clip_id}.csv"
        if not path.is_file():
            raise MetricUnavailable(f"no OpenFace CSV for the {what} video: {path}")
        try:
            labels = read_openface_csv(path)
        except OpenFaceError as err:
            raise MetricUnavailable(str(err)) from err
        if len(labels) > n_frames:
            raise MetricUnavailable(f"{path} has {len(labels)} frames, the {what} video "
                                    f"{n_frames}")
        if len(labels) < n_frames:  # frames OpenFace did not write carry no label
            pad = n_frames - len(labels)
            labels = AULabels(np.pad(labels.occurrence, ((0, pad), (0, 0))),
                              np.pad(labels.valid, (0, pad)), labels.source)
        return labels

    def _classifier_judge(self):
        if self._classifier is None:
            found = self._trained()
            if found is None:
                raise MetricUnavailable("the AU classifier for this dataset is gone from the "
                                        "cache")
            self._classifier = found.load(self.device)
        return self._classifier

    def labels(self, sample: Sample, key: str) -> AULabels:
        """Per-frame AU labels of ``sample.<key>`` ("pred" or "gt") from `label_source`;
        cached in ``sample.shared.au_labels[(source, key)]``."""
        source = self.label_source()
        cache = sample.shared.au_labels
        if (source, key) in cache:
            return cache[(source, key)]
        frames = check_frames(getattr(sample, key), "generated video" if key == "pred"
                              else "ground-truth video")
        if source == "openface":
            labels = self._openface_labels(sample, key, frames.shape[0])
        else:
            from bench.metrics.shared import sample_landmarks

            landmarks = sample_landmarks(sample, key)
            if source == "au-classifier":
                labels = self._classifier_judge().predict(frames, landmarks)
            else:
                from bench.judges.au_rules import au_rules

                try:
                    labels = au_rules(landmarks)
                except ValueError as err:
                    raise MetricUnavailable(str(err)) from err
        cache[(source, key)] = labels
        return labels

    def clip_counts(self, sample: Sample) -> np.ndarray:
        """(5, 4) int64 [TP, FP, FN, TN] per AU of the clip's generated frames against its
        ground-truth frames (frames labelled on both sides)."""
        pred = check_frames(sample.pred, "generated video")
        gt = check_frames(sample.gt, "ground-truth video")
        if pred.shape[0] != gt.shape[0]:
            raise MetricUnavailable(
                f"generated video has {pred.shape[0]} frames and the ground truth "
                f"{gt.shape[0]}; AU occurrence is compared frame by frame")
        counts = au_counts(self.labels(sample, "pred"), self.labels(sample, "gt"))
        if counts[0].sum() == 0:
            raise MetricUnavailable("no frame has AU labels on both the generated and the "
                                    "ground-truth side")
        return counts

    # -- per clip ----------------------------------------------------------------------------
    def _clip_values(self, sample: Sample) -> tuple[dict[str, float], np.ndarray]:
        counts = self.clip_counts(sample)
        aus = covered_aus(self.label_source())
        values = values_from_counts(counts, aus)
        f1 = np.array([values[f"au{n}_f1"] for n in AU_NUMBERS])
        defined = np.isfinite(f1)
        values["au_f1"] = float(f1[defined].mean()) if defined.any() else math.nan
        values["au_f1_aus"] = float(defined.sum())
        values["au_frames"] = float(counts[0].sum())
        for n, row in zip(AU_NUMBERS, counts, strict=True):
            for what, count in zip(("tp", "fp", "fn", "tn"), row, strict=True):
                values[f"au{n}_{what}"] = float(count)
        return values, counts

    def score(self, sample: Sample) -> dict[str, float]:
        """The clip's own values (per-AU F1 NaN where undefined; ``au_f1`` the mean over the
        AUs defined in the clip, ``au_f1_aus`` how many), plus its counts ``au10_tp``, ..."""
        return self._clip_values(sample)[0]

    def update(self, sample: Sample) -> dict[str, float]:
        """Score one clip and keep its counts for `compute` (NaN per-AU F1 values allowed)."""
        values, counts = self._clip_values(sample)
        self._counts.append(counts)
        for column in self.columns:
            self._values[column.name].append(float(values[column.name]))
        return values

    def compute(self) -> dict[str, float]:
        """Values over every updated clip from the pooled counts (NaN where undefined)."""
        total = np.sum(self._counts, axis=0) if self._counts else np.zeros((len(AUS), 4))
        out = values_from_counts(total, covered_aus(self.label_source()))
        out["au_frames"] = float(total[0].sum())
        return out

    def reset(self) -> None:
        super().reset()
        self._counts.clear()

    # -- pooled over the test set (`Metric.reduce`) ---------------------------------------------
    def clip_state(self, sample: Sample) -> dict[str, np.ndarray]:
        """The clip's (5, 4) counts and the labeller that produced them."""
        return {"counts": self.clip_counts(sample), "source": np.array(self.label_source())}

    def compute_from_states(self, states: list[tuple[dict[str, np.ndarray], str | None]]
                            ) -> dict[str, float | MetricUnavailable]:
        """Pooled values over every clip's counts; a column that is undefined is a
        MetricUnavailable with the reason. States of different labellers are not pooled."""
        if not states:
            raise MetricUnavailable("no clip could be scored")
        sources = sorted({str(state["source"]) for state, _ in states})
        if len(sources) > 1:
            raise MetricUnavailable(f"clips were labelled by different labellers "
                                    f"({', '.join(sources)}); score them again")
        total = np.sum([np.asarray(state["counts"], dtype=np.int64) for state, _ in states],
                       axis=0)
        aus = covered_aus(sources[0])
        out: dict[str, float | MetricUnavailable] = {}
        for name, value in values_from_counts(total, aus).items():
            out[name] = (MetricUnavailable(_unavailable_reason(name, total, aus))
                         if math.isnan(value) else value)
        return out

    def provenance(self) -> dict[str, str]:
        source = self.label_source()
        if source == "openface":
            judge = (f"OpenFace 2.x CSVs (AUxx_c presence): generated {self.openface_pred_dir}, "
                     f"ground truth {self.openface_gt_dir}")
        elif source == "au-classifier":
            import json

            from bench.judges.au_classifier import CONFIG_FILE, describe_config

            found = self._trained()
            try:
                config = json.loads((found.directory / CONFIG_FILE).read_text())
                network = describe_config(config)
            except (AttributeError, OSError, ValueError):
                network = "seed-004 AU classifier"
            judge = (f"{network}; {found.describe() if found is not None else '?'}; "
                     f"inputs aligned on 68 dlib landmarks per frame")
        else:
            from bench.judges.au_rules import describe

            judge = describe()
        return {
            **super().provenance(),
            "labels": source,
            "reference": "seed 004 Sect. 5, Tables 2-6: per-AU frame-level occurrence F1 "
                         "(positive class) and accuracy (%) of generated vs ground-truth "
                         "labels, averaged over AU10, AU14, AU20, AU25, AU26",
            "averaged_aus": ", ".join(covered_aus(source)) + (
                "" if source == "openface" else
                " (AU14 unavailable: not visible in 68 landmarks)"),
            "settings": "TP/FP/FN/TN pooled over all frames of all clips before dividing; "
                        "frames unlabelled on either side left out; generated and real "
                        "videos must have equal length",
            "judge": judge,
        }
