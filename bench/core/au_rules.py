"""The harness's own detector of the speech-related action units, from 68 dlib landmarks.

Pure landmark geometry (numpy only), so it lives in ``bench.core``: the AU metric's labeller
(`bench.judges.au_rules` re-exports every name here, and `bench.judges.au_classifier` trains
on these labels) and the ``au-tcsan`` generator's training labels (seed 004's pre-training
data, :mod:`bench.adapters.au_tcsan`, for clips without an OpenFace CSV) come from the same
rules, while the generator and
adapter layers, which may not import ``bench.judges``, read them from here.

Seed 004 (Chen et al., Sect. 3.1, Fig. 3) uses five speech-related AUs: AU10 upper lip raiser,
AU14 dimpler, AU20 lip stretcher, AU25 lips part, AU26 jaw drop, and labels their occurrence
per frame with OpenFace. Without OpenFace, talkbench labels them with the geometric rules
below (and trains the seed-004 AU classifier on those labels, `bench.judges.au_classifier`).

Geometry. Each frame's landmarks are put in an eye-aligned frame: origin at the midpoint of
the two eye centres (means of points 36-41 and 42-47), x along the line from the image-left
to the image-right eye centre, y perpendicular to it (down), and lengths in units of the
inter-ocular distance (IOD, the distance between the eye centres). So the rules do not depend
on the image size, the face size or in-plane head rotation.

Neutral reference. AU20 and AU26 are measured against the face at rest in the same clip:
the *rest frames* are the frames whose chin opening (``chin``, below) is at most its
``REST_PERCENTILE``-th percentile over the clip, i.e. the frames with the jaw most closed
(pauses before and after speech, bilabials), and a quantity's reference is its median over
the rest frames. This is the person-specific normalisation OpenFace's dynamic AU models use
(a per-video neutral estimate, Baltrusaitis et al. 2015), taken from the frames where the
mouth is most likely at rest. A clip needs ``MIN_FRAMES`` frames with a face. AU10 and AU14
are expressions that can last a whole clip (the reference would absorb them), so they use
absolute thresholds, which makes them depend on the person's rest face.

Rules (``THRESHOLDS``, lengths in IOD):

* AU25 lips part: inner-lip gap, mean vertical distance of the pairs 61-67, 62-66, 63-65,
  ``gap >= 0.06``. (The synthetic corpus labels AU25 with the same 0.06 on its own landmarks.)
* AU26 jaw drop: chin opening ``chin = y[8] - y[33]`` (chin below the nose base) above its
  rest reference by ``>= 0.10``. (Chin travel of the synthetic jaw channel at its AU26
  threshold, 0.45 x 0.22 IOD; dlib tracks the chin with a slope of about 1.)
* AU20 lip stretcher: mouth width ``x[54] - x[48]`` above its rest reference by ``>= 0.03``.
  dlib's fitted mouth width moves about a third as much as the true one (measured on the
  synthetic corpus: slope 0.33), hence the small threshold.
* AU10 upper lip raiser: the upper lip's top (mean y of 50, 51, 52) at most ``0.15`` below the
  nose base (33). At rest that distance is about 0.2 IOD on faces (the philtrum).
* AU14 dimpler: the lip corners pulled in relative to the lip body. ``corner_extent`` is how
  far the corners 48 and 54 reach beyond points 49 and 53, ``(x[54] - x[53] + x[49] - x[48])``,
  as a fraction of the mouth width; AU14 when ``<= 0.33``.

Quality on the synthetic corpus (per-frame F1 against its truth ``au``; see
``tests/test_metric_au.py`` and the report): AU25 and AU26 are reliable on dlib landmarks;
AU10 and AU20 are weak but above chance; AU14 is right on the true landmark geometry but not
better than chance on dlib landmarks, whose shape prior all but ignores the corner movement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AUS: tuple[str, ...] = ("AU10", "AU14", "AU20", "AU25", "AU26")
"""The speech-related AUs of seed 004, in its order."""

THRESHOLDS: dict[str, float] = {
    "AU10": 0.15,  # upper lip top to nose base <= (IOD)
    "AU14": 0.33,  # corner extent / mouth width <=
    "AU20": 0.03,  # mouth width - rest reference >= (IOD)
    "AU25": 0.06,  # inner-lip gap >= (IOD)
    "AU26": 0.10,  # chin opening - rest reference >= (IOD)
}

REST_PERCENTILE = 20.0
"""Rest frames: chin opening at most this percentile of the clip's frames."""

MIN_FRAMES = 10
"""Frames with a face a clip needs for its rest reference (0.4 s at 25 fps)."""


@dataclass
class AULabels:
    """Per-frame AU occurrence of one clip: ``occurrence`` (T, 5) bool in `AUS` order and
    ``valid`` (T,) bool (False: no face / the labeller failed; such frames carry no label)."""

    occurrence: np.ndarray
    valid: np.ndarray
    source: str = "landmark-rules"

    def __post_init__(self) -> None:
        occurrence = np.asarray(self.occurrence, dtype=bool)
        valid = np.array(self.valid, dtype=bool)  # copies: the caller's arrays stay as given
        if occurrence.ndim != 2 or occurrence.shape[1] != len(AUS):
            raise ValueError(f"occurrence must be (T, {len(AUS)}), got {occurrence.shape}")
        if valid.shape != occurrence.shape[:1]:
            raise ValueError(f"valid must be ({occurrence.shape[0]},), got {valid.shape}")
        self.occurrence = occurrence & valid[:, None]
        self.valid = valid

    def __len__(self) -> int:
        return int(self.valid.shape[0])


def eye_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks (T, 68, 2) in the eye-aligned frame: x, y each (T, 68) in IOD units.

    NaN rows (no face) stay NaN.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (T, 68, 2), got {lm.shape}")
    left = lm[:, 36:42].mean(axis=1)
    right = lm[:, 42:48].mean(axis=1)
    axis = right - left
    iod = np.hypot(axis[:, 0], axis[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        ex = axis / iod[:, None]
        ey = np.stack([-ex[:, 1], ex[:, 0]], axis=1)  # x rotated by +90 deg: image down
        rel = lm - ((left + right) / 2)[:, None, :]
        x = np.einsum("tpk,tk->tp", rel, ex) / iod[:, None]
        y = np.einsum("tpk,tk->tp", rel, ey) / iod[:, None]
    return x, y


def face_geometry(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """The per-frame quantities the rules use, each (T,) float64 (NaN where no face)."""
    x, y = eye_frame(landmarks)
    width = x[:, 54] - x[:, 48]
    with np.errstate(invalid="ignore", divide="ignore"):
        corner_extent = (x[:, 54] - x[:, 53] + x[:, 49] - x[:, 48]) / width
    return {
        "gap": (y[:, [65, 66, 67]] - y[:, [63, 62, 61]]).mean(axis=1),
        "chin": y[:, 8] - y[:, 33],
        "width": width,
        "upper_lip": y[:, [50, 51, 52]].mean(axis=1) - y[:, 33],
        "corner_extent": corner_extent,
    }


def rest_frames(chin: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(T,) bool: valid frames whose chin opening is at most the clip's REST_PERCENTILE."""
    cut = np.percentile(chin[valid], REST_PERCENTILE)
    return valid & (chin <= cut)


def au_rules(landmarks: np.ndarray) -> AULabels:
    """Per-frame occurrence of AU10, AU14, AU20, AU25, AU26 from (T, 68, 2) landmarks of one
    clip (NaN rows: no face). Raises ValueError when fewer than MIN_FRAMES frames have a face
    (no rest reference)."""
    geo = face_geometry(landmarks)
    valid = np.all([np.isfinite(v) for v in geo.values()], axis=0)
    if valid.sum() < MIN_FRAMES:
        raise ValueError(f"the AU rules need at least {MIN_FRAMES} frames with a face for the "
                         f"clip's rest reference, this clip has {int(valid.sum())}")
    rest = rest_frames(geo["chin"], valid)
    chin_ref = np.median(geo["chin"][rest])
    width_ref = np.median(geo["width"][rest])
    with np.errstate(invalid="ignore"):
        columns = {
            "AU10": geo["upper_lip"] <= THRESHOLDS["AU10"],
            "AU14": geo["corner_extent"] <= THRESHOLDS["AU14"],
            "AU20": geo["width"] - width_ref >= THRESHOLDS["AU20"],
            "AU25": geo["gap"] >= THRESHOLDS["AU25"],
            "AU26": geo["chin"] - chin_ref >= THRESHOLDS["AU26"],
        }
    occurrence = np.stack([columns[name] for name in AUS], axis=1) & valid[:, None]
    return AULabels(occurrence=occurrence, valid=valid, source="landmark-rules")


def describe() -> str:
    """One line for provenance: the rules and their thresholds."""
    t = THRESHOLDS
    return (f"talkbench landmark rules on 68 dlib points, lengths in inter-ocular distances: "
            f"AU25 inner-lip gap >= {t['AU25']}; AU26 chin opening >= {t['AU26']} above rest; "
            f"AU20 mouth width >= {t['AU20']} above rest; AU10 upper lip to nose base <= "
            f"{t['AU10']}; AU14 corner extent / mouth width <= {t['AU14']}; rest = median over "
            f"frames with chin opening <= its {REST_PERCENTILE:g}th percentile in the clip")


# ---------------------------------------------------------------------------------------------
# Agreement of two labellings (seed 004, Sect. 5: per-AU F1 and accuracy over frames)

COUNT_NAMES = ("tp", "fp", "fn", "tn")


def au_counts(pred: AULabels, truth: AULabels) -> np.ndarray:
    """Frame counts (5, 4) int64 per AU: [TP, FP, FN, TN] of ``pred`` against ``truth``, over
    the frames valid in both. The two labellings must have the same length."""
    if len(pred) != len(truth):
        raise ValueError(f"labels of {len(pred)} and {len(truth)} frames cannot be compared")
    both = pred.valid & truth.valid
    p = pred.occurrence[both]
    t = truth.occurrence[both]
    return np.stack([(p & t).sum(axis=0), (p & ~t).sum(axis=0), (~p & t).sum(axis=0),
                     (~p & ~t).sum(axis=0)], axis=1).astype(np.int64)


def au_scores(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-AU F1 and accuracy (fractions, float64) from (5, 4) [TP, FP, FN, TN] counts.

    ``F1 = 2 TP / (2 TP + FP + FN)`` (the positive class, "AU present"); NaN when the AU occurs
    in neither labelling (TP + FP + FN = 0). ``accuracy = (TP + TN) / frames``; NaN without
    frames. Seed 004 reports both per AU and their means over the five AUs (Table 6).
    """
    c = np.asarray(counts, dtype=np.float64)
    tp, fp, fn, tn = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        total = tp + fp + fn + tn
        acc = np.where(total > 0, (tp + tn) / total, np.nan)
    return f1, acc
