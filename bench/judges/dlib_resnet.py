"""dlib's face-recognition ResNet, read from dlib's own model file and evaluated in torch.

dlib's ``dlib_face_recognition_resnet_model_v1.dat`` (shipped by ``face-recognition-models``)
runs one face at a time on the CPU at ~55 ms a face on this project's machines, and was most of
the scoring stage's time (issue 13). This module parses the same file (nothing converted or
downloaded) and runs the same network in torch, batched, on a GPU when asked: `read_network`
is the parser, `DlibFaceResNet` the torch module, `network` the cached pair of both. On the CPU
it computes in float32 as dlib does; on a GPU in float64 (`default_dtype`: no TF32). Parsing
takes ~0.07 s and building the module as long, so nothing is cached on disk.

The network is ``anet_type`` of dlib's ``examples/dnn_face_recognition_ex.cpp``::

    loss_metric<fc_no_bias<128, avg_pool_everything<alevel0<alevel1<alevel2<alevel3<alevel4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

    alevel4 = 3 x ares 32;  alevel3 = ares_down 64 + 3 x ares 64;
    alevel2 = ares_down 128 + 2 x ares 128;  alevel1 = ares_down 256 + 2 x ares 256;
    alevel0 = ares_down 256
    ares      = relu<add_prev1<block<tag1<x>>>>
    ares_down = relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<stride 2, tag1<x>>>>>>>
    block     = affine<con 3x3 /1 <relu<affine<con 3x3 /stride <x>>>>>

`architecture` writes this type out layer by layer and the parser checks the file against it.
dlib's semantics that a torch port has to copy (dlib/dnn/layers.h, dlib/cuda/cpu_dlib.cpp):

* ``input_rgb_image_sized``: ``(pixel - avg) / 256.0`` per channel in RGB order, ``avg`` the
  float32 means stored in the file (122.782, 117.001, 104.298);
* ``con``/pooling padding defaults to ``size // 2`` at stride 1 and 0 at any other stride
  (so the 7x7 /2 stem and the 3x3 /2 convolutions have none); output sizes are
  ``1 + (n + 2 p - k) // s`` (floor), as torch's;
* ``avg_pool<2,2,2,2>`` at stride 2 on odd sizes drops the last row/column (35 -> 17), and a
  padded window would average only the pixels inside the image (``count_include_pad=False``);
  ``avg_pool_everything`` (window 0) is the mean over the whole plane;
* ``add_prev`` adds tensors of different shapes: the sum has the larger size in every
  dimension and each input is zero-padded at the end (bottom/right, last channels). The down
  blocks need it: at 8x8 the convolution path gives 3x3 and the pooled skip path 4x4 (sum
  4x4), at 4x4 they give 1x1 and 2x2; a skip path from a 128-channel level has half the
  channels of the 256-channel block;
* ``affine`` is a frozen batch norm, ``gamma * x + beta`` per channel (``CONV_MODE``);
* ``fc_no_bias``: ``x.flatten(1) @ W`` with ``W`` stored (num_inputs, num_outputs); the
  128 outputs are the descriptor (``loss_metric`` returns them as they are).

The file format (dlib/serialize.h, dlib/float_details.h, dlib/cuda/tensor.h, dlib/dnn/core.h):

* integers: a control byte (bit 7: negative, low 4 bits: byte count 1..8) then the magnitude in
  little-endian bytes; floats (double or float): two integers, mantissa and exponent, value
  ``ldexp(mantissa, exponent)`` (exponents 32000/32001/32002: +inf/-inf/nan); ``bool``: the
  character ``'1'`` or ``'0'``; strings: an integer length then the bytes;
* tensors: version 2, four integer dimensions (num_samples, k, nr, nc), then raw little-endian
  float32 values; an ``alias_tensor`` (a view into a layer's parameter tensor): version 1 and
  four dimensions, no values;
* the network is written outermost first but each layer writes its subnetwork *before* its own
  fields, so the file holds the loss layer (version 1, ``loss_metric_2``, margin, distance
  threshold), then one version integer per layer from the fc down to the stem (tag and skip
  layers: 1; add_layer: 1 or 2, the one right above the input 2 or 3), then the input layer,
  then the fields of each layer from the stem back up to the fc. After its fields every
  add_layer writes three bools and two tensors (its gradient and cached output, empty in this
  file), then a third tensor (version 2) or, right above the input, a tensor and (version 3)
  a sample expansion factor. Tag ids are part of the C++ type, not of the file.

The reader walks the file in this order with the architecture in hand, checks every layer's
name, hyperparameters and tensor sizes and that the file ends where the network does, and
refuses anything else with a `FormatError` naming the byte offset.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CHIP_SIZE = 150
"""Side of the face chip the network takes (``input_rgb_image_sized<150>``)."""

INPUT_SCALE = 256.0
"""dlib's input layer divides the mean-subtracted pixel values by 256."""

LEVELS: tuple[tuple[int, int, bool], ...] = (
    (256, 1, True), (256, 3, True), (128, 3, True), (64, 4, True), (32, 3, False))
"""``alevel0`` .. ``alevel4`` (outermost first): (filters, residual blocks, whether the block
next to the level's input is an ``ares_down``)."""


class FormatError(ValueError):
    """The file is not dlib's face-recognition ResNet as dlib serialises it."""


@dataclass(frozen=True)
class Spec:
    """One layer of dlib's network type (``kind`` as in dlib: ``con``, ``affine``, ``relu``,
    ``max_pool``, ``avg_pool``, ``add_prev``, ``tag``, ``skip``, ``fc``)."""

    kind: str
    size: int = 0  # con/pool window side (0: the whole plane); fc: outputs
    filters: int = 0  # con
    stride: int = 1
    tag: int = 0  # tag/skip/add_prev: the tag id, from the C++ type (not in the file)

    @property
    def padding(self) -> int:
        """dlib's default padding: ``size // 2`` at stride 1, else 0."""
        return self.size // 2 if self.stride == 1 else 0


def _block(filters: int, stride: int) -> list[Spec]:
    return [Spec("affine"), Spec("con", 3, filters, 1), Spec("relu"), Spec("affine"),
            Spec("con", 3, filters, stride)]


def _ares(filters: int) -> list[Spec]:
    return [Spec("relu"), Spec("add_prev", tag=1), *_block(filters, 1), Spec("tag", tag=1)]


def _ares_down(filters: int) -> list[Spec]:
    return [Spec("relu"), Spec("add_prev", tag=2), Spec("avg_pool", 2, stride=2),
            Spec("skip", tag=1), Spec("tag", tag=2), *_block(filters, 2), Spec("tag", tag=1)]


@functools.cache
def architecture() -> tuple[Spec, ...]:
    """dlib's ``anet_type`` below the loss layer, outermost layer (the fc) first."""
    layers = [Spec("fc", 128), Spec("avg_pool", 0)]
    for filters, blocks, down in LEVELS:
        for block in range(blocks):
            last = block == blocks - 1
            layers += _ares_down(filters) if down and last else _ares(filters)
    layers += [Spec("max_pool", 3, stride=2), Spec("relu"), Spec("affine"),
               Spec("con", 7, 32, 2)]
    return tuple(layers)


@dataclass(frozen=True)
class Layer:
    """A layer read from the file: its `Spec` and its parameters (con: weight (filters, in,
    k, k) and bias (filters,); affine: weight = gamma, bias = beta (channels,); fc: weight
    (inputs, outputs)). ``enabled`` False: a layer dlib marked disabled (an identity)."""

    spec: Spec
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    enabled: bool = True
    fused_relu: bool = False  # con_6's use_relu: a relu fused into the convolution


@dataclass(frozen=True)
class DlibNetwork:
    """The parsed model: the input means, the layers input side first, the loss settings."""

    mean: tuple[float, float, float]
    layers: tuple[Layer, ...]
    loss: str
    margin: float
    distance_threshold: float

    @property
    def convolutions(self) -> list[Layer]:
        return [layer for layer in self.layers if layer.spec.kind == "con"]

    @property
    def parameter_count(self) -> int:
        return sum(a.size for layer in self.layers for a in (layer.weight, layer.bias)
                   if a is not None)


class _Reader:
    """dlib's ``deserialize`` for the types this network uses, over the file's bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def fail(self, what: str) -> FormatError:
        return FormatError(f"{what} at byte {self.pos}")

    def take(self, count: int) -> memoryview:
        if count < 0 or self.pos + count > len(self.data):
            raise self.fail(f"file ends: {count} more bytes needed")
        out = self.data[self.pos:self.pos + count]
        self.pos += count
        return out

    def integer(self) -> int:
        head = self.take(1)[0]
        size = head & 0x0F
        if head & 0x70 or not 1 <= size <= 8:
            self.pos -= 1
            raise self.fail(f"not a dlib integer (control byte {head:#04x})")
        value = int.from_bytes(self.take(size), "little")
        return -value if head & 0x80 else value

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        special = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
        return special[exponent] if exponent in special else math.ldexp(mantissa, exponent)

    def boolean(self) -> bool:
        char = bytes(self.take(1))
        if char not in (b"0", b"1"):
            self.pos -= 1
            raise self.fail(f"not a dlib bool ({char!r})")
        return char == b"1"

    def string(self) -> str:
        return bytes(self.take(self.integer())).decode("latin-1")

    def version(self, *allowed: str) -> str:
        start = self.pos
        try:
            name = self.string()
        except FormatError:
            name = None
        if name not in allowed:
            self.pos = start
            raise self.fail(f"expected {' or '.join(allowed)}, found "
                            f"{'no string' if name is None else repr(name[:40])}")
        return name

    def expect(self, value: int, what: str) -> int:
        got = self.integer()
        if got != value:
            raise self.fail(f"{what}: {got}, expected {value}")
        return got

    def tensor(self) -> np.ndarray:
        self.expect(2, "tensor version")
        dims = tuple(self.integer() for _ in range(4))
        if min(dims) < 0:
            raise self.fail(f"tensor of negative size {dims}")
        count = math.prod(dims)
        values = np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32)
        return values.reshape(dims)

    def alias(self) -> tuple[int, ...]:
        self.expect(1, "alias_tensor version")
        return tuple(self.integer() for _ in range(4))


def _check(reader: _Reader, ok: bool, what: str) -> None:
    if not ok:
        raise reader.fail(what)


def _read_con(r: _Reader, spec: Spec, channels: int) -> Layer:
    version = r.version("con_4", "con_5", "con_6")
    params = r.tensor()
    fields = [r.integer() for _ in range(7)]  # filters, nr, nc, stride y/x, padding y/x
    expected = [spec.filters, spec.size, spec.size, spec.stride, spec.stride, spec.padding,
                spec.padding]
    _check(r, fields == expected, f"convolution {fields}, expected {expected} "
                                  "(filters, nr, nc, strides, paddings)")
    filters, biases = r.alias(), r.alias()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.real()
    use_bias = r.boolean() if version in ("con_5", "con_6") else True
    fused_relu = r.boolean() if version == "con_6" else False
    shape = (spec.filters, channels, spec.size, spec.size)
    _check(r, filters == shape and biases == (1, spec.filters, 1, 1),
           f"convolution filters {filters} and biases {biases}, expected {shape}")
    count = math.prod(shape)
    _check(r, params.size == count + (spec.filters if use_bias else 0),
           f"convolution with {params.size} parameters, expected {count} + biases")
    flat = params.reshape(-1)
    bias = flat[count:] if use_bias else np.zeros(spec.filters, np.float32)
    return Layer(spec, flat[:count].reshape(shape), bias, fused_relu=fused_relu)


def _read_affine(r: _Reader, spec: Spec, channels: int) -> Layer:
    version = r.version("affine_", "affine_2")
    params = r.tensor()
    gamma, beta = r.alias(), r.alias()
    mode = r.integer()
    disabled = r.boolean() if version == "affine_2" else False
    _check(r, mode == 0, f"affine layer in mode {mode}, expected 0 (per channel)")
    _check(r, gamma == beta == (1, channels, 1, 1) and params.size == 2 * channels,
           f"affine gamma {gamma}, beta {beta} ({params.size} values) on {channels} channels")
    flat = params.reshape(-1)
    return Layer(spec, flat[:channels], flat[channels:], enabled=not disabled)


def _read_relu(r: _Reader, spec: Spec, channels: int) -> Layer:
    version = r.version("relu_", "relu_2")
    disabled = r.boolean() if version == "relu_2" else False
    return Layer(spec, enabled=not disabled)


def _read_pool(r: _Reader, spec: Spec, channels: int) -> Layer:
    r.version(f"{spec.kind}_2")
    fields = [r.integer() for _ in range(6)]  # nr, nc, stride y/x, padding y/x
    expected = [spec.size, spec.size, spec.stride, spec.stride, spec.padding, spec.padding]
    _check(r, fields == expected, f"{spec.kind} {fields}, expected {expected}")
    return Layer(spec)


def _read_add_prev(r: _Reader, spec: Spec, channels: int) -> Layer:
    r.version("add_prev_")
    return Layer(spec)


def _read_fc(r: _Reader, spec: Spec, channels: int) -> Layer:
    version = r.version("fc_2", "fc_3")
    outputs, inputs = r.integer(), r.integer()
    params = r.tensor()
    weights = r.alias()
    r.alias()  # biases (an empty view: no bias)
    bias_mode = r.integer()
    for _ in range(4):
        r.real()
    if version == "fc_3":
        r.boolean()  # use_bias (fc_no_bias has none either way)
    _check(r, (outputs, inputs, bias_mode) == (spec.size, channels, 1),
           f"fc layer {outputs} outputs, {inputs} inputs, bias mode {bias_mode}; expected "
           f"{spec.size}, {channels}, 1 (no bias)")
    _check(r, weights == (inputs, outputs, 1, 1) and params.size == inputs * outputs,
           f"fc weights {weights} ({params.size} values)")
    return Layer(spec, params.reshape(inputs, outputs))


_DETAILS = {"con": _read_con, "affine": _read_affine, "relu": _read_relu,
            "max_pool": _read_pool, "avg_pool": _read_pool, "add_prev": _read_add_prev,
            "fc": _read_fc}


def read_network(data: bytes) -> DlibNetwork:
    """Parse dlib's serialisation of the face-recognition ResNet (see the module doc)."""
    r = _Reader(data)
    r.expect(1, "loss layer version")
    loss = r.version("loss_metric_", "loss_metric_2")
    margin, threshold = (r.real(), r.real()) if loss == "loss_metric_2" else (0.1, 0.75)
    specs = architecture()
    versions = []
    for i, spec in enumerate(specs):  # headers, outermost first
        version = r.integer()
        allowed = ((1,) if spec.kind in ("tag", "skip")
                   else (2, 3) if i == len(specs) - 1 else (1, 2))
        _check(r, version in allowed, f"version {version} of layer {i} ({spec.kind}), "
                                      f"expected {allowed}")
        versions.append(version)
    r.version("input_rgb_image_sized")
    mean = tuple(float(np.float32(r.real())) for _ in range(3))
    size = (r.integer(), r.integer())
    _check(r, size == (CHIP_SIZE, CHIP_SIZE), f"input size {size}, expected {CHIP_SIZE}")

    layers: list[Layer] = []
    channels = 3
    tagged: dict[int, int] = {}
    for i in reversed(range(len(specs))):  # fields, input side first
        spec = specs[i]
        if spec.kind == "tag":
            tagged[spec.tag] = channels
            layers.append(Layer(spec))
            continue
        if spec.kind == "skip":
            channels = tagged[spec.tag]
            layers.append(Layer(spec))
            continue
        layer = _DETAILS[spec.kind](r, spec, channels)
        layers.append(layer)
        if spec.kind == "con":
            channels = spec.filters
        elif spec.kind == "add_prev":
            channels = max(channels, tagged[spec.tag])
        elif spec.kind == "fc":
            channels = spec.size
        for _ in range(3):  # setup called, gradient stale, output and gradient disabled
            r.boolean()
        r.tensor()  # gradient with respect to the input
        r.tensor()  # cached output
        if i < len(specs) - 1:
            if versions[i] == 2:
                r.tensor()  # parameter gradient
        else:
            r.tensor()  # final gradient
            if versions[i] == 3:
                r.integer()  # sample expansion factor
    _check(r, r.pos == len(r.data), f"{len(r.data) - r.pos} bytes after the network")
    return DlibNetwork(mean, tuple(layers), loss, margin, threshold)  # type: ignore[arg-type]


class DlibFaceResNet(nn.Module):
    """dlib's face ResNet in torch: runs the parsed layers in dlib's order, with dlib's
    semantics (module doc). Input (N, 3, 150, 150) RGB chips, values 0..255 (any dtype; a
    channels-last layout, as a permuted (N, H, W, 3) array gives, is the fastest on the CPU);
    output (N, 128) descriptors in the module's dtype (float32 as dlib; float64 when moved
    there: the input is normalised in float32 as dlib does, then cast)."""

    def __init__(self, net: DlibNetwork) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(net.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.program: list[tuple[Spec, bool, bool, int]] = []  # spec, enabled, relu, params
        for index, layer in enumerate(net.layers):
            if layer.weight is not None:
                weight = torch.from_numpy(layer.weight.copy())
                bias = None if layer.bias is None else torch.from_numpy(layer.bias.copy())
                if layer.spec.kind == "affine":
                    weight, bias = weight.view(1, -1, 1, 1), bias.view(1, -1, 1, 1)
                self.register_buffer(f"w{index}", weight)
                if bias is not None:
                    self.register_buffer(f"b{index}", bias)
            self.program.append((layer.spec, layer.enabled, layer.fused_relu, index))

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = (chips.to(torch.float32) - self.mean.float()) / INPUT_SCALE
        x = x.to(self.mean.dtype)
        tags: dict[int, torch.Tensor] = {}
        owned = True  # x is referenced by no tag: in-place operations are safe
        for spec, enabled, fused_relu, index in self.program:
            kind = spec.kind
            if kind == "con":
                x = F.conv2d(x, getattr(self, f"w{index}"), getattr(self, f"b{index}"),
                             spec.stride, spec.padding)
                x = x.relu_() if fused_relu else x
                owned = True
            elif kind == "affine" and enabled:
                gamma, beta = getattr(self, f"w{index}"), getattr(self, f"b{index}")
                x = x.mul_(gamma).add_(beta) if owned else x * gamma + beta
                owned = True
            elif kind == "relu" and enabled:
                x = x.relu_() if owned else x.relu()
                owned = True
            elif kind == "max_pool":
                x = F.max_pool2d(x, spec.size, spec.stride, spec.padding)
                owned = True
            elif kind == "avg_pool":
                x = (x.mean(dim=(2, 3), keepdim=True) if spec.size == 0 else
                     F.avg_pool2d(x, spec.size, spec.stride, spec.padding,
                                  count_include_pad=False))
                owned = True
            elif kind == "tag":
                tags[spec.tag] = x
                owned = False
            elif kind == "skip":
                x = tags[spec.tag]
                owned = False
            elif kind == "add_prev":
                x = _add_prev(x, tags[spec.tag])
                owned = True
            elif kind == "fc":
                x = x.flatten(1) @ getattr(self, f"w{index}")
        return x


def _add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: the sum of two tensors, each zero-padded at the end of every
    dimension to the larger size."""
    if a.shape == b.shape:
        return a + b
    out = a.new_zeros([max(p, q) for p, q in zip(a.shape, b.shape, strict=True)])
    out[:a.shape[0], :a.shape[1], :a.shape[2], :a.shape[3]] += a
    out[:b.shape[0], :b.shape[1], :b.shape[2], :b.shape[3]] += b
    return out


@functools.cache
def read_file(path: str) -> DlibNetwork:
    """`read_network` of the file at ``path`` (once per process)."""
    return read_network(Path(path).read_bytes())


def default_dtype(device: str | torch.device) -> torch.dtype:
    """float32 (dlib's own precision) on the CPU; float64 on a GPU, where torch lets cuDNN run
    float32 convolutions in TF32 by default (``torch.backends.cudnn.conv.fp32_precision`` is
    ``"tf32"``: ~1e-3 off dlib's numbers). float64 cannot fall into TF32 whatever a caller set,
    touches no global flag, and is cheap on a GPU (the network is ~0.3 GMAC a chip)."""
    return torch.float64 if torch.device(device).type == "cuda" else torch.float32


@functools.cache
def network(path: str, device: str = "cpu", dtype: torch.dtype | None = None
            ) -> DlibFaceResNet:
    """The torch network of the dlib model file at ``path`` on ``device`` in ``dtype``
    (`default_dtype` when None), one per process and setting, in eval mode, no gradients."""
    module = DlibFaceResNet(read_file(path))
    module = module.to(device=device, dtype=dtype or default_dtype(device)).eval()
    return module.requires_grad_(False)
