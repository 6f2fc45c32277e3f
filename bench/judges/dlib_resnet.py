"""dlib's face-recognition ResNet, evaluated in torch with the weights of dlib's own file.

dlib's ``dlib_face_recognition_resnet_model_v1.dat`` (shipped by ``face-recognition-models``)
runs on the CPU at ~55 ms a face on this project's machines, one face at a time, and was most
of the scoring stage's time (issue 13). This module reads the same file and runs the same
network in torch: batched over all faces of a clip, on a GPU when there is one, ~7 times faster
on one CPU core. The descriptors equal dlib's to ~4e-7 per component (float32 in both;
``tests/test_face_embedding_torch.py``).

The network (dlib's ``examples/dnn_face_recognition_ex.cpp``)::

    input_rgb_image_sized<150>: (pixel - (122.782, 117.001, 104.298)) / 256, RGB
    con 32 7x7 /2 (no padding) -> affine -> relu -> max_pool 3x3 /2 (no padding)
    3 x ares 32; ares_down 64 + 3 x ares 64; ares_down 128 + 2 x ares 128;
    ares_down 256 + 2 x ares 256; ares_down 256
    avg_pool_everything -> fc_no_bias 128

where ``ares`` is ``relu(x + affine(con3x3(relu(affine(con3x3(x))))))`` and ``ares_down`` the
same with the first convolution at stride 2 (no padding) and ``avg_pool 2x2 /2 (x)`` as the
skip path. dlib's ``add_prev`` adds tensors of different shapes by zero-padding both to the
larger size in every dimension (channels and rows/columns): the skip path of a down block has
half the channels, and at 8x8 -> 3x3 vs 4x4 the sum is 4x4. ``affine`` is a frozen batch norm,
``gamma * x + beta`` per channel.

The file format (dlib's ``serialize``): integers are one byte giving the byte count (high bit:
negative) then little-endian bytes; strings are an integer length then the bytes; tensors are
version 2, four integer dimensions, then raw little-endian float32 values. Layers are written
input first, each as its version string (``con_4``, ``affine_``, ``max_pool_2``,
``avg_pool_2``, ``fc_2``) followed by its fields: a convolution's parameter tensor (filters
(num_filters, k, nr, nc) then biases) and its num_filters, nr, nc, strides and paddings; an
affine layer's gamma then beta; the fc layer's num_outputs, num_inputs and its (num_inputs,
num_outputs) weights. The reader finds the layer records in file order, checks each against
the architecture above, and refuses a file that does not fit.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CHIP_SIZE = 150
INPUT_MEAN = (122.782, 117.001, 104.298)  # RGB, as serialised in the file's input layer
INPUT_SCALE = 256.0
STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
"""(channels, residual blocks, first block downsamples) of dlib's alevel4 .. alevel0."""

_RECORD = re.compile(rb"\x01(?P<n>[\x04-\x0c])(?P<s>(?:con|affine|fc|max_pool|avg_pool)_\d*)")


class FormatError(ValueError):
    """The file is not dlib's face-recognition ResNet in the expected format."""


@dataclass(frozen=True)
class Conv:
    weight: np.ndarray  # (num_filters, k, nr, nc) float32
    bias: np.ndarray  # (num_filters,)
    stride: int
    padding: int


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def integer(self, pos: int) -> tuple[int, int]:
        head = self.data[pos]
        size = head & 0x0F
        value = int.from_bytes(self.data[pos + 1:pos + 1 + size], "little")
        return (-value if head & 0x80 else value), pos + 1 + size

    def tensor(self, pos: int) -> tuple[np.ndarray, int]:
        version, pos = self.integer(pos)
        if version != 2:
            raise FormatError(f"tensor version {version} at byte {pos}, expected 2")
        dims = []
        for _ in range(4):
            value, pos = self.integer(pos)
            dims.append(value)
        count = int(np.prod(dims))
        if pos + 4 * count > len(self.data):
            raise FormatError(f"tensor of {count} values at byte {pos} runs past the file")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=pos)
        return values.astype(np.float32), pos + 4 * count


def read_layers(data: bytes) -> tuple[list[Conv], list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Convolutions, affine (gamma, beta) pairs and the fc weights (256, 128), in file order."""
    reader = _Reader(data)
    convs: list[Conv] = []
    affines: list[tuple[np.ndarray, np.ndarray]] = []
    fc: np.ndarray | None = None
    for match in _RECORD.finditer(data):
        name = match.group("s")
        if len(name) != match.group("n")[0]:
            continue
        pos = match.end()
        if name.startswith(b"con_"):
            params, pos = reader.tensor(pos)
            fields = []
            for _ in range(7):
                value, pos = reader.integer(pos)
                fields.append(value)
            filters, rows, cols, stride_y, stride_x, pad_y, pad_x = fields
            inputs = (params.size - filters) // (filters * rows * cols)
            if inputs * filters * rows * cols + filters != params.size or rows != cols \
                    or stride_y != stride_x or pad_y != pad_x:
                raise FormatError(f"unexpected convolution record {fields} ({params.size} values)")
            split = inputs * filters * rows * cols
            convs.append(Conv(params[:split].reshape(filters, inputs, rows, cols),
                              params[split:], stride_y, pad_y))
        elif name == b"affine_":
            params, pos = reader.tensor(pos)
            half = params.size // 2
            affines.append((params[:half], params[half:]))
        elif name.startswith(b"fc_"):
            outputs, pos = reader.integer(pos)
            inputs, pos = reader.integer(pos)
            params, pos = reader.tensor(pos)
            if params.size != inputs * outputs:
                raise FormatError(f"fc layer of {params.size} values, expected {inputs}x{outputs}")
            fc = params.reshape(inputs, outputs)
    expected = 1 + 2 * sum(blocks for _, blocks, _ in STAGES)
    if len(convs) != expected or len(affines) != expected or fc is None:
        raise FormatError(f"found {len(convs)} convolutions, {len(affines)} affine layers and "
                          f"{'an' if fc is not None else 'no'} fc layer; dlib's face ResNet "
                          f"has {expected}, {expected} and one")
    return convs, affines, fc


class DlibFaceResNet(nn.Module):
    """The 29-convolution ResNet of dlib's face recognition model (see the module doc)."""

    def __init__(self, convs: list[Conv], affines: list[tuple[np.ndarray, np.ndarray]],
                 fc: np.ndarray) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        self.gammas = nn.ParameterList()
        self.betas = nn.ParameterList()
        for conv, (gamma, beta) in zip(convs, affines, strict=True):
            layer = nn.Conv2d(conv.weight.shape[1], conv.weight.shape[0], conv.weight.shape[2],
                              stride=conv.stride, padding=conv.padding)
            layer.weight.data.copy_(torch.from_numpy(conv.weight))
            layer.bias.data.copy_(torch.from_numpy(conv.bias))
            self.convs.append(layer)
            self.gammas.append(nn.Parameter(torch.from_numpy(gamma).view(1, -1, 1, 1),
                                            requires_grad=False))
            self.betas.append(nn.Parameter(torch.from_numpy(beta).view(1, -1, 1, 1),
                                           requires_grad=False))
        self.fc = nn.Parameter(torch.from_numpy(fc), requires_grad=False)
        self.register_buffer("mean", torch.tensor(INPUT_MEAN).view(1, 3, 1, 1))
        self.requires_grad_(False)

    def _conv_affine(self, x: torch.Tensor, index: int) -> torch.Tensor:
        return self.convs[index](x) * self.gammas[index] + self.betas[index]

    @staticmethod
    def _add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """dlib's ``add_prev``: both zero-padded to the larger size in every dimension."""
        if a.shape == b.shape:
            return a + b
        out = a.new_zeros([max(p, q) for p, q in zip(a.shape, b.shape, strict=True)])
        out[:, :a.shape[1], :a.shape[2], :a.shape[3]] += a
        out[:, :b.shape[1], :b.shape[2], :b.shape[3]] += b
        return out

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        """(N, 3, 150, 150) RGB chips with values 0..255 -> (N, 128) descriptors."""
        x = (chips.to(self.mean.dtype) - self.mean) / INPUT_SCALE
        x = F.max_pool2d(F.relu(self._conv_affine(x, 0)), 3, 2)
        index = 1
        for _, blocks, downsamples in STAGES:
            for block in range(blocks):
                skip = F.avg_pool2d(x, 2, 2) if downsamples and block == 0 else x
                y = F.relu(self._conv_affine(x, index))
                y = self._conv_affine(y, index + 1)
                index += 2
                x = F.relu(self._add(y, skip))
        return x.mean(dim=(2, 3)) @ self.fc


@functools.cache
def load(path: str) -> DlibFaceResNet:
    """The network of the dlib model file at ``path`` (read once per process), in eval mode."""
    data = Path(path).read_bytes()
    return DlibFaceResNet(*read_layers(data)).eval()
