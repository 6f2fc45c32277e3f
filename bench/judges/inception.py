"""The Inception-v3 network FID is defined on: pytorch-fid's port of the TF 2015-12-05 graph.

FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local
Nash equilibrium") compares the 2048-d pool3 features of the TensorFlow Inception-v3 graph
``inception-2015-12-05``. ``pytorch-fid`` (M. Seitzer) ported that graph to PyTorch; its
numbers are the ones talking-face papers report. :class:`FIDInceptionV3` is that network,
built from torchvision's Inception-v3 building blocks exactly as pytorch-fid builds it, so that
pytorch-fid's weights file ``pt_inception-2015-12-05-6726825d.pth`` loads unchanged
(``strict=True``). It differs from torchvision's Inception-v3 in four places:

* 1008 output classes (the TF graph's label set) in ``fc``;
* the average pools inside the A, C and first E blocks (``Mixed_5b-d``, ``Mixed_6b-e``,
  ``Mixed_7b``) do not count the zero padding (TF's ``avg_pool`` with SAME padding:
  ``count_include_pad=False``);
* the pool branch of the last E block (``Mixed_7c``) is a 3x3 *max* pool (as in the TF graph);
* there is no auxiliary classifier and no ``transform_input``.

Input handling, as pytorch-fid's ``InceptionV3`` with its defaults: uint8 RGB -> float32 in
[0, 1] (``/ 255``, as torchvision's ``ToTensor``) -> bilinear resize to 299x299
(``align_corners=False``, no antialiasing) -> ``2 x - 1``. The pool3 features are the global
average of ``Mixed_7c``'s output.

Weights are never downloaded. They come from a file the user supplies, looked up in order:

1. the ``path`` argument (``--fid-weights PATH``);
2. the file named by ``$TALKBENCH_FID_WEIGHTS``;
3. ``<weights dir>/pt_inception-2015-12-05-6726825d.pth``, where the weights dir is
   ``$TALKBENCH_WEIGHTS`` or ``~/.cache/talkbench/weights``.

Without a file, :class:`FIDWeightsMissing` says where to put it; FID is then unavailable (it is
never computed on another network under the name FID). The file's sha256 goes into the
provenance; the file name's ``6726825d`` is the first 8 hex digits of the official file's hash
by the torch-hub naming convention, so a file whose sha256 starts differently is flagged as
"not verified" there.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.inception import (
    BasicConv2d,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
)

from bench.core.weights import sha256_of_file, weights_dir

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
"""pytorch-fid's weights file, as its release names it."""

WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               + WEIGHTS_NAME)
"""Where users can download the file themselves (talkbench never does)."""

WEIGHTS_HASH_PREFIX = "6726825d"
"""sha256 prefix in the official file name (torch-hub convention)."""

FID_WEIGHTS_ENV = "TALKBENCH_FID_WEIGHTS"

JUDGE_NAME = "pytorch-fid Inception-v3 (TF inception-2015-12-05 port), pool3 2048-d"

INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008


class FIDWeightsMissing(RuntimeError):
    """No Inception weights file was found; the message says where to put one."""


# ---------------------------------------------------------------------------------------------
# The network


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3 average pool, stride 1, SAME padding, padded zeros not counted (TF's behaviour)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(InceptionA):
    """torchvision's InceptionA (35x35 grid) with TF's average pool in the pool branch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b5, b3, bp], dim=1)


class FIDInceptionC(InceptionC):
    """torchvision's InceptionC (17x17 grid, factorised 7x7) with TF's average pool."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            b7d = layer(b7d)
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b7, b7d, bp], dim=1)


class FIDInceptionE(InceptionE):
    """torchvision's InceptionE (8x8 grid) with the TF graph's pool branch.

    ``pool="avg"`` (``Mixed_7b``): average pool without the padded zeros;
    ``pool="max"`` (``Mixed_7c``): 3x3 max pool, stride 1, padding 1.
    """

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__(in_channels)
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], dim=1)
        if self.pool == "avg":
            pooled = _tf_avg_pool(x)
        else:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, b3d, bp], dim=1)


class FIDInceptionV3(nn.Module):
    """pytorch-fid's FID Inception-v3; ``forward`` gives the pool3 features ``(N, 2048)``.

    The attribute names are torchvision's ``Inception3`` names, so pytorch-fid's state dict
    (``Conv2d_1a_3x3.conv.weight``, ..., ``Mixed_7c.branch_pool.bn.running_var``, ``fc.weight``,
    ``fc.bias``) loads with ``strict=True``. ``fc`` (1008 classes) is only there for that; the
    features are taken before it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N, 3, 299, 299) float in [-1, 1] (see :func:`preprocess`) -> (N, 2048)."""
        for layer in (self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3, self.maxpool1,
                      self.Conv2d_3b_1x1, self.Conv2d_4a_3x3, self.maxpool2,
                      self.Mixed_5b, self.Mixed_5c, self.Mixed_5d,
                      self.Mixed_6a, self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e,
                      self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = layer(x)
        return F.adaptive_avg_pool2d(x, output_size=(1, 1)).flatten(1)  # pool3


def preprocess(frames: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) uint8 RGB -> (N, 3, 299, 299) float32 in [-1, 1], as pytorch-fid.

    ``/ 255`` (torchvision's ``ToTensor``), bilinear resize (``align_corners=False``), then
    ``2 x - 1``.
    """
    if frames.dtype != torch.uint8:
        raise ValueError(f"expected uint8 frames, got {frames.dtype}")
    x = frames.to(torch.float32).div(255)
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


@torch.inference_mode()
def pool3_features(net: FIDInceptionV3, frames: torch.Tensor | np.ndarray,
                   batch_size: int = 50) -> torch.Tensor:
    """Pool3 features ``(N, 2048)`` float32 of uint8 RGB frames, on the network's device.

    ``frames``: a tensor ``(N, 3, H, W)`` or a numpy array ``(N, H, W, 3)`` (talkbench's frame
    layout); processed ``batch_size`` frames at a time (pytorch-fid's default is 50).
    """
    device = next(net.parameters()).device
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected (N, H, W, 3) RGB frames, got shape {frames.shape}")
        # (N, 3, H, W) in contiguous memory, as torchvision's ToTensor gives pytorch-fid
        frames = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()
    out = []
    for start in range(0, frames.shape[0], batch_size):
        batch = frames[start:start + batch_size].to(device)
        out.append(net(preprocess(batch)))
    if not out:
        return torch.zeros((0, FEATURE_DIM), dtype=torch.float32, device=device)
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------
# Weights


def missing_weights_message() -> str:
    """Why FID is unavailable when no weights file was found."""
    return (f"FID needs the pytorch-fid Inception weights {WEIGHTS_NAME}; put the file in "
            f"{weights_dir()} or pass --fid-weights PATH (or set ${FID_WEIGHTS_ENV}); "
            f"download it yourself from {WEIGHTS_URL}")


def find_fid_weights(path: str | os.PathLike[str] | None = None) -> Path:
    """The weights file to use, in the order of the module docstring."""
    explicit = path if path is not None else (os.environ.get(FID_WEIGHTS_ENV) or None)
    if explicit is not None:
        file = Path(explicit).expanduser()
        if not file.is_file():
            raise FIDWeightsMissing(f"FID weights file {file} does not exist "
                                    f"(FID needs pytorch-fid's {WEIGHTS_NAME})")
        return file
    candidate = weights_dir() / WEIGHTS_NAME
    if candidate.is_file():
        return candidate
    raise FIDWeightsMissing(missing_weights_message())


def load_fid_inception(path: str | os.PathLike[str] | None = None,
                       device: str | torch.device = "cpu"
                       ) -> tuple[FIDInceptionV3, dict[str, str]]:
    """Build :class:`FIDInceptionV3`, load pytorch-fid's weights strictly, move it to
    ``device`` in eval mode. Returns the network and its provenance (``judge``, ``file``,
    ``sha256``, ``verified``).

    Raises :class:`FIDWeightsMissing` when no file is found and ``ValueError`` when the file is
    not a state dict of this architecture.
    """
    file = find_fid_weights(path)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
        raise ValueError(f"{file}: not a weights file torch can load safely ({err})") from err
    net = FIDInceptionV3()
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ValueError(f"{file}: not pytorch-fid's FID Inception state dict "
                         f"({str(err).splitlines()[0]})") from err
    net.eval().requires_grad_(False).to(device)
    sha256 = sha256_of_file(file)
    verified = sha256.startswith(WEIGHTS_HASH_PREFIX)
    provenance = {
        "judge": JUDGE_NAME,
        "file": str(file),
        "sha256": sha256,
        "verified": ("yes: sha256 starts with the official file's 6726825d" if verified else
                     f"NO: sha256 does not start with {WEIGHTS_HASH_PREFIX}, so this is not "
                     f"known to be pytorch-fid's {WEIGHTS_NAME}"),
    }
    return net, provenance
