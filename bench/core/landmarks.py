"""68-point face landmarks for every frame of a clip: detect once, then track (dlib).

Running dlib's HOG face detector on every full-size frame costs ~10 ms a frame (360x288),
more than everything else in preprocessing. ``detect_landmarks`` instead:

1. detects faces on a downscaled frame (longest side ``detect_max_side``; full size as a
   fallback when nothing is found there) and keeps the biggest confident face;
2. fits the 68-point shape predictor in that box (~1.5 ms), then refits it twice in boxes
   placed from its own landmarks (``box_from_points``: where the detector puts its box
   relative to a face's landmarks, measured once), because boxes found on the downscaled
   frame are coarse;
3. on the next frame, fits the predictor in a box placed from the previous frame's
   landmarks the same way;
4. detects again every ``redetect_every`` frames, and at once when the track looks lost:
   the landmark spread changes by more than 25% or the centroid jumps by more than half the
   spread in one frame, most points leave the image, or the face no longer looks like the
   face at the last detection. That last check matters: the shape predictor always returns a
   face-shaped fit, even on noise, so geometry alone never notices a face that is gone. It
   correlates a 16x16 grey patch sampled over the brows, eyes and nose (points 17-47) with
   the patch at the last detection (GRID: >= 0.84 within a clip, another speaker 0.57-0.73,
   noise or a blank frame about 0).

Frames where no face is found get NaN rows. ``detect_landmarks_per_frame`` is the slow
reference (detect + predict on every full-size frame), used to check the tracker.
"""

from __future__ import annotations

import numpy as np

from bench.core import dlib_models

Box = tuple[float, float, float, float]  # left, top, right, bottom in full-frame pixels

# Track-loss thresholds (per frame, at 25 fps).
MAX_SPREAD_CHANGE = 1.25  # landmark spread may grow or shrink by at most this factor
MAX_CENTROID_JUMP = 0.5  # centroid may move by at most this fraction of the spread
MIN_SPREAD_PX = 4.0  # a spread below this is a collapsed fit
MIN_PATCH_CORRELATION = 0.5  # appearance vs the last detection, below this the face is gone
PATCH_SIDE = 16  # appearance patch: PATCH_SIDE x PATCH_SIDE grey samples

# Where dlib's detector puts its box relative to the 68 landmarks it leads to: centre offset
# (x, y) and size (w, h) in units of the landmark spread (RMS distance from the centroid).
# Measured on full-size detections of the GRID samples and skimage's astronaut: offset
# (-0.07..0.01, -0.15..-0.03), size 2.48..2.96 (x offset set to 0 by symmetry). Boxes for the
# predictor are built from landmarks with it.
DETECTOR_BOX_GEOMETRY = np.array([0.0, -0.12, 2.75, 2.75])
REFINE_STEPS = 2  # refits after a detection, each in a box placed from the previous fit


def _downscale(frame: np.ndarray, factor: int) -> np.ndarray:
    """Block-mean downscale of an (H, W, 3) uint8 frame by an integer factor.

    Rows and columns past the last whole block are dropped.
    """
    if factor <= 1:
        return frame
    h, w = (frame.shape[0] // factor) * factor, (frame.shape[1] // factor) * factor
    total = np.zeros((h // factor, w // factor, frame.shape[2]), dtype=np.uint16)
    for dy in range(factor):
        for dx in range(factor):
            total += frame[dy:h:factor, dx:w:factor]
    return ((total + factor * factor // 2) // (factor * factor)).astype(np.uint8)


def detect_faces(frame: np.ndarray, detect_max_side: int = 240, upsample: int = 0) -> list[Box]:
    """Face boxes in ``frame`` (H,W,3 uint8 RGB), the chosen face first.

    Detection runs on a copy downscaled by an integer factor so its longest side is at most
    ``detect_max_side``; if nothing is found there, the full-size frame is tried. The chosen
    face is the biggest among the confident detections (score at least half the best score),
    so a faint false detection (e.g. a round badge) does not win by size alone.
    """
    detector = dlib_models.frontal_face_detector()
    factor = max(1, -(-max(frame.shape[:2]) // max(1, detect_max_side)))
    for f in ([factor, 1] if factor > 1 else [1]):
        rects, scores, _ = detector.run(_downscale(frame, f), upsample, 0.0)
        if len(rects) == 0:
            continue
        best = max(scores)
        boxes = [(r.left() * f, r.top() * f, (r.right() + 1) * f - 1, (r.bottom() + 1) * f - 1)
                 for r, score in zip(rects, scores, strict=True) if score >= 0.5 * best]
        return sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    return []


def fit_landmarks(frame: np.ndarray, box: Box) -> np.ndarray:
    """68 (x, y) landmarks of the face in ``box``, float32 (68, 2)."""
    dlib = dlib_models.import_dlib()
    predictor = dlib_models.shape_predictor_68()
    left, top, right, bottom = (int(round(v)) for v in box)
    shape = predictor(frame, dlib.rectangle(left, top, right, bottom))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def _centre_spread(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centroid and RMS distance of the points from it."""
    centre = points.mean(axis=0)
    spread = float(np.sqrt(((points - centre) ** 2).sum(axis=1).mean()))
    return centre, spread


def box_geometry(box: Box, points: np.ndarray) -> np.ndarray:
    """The box's centre offset and size in units of the landmark spread."""
    centre, spread = _centre_spread(points)
    box_centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    size = np.array([box[2] - box[0], box[3] - box[1]])
    return np.concatenate([(box_centre - centre) / spread, size / spread])


def box_from_points(points: np.ndarray) -> Box:
    """A detector-like box for the face whose landmarks are ``points``."""
    centre, spread = _centre_spread(points)
    cx, cy = centre + DETECTOR_BOX_GEOMETRY[:2] * spread
    half_w, half_h = DETECTOR_BOX_GEOMETRY[2:] * spread / 2
    return (cx - half_w, cy - half_h, cx + half_w, cy + half_h)


def _fit_from_detection(frame: np.ndarray, box: Box) -> np.ndarray:
    """Fit in a detector box, then refit in boxes built from the fit.

    Boxes from the downscaled detector are coarse (its smallest window is 80 pixels, and its
    pyramid steps by 5/6); refitting makes the result independent of that.
    """
    points = fit_landmarks(frame, box)
    for _ in range(REFINE_STEPS):
        points = fit_landmarks(frame, box_from_points(points))
    return points


def _face_patch(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-norm grey samples on a grid over the brows, eyes and nose (17-47)."""
    region = points[17:48]
    low, high = region.min(axis=0), region.max(axis=0)
    xs = np.linspace(low[0], high[0], PATCH_SIDE).round().astype(int).clip(0, frame.shape[1] - 1)
    ys = np.linspace(low[1], high[1], PATCH_SIDE).round().astype(int).clip(0, frame.shape[0] - 1)
    patch = frame[ys[:, None], xs[None, :]].astype(np.float32).mean(axis=-1).ravel()
    patch -= patch.mean()
    return patch / (np.linalg.norm(patch) + 1e-6)


def _looks_lost(prev: np.ndarray, cur: np.ndarray, height: int, width: int) -> bool:
    """True when ``cur`` is not a plausible next-frame fit of the face at ``prev``."""
    prev_centre, prev_spread = _centre_spread(prev)
    cur_centre, cur_spread = _centre_spread(cur)
    if cur_spread < MIN_SPREAD_PX:
        return True
    ratio = cur_spread / prev_spread
    if not 1 / MAX_SPREAD_CHANGE <= ratio <= MAX_SPREAD_CHANGE:
        return True
    if np.linalg.norm(cur_centre - prev_centre) > MAX_CENTROID_JUMP * prev_spread:
        return True
    inside = ((cur[:, 0] >= 0) & (cur[:, 0] < width) & (cur[:, 1] >= 0) & (cur[:, 1] < height))
    return inside.mean() < 0.5


def detect_landmarks(frames: np.ndarray, *, detect_max_side: int = 240, upsample: int = 0,
                     redetect_every: int = 10) -> np.ndarray:
    """Landmarks (T, 68, 2) float32 (x, y) for frames (T, H, W, 3) uint8; NaN where no face.

    Detect, then track (see the module docstring). A frame where the detector runs and finds
    nothing is NaN and the next frame is detected again.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T,H,W,3) uint8, got {frames.shape} {frames.dtype}")
    num, height, width = frames.shape[:3]
    out = np.full((num, 68, 2), np.nan, dtype=np.float32)
    prev: np.ndarray | None = None  # last frame's landmarks, None when not tracking
    reference: np.ndarray | None = None  # appearance patch at the last detection
    since_detect = 0
    for t in range(num):
        frame = frames[t]
        points = None
        if prev is not None and since_detect < redetect_every:
            tracked = fit_landmarks(frame, box_from_points(prev))
            same_face = float(_face_patch(frame, tracked) @ reference) >= MIN_PATCH_CORRELATION
            if same_face and not _looks_lost(prev, tracked, height, width):
                points = tracked
                since_detect += 1
        if points is None:  # first frame, periodic check, or the track looks lost
            boxes = detect_faces(frame, detect_max_side, upsample)
            if boxes:
                points = _fit_from_detection(frame, boxes[0])
                reference = _face_patch(frame, points)
                since_detect = 0
        if points is not None:
            out[t] = points
        prev = points
    return out


def detect_landmarks_per_frame(frames: np.ndarray, upsample: int = 0) -> np.ndarray:
    """Reference: full-size detection and prediction on every frame (slow); NaN if no face."""
    out = np.full((frames.shape[0], 68, 2), np.nan, dtype=np.float32)
    for t, frame in enumerate(frames):
        boxes = detect_faces(frame, detect_max_side=max(frame.shape), upsample=upsample)
        if boxes:
            out[t] = fit_landmarks(frame, boxes[0])
    return out
