"""The network LPIPS is defined on: AlexNet features with the ``lpips`` package's v0.1 heads.

LPIPS (Zhang, Isola, Efros, Shechtman and Wang 2018, "The unreasonable effectiveness of deep
features as a perceptual metric", Sect. 3 and Eq. 1) compares two images through the
activations of a pretrained network. talkbench computes the variant everyone reports, the
``lpips`` package's defaults (``lpips.LPIPS(net="alex", version="0.1")``):

1. images scaled to [-1, 1] (uint8 ``x`` -> ``x / 127.5 - 1``, as ``lpips.im2tensor``), then the
   package's ``ScalingLayer``: ``(x - shift) / scale`` with ``shift = (-0.030, -0.088, -0.188)``
   and ``scale = (0.458, 0.448, 0.450)`` (the ImageNet statistics in [-1, 1] units);
2. the five ReLU outputs of torchvision's AlexNet ``features`` (after conv1..conv5: module
   indices 1, 4, 7, 9 and 11; 64, 192, 384, 256 and 256 channels);
3. each unit-normalised over channels (``x / (||x||_2 + 1e-10)``, the package's
   ``normalize_tensor``), the two images' features subtracted and squared;
4. a learnt 1x1 convolution to one channel per layer (the "lin" layers, Eq. 1's ``w_l``), the
   spatial mean, and the sum over the five layers.

Weights are never downloaded. LPIPS needs two files the user supplies, in one folder:

* ``alexnet-owt-7be5be79.pth``: torchvision's ImageNet AlexNet weights (a state dict with keys
  ``features.{0,3,6,8,10}.{weight,bias}`` and ``classifier.*``; only the features are used).
  Its sha256 must start with ``7be5be79``, as torchvision's own hash check requires;
* ``alex.pth``: the ``lpips`` package's linear layers, the file ``lpips/weights/v0.1/alex.pth``
  of the package (keys ``lin0.model.1.weight`` .. ``lin4.model.1.weight``), sha256
  :data:`LIN_SHA256` (measured on ``lpips`` 0.1.4 as installed from PyPI).

The folder is, in order: the ``path`` argument; ``$TALKBENCH_LPIPS_WEIGHTS`` (``--lpips-weights
DIR`` sets it); ``<weights dir>/lpips`` (the weights dir is ``$TALKBENCH_WEIGHTS`` or
``~/.cache/talkbench/weights``). A file whose sha256 differs is refused (:class:`ValueError`),
unless the caller passes ``verify=False`` (or ``$TALKBENCH_LPIPS_UNVERIFIED=1`` is set): then it
is loaded and the provenance says "NO" under ``verified`` (the tests load random weights so).
Without the files, :class:`LPIPSWeightsMissing` says which file to put where; LPIPS is then
unavailable, never computed on another network.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn

from bench.core.weights import sha256_of_file, weights_dir

ALEXNET_NAME = "alexnet-owt-7be5be79.pth"
"""torchvision's ImageNet AlexNet weights file (``AlexNet_Weights.IMAGENET1K_V1``)."""

ALEXNET_URL = "https://download.pytorch.org/models/" + ALEXNET_NAME
"""Where users can download it themselves (talkbench never does)."""

ALEXNET_HASH_PREFIX = "7be5be79"
"""sha256 prefix in the file name, checked as torchvision's ``check_hash`` does."""

LIN_NAME = "alex.pth"
"""The ``lpips`` package's v0.1 linear layers for AlexNet (``lpips/weights/v0.1/alex.pth``)."""

LIN_SHA256 = "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"
"""sha256 of ``lpips/weights/v0.1/alex.pth`` in the ``lpips`` 0.1.4 package."""

LPIPS_WEIGHTS_ENV = "TALKBENCH_LPIPS_WEIGHTS"
"""Folder holding :data:`ALEXNET_NAME` and :data:`LIN_NAME`."""

LPIPS_UNVERIFIED_ENV = "TALKBENCH_LPIPS_UNVERIFIED"
"""Set to ``1`` to load files whose sha256 differs (flagged in the provenance)."""

JUDGE_NAME = "LPIPS v0.1, AlexNet (torchvision ImageNet weights + lpips package lin layers)"

CHANNELS = (64, 192, 384, 256, 256)
"""Channels of the five AlexNet ReLU outputs LPIPS compares."""

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
"""The ``lpips`` package's ``ScalingLayer`` constants."""

NORM_EPS = 1e-10
"""The ``lpips`` package's ``normalize_tensor`` epsilon."""


class LPIPSWeightsMissing(RuntimeError):
    """A weights file is missing; the message says which file to put where."""


# ---------------------------------------------------------------------------------------------
# The network


class LPIPSAlex(nn.Module):
    """LPIPS v0.1 on AlexNet; ``forward(x0, x1)`` gives ``(N,)`` distances.

    ``features`` has torchvision's AlexNet ``features`` layout (so its state dict loads under
    the same keys); ``lin0`` .. ``lin4`` hold the package's 1x1 convolutions under its keys
    (``lin0.model.1.weight``; ``model.0`` is the package's dropout, inactive in eval mode).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
        )
        for k, channels in enumerate(CHANNELS):
            self.add_module(f"lin{k}", nn.Sequential(nn.Dropout(),
                                                     nn.Conv2d(channels, 1, 1, bias=False)))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def layer_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five ReLU outputs (after modules 1, 4, 7, 9, 11) of ``x`` in [-1, 1]."""
        x = (x - self.shift) / self.scale
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in (1, 4, 7, 9, 11):
                out.append(x)
        return out

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """LPIPS between two (N, 3, H, W) float batches in [-1, 1]: ``(N,)``."""
        total = torch.zeros(x0.shape[0], dtype=x0.dtype, device=x0.device)
        for k, (f0, f1) in enumerate(zip(self.layer_outputs(x0), self.layer_outputs(x1),
                                         strict=True)):
            f0 = f0 / (f0.square().sum(dim=1, keepdim=True).sqrt() + NORM_EPS)
            f1 = f1 / (f1.square().sum(dim=1, keepdim=True).sqrt() + NORM_EPS)
            lin = getattr(self, f"lin{k}")
            total = total + lin((f0 - f1).square()).mean(dim=(2, 3)).flatten()
        return total


def to_lpips_input(frames: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) uint8 RGB -> float32 in [-1, 1] (``x / 127.5 - 1``, ``lpips.im2tensor``)."""
    if frames.dtype != torch.uint8:
        raise ValueError(f"expected uint8 frames, got {frames.dtype}")
    return frames.to(torch.float32) / 127.5 - 1.0


@torch.inference_mode()
def lpips_frames(net: LPIPSAlex, pred: torch.Tensor, gt: torch.Tensor,
                 batch_size: int = 16) -> torch.Tensor:
    """Per-frame LPIPS ``(T,)`` float32 (on the CPU) of two (T, 3, H, W) uint8 videos."""
    if pred.shape != gt.shape:
        raise ValueError(f"shape mismatch: {tuple(pred.shape)} vs {tuple(gt.shape)}")
    device = next(net.parameters()).device
    out = []
    for start in range(0, pred.shape[0], batch_size):
        x0 = to_lpips_input(pred[start:start + batch_size].to(device))
        x1 = to_lpips_input(gt[start:start + batch_size].to(device))
        out.append(net(x0, x1).cpu())
    return torch.cat(out) if out else torch.zeros(0)


# ---------------------------------------------------------------------------------------------
# Weights


def find_lpips_weights(path: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """The (AlexNet file, lin file) to use, from the folder chosen as the module docstring says.
    Raises :class:`LPIPSWeightsMissing` naming the missing file(s) and the folder."""
    explicit = path if path is not None else (os.environ.get(LPIPS_WEIGHTS_ENV) or None)
    folder = Path(explicit).expanduser() if explicit is not None else weights_dir() / "lpips"
    alexnet, lin = folder / ALEXNET_NAME, folder / LIN_NAME
    missing = [p for p in (alexnet, lin) if not p.is_file()]
    if missing:
        raise LPIPSWeightsMissing(
            f"LPIPS needs {', '.join(str(p) for p in missing)}: put torchvision's AlexNet "
            f"weights {ALEXNET_NAME} (download it yourself from {ALEXNET_URL}) and the lpips "
            f"package's weights/v0.1/{LIN_NAME} (pip install lpips; sha256 {LIN_SHA256[:8]}...) "
            f"in one folder and pass --lpips-weights DIR (or set ${LPIPS_WEIGHTS_ENV}; default "
            f"folder {weights_dir() / 'lpips'})")
    return alexnet, lin


def _load_state(file: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
        raise ValueError(f"{file}: not a weights file torch can load safely ({err})") from err
    if not isinstance(state, dict):
        raise ValueError(f"{file}: not a state dict (got {type(state).__name__})")
    return state


def load_lpips(path: str | os.PathLike[str] | None = None,
               device: str | torch.device = "cpu",
               verify: bool | None = None) -> tuple[LPIPSAlex, dict[str, str]]:
    """Build :class:`LPIPSAlex` from the user's two files, in eval mode on ``device``.

    ``verify`` (None: true unless ``$TALKBENCH_LPIPS_UNVERIFIED`` is ``1``): refuse files whose
    sha256 is not the official one (:class:`ValueError` naming the file and both hashes).
    Returns the network and its provenance (``judge``, files, sha256s, ``verified``).
    Raises :class:`LPIPSWeightsMissing` when a file is missing and ``ValueError`` when a file
    is not a state dict of the expected layout.
    """
    if verify is None:
        verify = os.environ.get(LPIPS_UNVERIFIED_ENV, "") != "1"
    alexnet_file, lin_file = find_lpips_weights(path)
    alexnet_sha, lin_sha = sha256_of_file(alexnet_file), sha256_of_file(lin_file)
    official = (alexnet_sha.startswith(ALEXNET_HASH_PREFIX), lin_sha == LIN_SHA256)
    if verify and not official[0]:
        raise ValueError(f"{alexnet_file}: sha256 {alexnet_sha} does not start with "
                         f"{ALEXNET_HASH_PREFIX}, so it is not torchvision's {ALEXNET_NAME}")
    if verify and not official[1]:
        raise ValueError(f"{lin_file}: sha256 {lin_sha} is not {LIN_SHA256}, the lpips "
                         f"package's weights/v0.1/{LIN_NAME}")

    net = LPIPSAlex()
    alexnet = _load_state(alexnet_file)
    features = {k.removeprefix("features."): v for k, v in alexnet.items()
                if k.startswith("features.")}
    extra = [k for k in alexnet if not k.startswith(("features.", "classifier."))]
    lin = _load_state(lin_file)
    lin = {k.replace(".model.", ".", 1): v for k, v in lin.items()}
    try:
        if extra:
            raise RuntimeError(f"unexpected keys {extra[:3]}")
        net.features.load_state_dict(features, strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ValueError(f"{alexnet_file}: not torchvision's AlexNet state dict "
                         f"({str(err).splitlines()[0]})") from err
    try:
        lin_modules = nn.ModuleDict({f"lin{k}": getattr(net, f"lin{k}")
                                     for k in range(len(CHANNELS))})
        lin_modules.load_state_dict(lin, strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ValueError(f"{lin_file}: not the lpips package's v0.1 AlexNet lin layers "
                         f"({str(err).splitlines()[0]})") from err
    net.eval().requires_grad_(False).to(device)
    provenance = {
        "judge": JUDGE_NAME,
        "file": f"{alexnet_file}, {lin_file}",
        "sha256": f"{alexnet_sha}, {lin_sha}",
        "verified": ("yes: both files are the official ones" if all(official) else
                     "NO: sha256 differs from the official files (loaded unverified), so "
                     "these numbers are not LPIPS on the published weights"),
    }
    return net, provenance
