"""SyncNet, the audio-visual synchronisation judge behind LSE-D / LSE-C (SPEC section 5).

The network is the one of Chung and Zisserman 2016 ("Out of time: automated lip sync in the
wild", ACCV workshops), in the layout of the reference code ``joonson/syncnet_python``
(``SyncNetModel.S``): two streams that embed

- the lips: 5 consecutive 224x224 face crops, ``(B, 3, 5, 224, 224)`` float, BGR channel order
  (the reference reads frames with OpenCV), raw 0-255 values, no normalisation;
- the audio: 20 MFCC frames (0.2 s) of 13 coefficients, ``(B, 1, 13, 20)`` float, computed
  from int16-scale samples (see :mod:`bench.core.audio`);

into 1024-d vectors whose Euclidean distance is small when lips and audio are in sync. How a
clip is cut into these windows is :mod:`bench.core.sync_windows`; the embeddings of every
window and the offset search over them are :mod:`bench.judges.syncnet_offsets`.

Module names, layer order, kernel sizes, strides, paddings and BatchNorm layers are exactly
the reference's, so the official ``syncnet_v2.model`` (a torch-saved state dict with keys
such as ``netcnnaud.0.weight``) loads unchanged with ``strict=True``.

Weights are never downloaded. :func:`load_syncnet` looks for them, in this order:

1. the ``path`` argument (``--syncnet-weights``);
2. the file named by ``$TALKBENCH_SYNCNET_WEIGHTS``;
3. ``<weights dir>/syncnet_v2.model`` (the official file, put there by the user);
4. ``<weights dir>/syncnet_talkbench.pt`` (a SyncNet trained by talkbench).

Only when none of these exists does the LSE metric (:mod:`bench.metrics.lse`) use the SyncNet
talkbench trained on the dataset being scored (:mod:`bench.judges.syncnet_train`, cached by
:mod:`bench.judges.store`), loaded by :func:`load_syncnet` too.

The weights dir is ``$TALKBENCH_WEIGHTS``, or ``~/.cache/talkbench/weights``. A JSON file beside
a weights file (``<file>.json``, e.g. ``syncnet_talkbench.pt.json``) describes where it came
from; its fields go into the provenance. Random weights (:func:`random_syncnet`) exist for the
tests only: metrics never fall back to them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from bench.core.devices import resolve_device
from bench.core.weights import sha256_of_file, weights_dir

EMBED_DIM = 1024
"""Size of the lip and audio embeddings (``num_layers_in_fc_layers`` in the reference)."""

OFFICIAL_WEIGHTS_NAME = "syncnet_v2.model"
TRAINED_WEIGHTS_NAME = "syncnet_talkbench.pt"
SYNCNET_WEIGHTS_ENV = "TALKBENCH_SYNCNET_WEIGHTS"

JUDGE_NAME = "SyncNet (Chung and Zisserman 2016)"


class SyncNet(nn.Module):
    """SyncNet with exactly the modules of syncnet_python's ``S`` (see the module docstring).

    ``netcnnaud`` + ``netfcaud`` embed MFCC windows, ``netcnnlip`` + ``netfclip`` embed lip
    windows. The modules are created in the reference's order so the state dict lists its keys
    in the same order.
    """

    def __init__(self, embed_dim: int = EMBED_DIM) -> None:
        super().__init__()
        # Audio stream: (B, 1, 13, 20) -> (B, 512, 1, 1).
        self.netcnnaud = nn.Sequential(
            nn.Conv2d(1, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=(1, 1), stride=(1, 1)),
            nn.Conv2d(64, 192, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)),
            nn.BatchNorm2d(192),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=(3, 3), stride=(1, 2)),
            nn.Conv2d(192, 384, kernel_size=(3, 3), padding=(1, 1)),
            nn.BatchNorm2d(384),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=(3, 3), padding=(1, 1)),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=(3, 3), padding=(1, 1)),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=(3, 3), stride=(2, 2)),
            nn.Conv2d(256, 512, kernel_size=(5, 4), padding=(0, 0)),
            nn.BatchNorm2d(512),
            nn.ReLU(),
        )
        self.netfcaud = nn.Sequential(
            nn.Linear(512, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(),
            nn.Linear(512, embed_dim),
        )
        self.netfclip = nn.Sequential(
            nn.Linear(512, 512),
            nn.BatchNorm1d(512),
            nn.ReLU(),
            nn.Linear(512, embed_dim),
        )
        # Lip stream: (B, 3, 5, 224, 224) -> (B, 512, 1, 1, 1).
        self.netcnnlip = nn.Sequential(
            nn.Conv3d(3, 96, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=0),
            nn.BatchNorm3d(96),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(96, 256, kernel_size=(1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)),
            nn.BatchNorm3d(256),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            nn.Conv3d(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
            nn.BatchNorm3d(256),
            nn.ReLU(inplace=True),
            nn.Conv3d(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
            nn.BatchNorm3d(256),
            nn.ReLU(inplace=True),
            nn.Conv3d(256, 256, kernel_size=(1, 3, 3), padding=(0, 1, 1)),
            nn.BatchNorm3d(256),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2)),
            nn.Conv3d(256, 512, kernel_size=(1, 6, 6), padding=0),
            nn.BatchNorm3d(512),
            nn.ReLU(inplace=True),
        )

    def forward_aud(self, mfcc_windows: torch.Tensor) -> torch.Tensor:
        """MFCC windows ``(B, 1, 13, 20)`` -> audio embeddings ``(B, 1024)``."""
        features = self.netcnnaud(mfcc_windows)
        return self.netfcaud(features.flatten(1))

    def forward_lip(self, frame_windows: torch.Tensor) -> torch.Tensor:
        """Lip windows ``(B, 3, 5, 224, 224)`` (BGR, 0-255) -> lip embeddings ``(B, 1024)``."""
        features = self.netcnnlip(frame_windows)
        return self.netfclip(features.flatten(1))

    def forward(self, frame_windows: torch.Tensor,
                mfcc_windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both embeddings: ``(forward_lip(frames), forward_aud(mfcc))``."""
        return self.forward_lip(frame_windows), self.forward_aud(mfcc_windows)


class SyncNetWeightsMissing(FileNotFoundError):
    """No SyncNet weights were found; the message says where to put them."""


@contextlib.contextmanager
def full_fp32_convolutions() -> Iterator[None]:
    """Run cuDNN convolutions in full float32 (no TF32) inside the block, then restore.

    PyTorch lets cuDNN use TF32 (10-bit mantissa, about 1e-3 relative error per product) for
    float32 convolutions by default on Ampere and newer GPUs. Over 6 layers that can move
    distances of about 10 by more than the 1e-3 to which LSE is meant to match the float32
    reference, so SyncNet's forward passes use full float32.
    """
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved


def missing_weights_message(dataset: str | None = None) -> str:
    """The reason LSE is unavailable when no weights were found, saying how to get some:
    the official file, or a SyncNet trained on ``dataset`` (when the run names one)."""
    folder = weights_dir()
    train = (f"train one on {dataset} with `bench judges train syncnet --dataset {dataset}`"
             if dataset else
             "train one with `bench judges train syncnet --dataset <dataset>` and score "
             "with --dataset <dataset>")
    return (f"no SyncNet weights: put {OFFICIAL_WEIGHTS_NAME} in {folder} (or pass "
            f"--syncnet-weights / set ${SYNCNET_WEIGHTS_ENV}), or {train}")


def find_syncnet_weights(path: str | os.PathLike[str] | None = None) -> Path:
    """The weights file to use, in the order of the module docstring.

    Raises :class:`SyncNetWeightsMissing` when an explicitly named file does not exist or
    when none of the default places has one.
    """
    explicit = path if path is not None else os.environ.get(SYNCNET_WEIGHTS_ENV) or None
    if explicit is not None:
        explicit_path = Path(explicit).expanduser()
        if not explicit_path.is_file():
            raise SyncNetWeightsMissing(f"no SyncNet weights: {explicit_path} does not exist")
        return explicit_path
    for name in (OFFICIAL_WEIGHTS_NAME, TRAINED_WEIGHTS_NAME):
        candidate = weights_dir() / name
        if candidate.is_file():
            return candidate
    raise SyncNetWeightsMissing(missing_weights_message())


# Classes a whole-model file may contain. syncnet_python's ``SyncNetModel.save`` pickles the
# module object itself (``torch.save(model)``), which names the class ``SyncNetModel.S``; we
# unpickle that name as our SyncNet (same submodules) and keep only its state dict. Loading
# stays ``weights_only=True``: nothing outside this list can be constructed from the file.
_WHOLE_MODEL_CLASSES: list = [
    SyncNet,
    (SyncNet, "SyncNetModel.S"),
    nn.Sequential,
    nn.Conv2d,
    nn.Conv3d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.ReLU,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.Linear,
]


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The SyncNet state dict stored in ``path``, on the CPU.

    Accepts what syncnet_python's ``loadParameters`` accepts (a torch-saved state dict, as
    ``syncnet_v2.model`` is), a whole model saved with ``torch.save(model)`` (syncnet_python's
    ``SyncNetModel.save``, or a talkbench :class:`SyncNet`), and a checkpoint dict with the
    state dict under ``"state_dict"``.
    """
    try:
        with torch.serialization.safe_globals(_WHOLE_MODEL_CLASSES):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, ... for bad files
        # Keep torch's reason (after "WeightsUnpickler error:"), not its generic preamble.
        text = str(err).partition("WeightsUnpickler error:")[2] or str(err)
        detail = next((line.strip() for line in text.splitlines() if line.strip()),
                      err.__class__.__name__)[:200]
        raise ValueError(
            f"{path}: not a SyncNet weights file torch can load safely ({detail}). State dicts "
            f"load from any torch version, whole pickled models from torch >= 1.6; to use an "
            f"older whole-model file you trust, convert it once: torch.save(torch.load(path, "
            f"weights_only=False).state_dict(), 'syncnet_v2.model')") from err
    if isinstance(loaded, nn.Module):
        return dict(loaded.state_dict())
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if isinstance(loaded, Mapping) and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        # Keep a state dict's _metadata: BatchNorm uses it to accept files saved before
        # torch 0.4.1, which have no num_batches_tracked entries.
        return loaded  # type: ignore[return-value]
    raise ValueError(f"{path}: holds a {type(loaded).__name__}, not a SyncNet state dict or model")


def read_provenance_sidecar(path: Path) -> dict[str, str]:
    """Fields of ``<path>.json`` when it exists (e.g. written by ``bench judges train``)."""
    sidecar = path.with_name(path.name + ".json")
    if not sidecar.is_file():
        return {}
    fields = json.loads(sidecar.read_text(encoding="utf-8"))
    if not isinstance(fields, dict):
        raise ValueError(f"{sidecar}: expected a JSON object")
    return {str(key): str(value) for key, value in fields.items()}


def load_syncnet(path: str | os.PathLike[str] | None = None,
                 device: str | torch.device | None = None) -> tuple[SyncNet, dict[str, str]]:
    """Load SyncNet weights (see the module docstring for where they are looked for).

    Returns the network in eval mode on ``device`` (CUDA when available by default) and its
    provenance: ``judge``, ``source``, ``file``, ``sha256`` (plus the sidecar's fields).
    Raises :class:`SyncNetWeightsMissing` when there are none, ``ValueError`` for a file that
    is not a SyncNet state dict, and ``RuntimeError`` (from ``load_state_dict(strict=True)``)
    when its keys or shapes differ from the reference architecture.
    """
    file = find_syncnet_weights(path)
    net = SyncNet()
    net.load_state_dict(read_state_dict(file), strict=True)
    net.eval().to(resolve_device(device))

    sha256 = sha256_of_file(file)
    sidecar = read_provenance_sidecar(file)
    if "sha256" in sidecar and sidecar["sha256"] != sha256:
        raise ValueError(f"{file}: its provenance JSON names sha256 {sidecar['sha256']}, "
                         f"but the file's is {sha256}")
    if sidecar:
        source = sidecar.get("source", "talkbench-trained")
    elif file.name == OFFICIAL_WEIGHTS_NAME:
        source = "syncnet_python syncnet_v2.model (user-supplied)"
    else:
        source = "user-supplied file"
    provenance = {**sidecar, "judge": JUDGE_NAME, "source": source, "file": str(file),
                  "sha256": sha256}
    return net, provenance


def random_syncnet(seed: int = 0,
                   device: str | torch.device | None = None) -> tuple[SyncNet, dict[str, str]]:
    """A SyncNet with seeded random weights, in eval mode. For tests and benchmarks only.

    BatchNorm running statistics are randomised too, so that eval mode is not a no-op.
    """
    generator = torch.Generator().manual_seed(seed)
    net = SyncNet()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                module.bias.normal_(0.0, 0.01, generator=generator)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)
                module.running_mean.normal_(0.0, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
        # Bring the embeddings to the size real SyncNet distances have (about 5-15): the inputs
        # are raw 0-255 pixels and int16-scale MFCCs (about +-40).
        net.netcnnlip[0].weight /= 255.0
        net.netcnnaud[0].weight /= 30.0
        net.netfclip[-1].weight *= 0.1
        net.netfcaud[-1].weight *= 0.1
    net.eval().to(resolve_device(device))
    return net, {"judge": JUDGE_NAME, "source": f"random weights, seed {seed} (tests only)",
                 "file": "", "sha256": ""}
