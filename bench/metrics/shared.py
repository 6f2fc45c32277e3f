"""Per-clip intermediates that several metrics share, computed once per clip.

Each accessor stores its result in a named field of ``Sample.shared`` (`ClipShared`), so the
first metric that needs (say) the landmarks of the generated frames pays for them and every
other metric of the same clip reuses them (SPEC 5: one decode and one landmark pass per clip).
"""

from __future__ import annotations

import numpy as np

from bench.metrics.base import MetricUnavailable, Sample, check_frames

# Frames whose longest side is below this are searched with the detector upsampled once:
# dlib's HOG detector finds faces of about 80 px and up, 40 px with one upsampling, and the
# harness's aligned crops (128 px, face about 75 px wide) sit right at that edge.
SMALL_FRAME_SIDE = 320


def sample_landmarks(sample: Sample, key: str = "pred") -> np.ndarray:
    """dlib 68-point landmarks (T, 68, 2) float32 (x, y) of ``sample.<key>`` frames.

    NaN rows where no face is found. Detect, then track (`bench.core.landmarks`), on the full
    frame: small frames (aligned crops) are searched with one detector upsampling. Cached in
    ``sample.shared.landmarks[key]``. Raises MetricUnavailable when no frame has a face.
    """
    cache = sample.shared.landmarks
    if key not in cache:
        from bench.core.landmarks import detect_landmarks

        frames = check_frames(getattr(sample, key), key)
        side = max(frames.shape[1:3])
        cache[key] = detect_landmarks(
            frames, detect_max_side=side, upsample=1 if side < SMALL_FRAME_SIDE else 0)
    landmarks = cache[key]
    if np.isnan(landmarks).any(axis=(1, 2)).all():
        what = "generated video" if key == "pred" else key
        raise MetricUnavailable(f"no face found in any frame of the {what}")
    return landmarks
