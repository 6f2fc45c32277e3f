"""Fixtures the benchmarks share: torch's thread count per case, and one clip of aligned faces."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import skimage.data
import skimage.transform
import torch

FACE_FRAMES = 75
FACE_SIDE = 128


@pytest.fixture
def torch_threads(request) -> Iterator[None]:
    """Parametrised indirectly: torch's thread count for the case (None: leave it)."""
    before = torch.get_num_threads()
    if request.param is not None:
        torch.set_num_threads(request.param)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def face_clip() -> np.ndarray:
    """75 aligned 128x128 face frames (3 s at 25 fps): crops of scikit-image's astronaut
    photograph drifting by a pixel a frame, every frame distinct. (75, 128, 128, 3) uint8."""
    image = skimage.data.astronaut()
    frames = []
    for i in range(FACE_FRAMES):
        crop = image[20 + i % 5:220 + i % 5, 140 + i % 7:340 + i % 7]
        resized = skimage.transform.resize(crop, (FACE_SIDE, FACE_SIDE), anti_aliasing=True)
        frames.append((resized * 255).round().astype(np.uint8))
    return np.stack(frames)
