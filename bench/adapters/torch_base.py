"""Base class of the adapters that wrap a reimplemented torch generator (SPEC 6).

A subclass names its budgets' configurations as data (``configs``: budget -> a frozen
dataclass with at least ``size``, the square frame side the network works at) and implements
three methods:

- ``build(cfg) -> nn.ModuleDict``: the modules ``generate`` needs (they are what is saved);
- ``train_model(train, val, cfg) -> dict``: trains ``self.nets`` (its discriminators and
  optimisers live inside this call) and returns a JSON-able log;
- ``synthesize(image, audio, emotion, num_frames, generator) -> (T, 3, s, s)``: frames in
  ``[-1, 1]`` for one identity image ``(1, 3, s, s)`` in ``[-1, 1]``.

The base class does the rest: seeding, the device, resizing the identity image to ``size``
and the frames back to the image's size, uint8 conversion, ``save``/``load`` (state dict plus
the config as JSON), parameter counts (``bench models``), and option overrides: keyword
options whose names are config fields replace the budget's values (``Vougioukas(steps=3)``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from bench.adapters.base import BUDGETS, Adapter
from bench.core.devices import resolve_device
from bench.core.training import budget_plan
from bench.data.clip import Clip
from bench.generators.images import to_tensor, to_uint8

WEIGHTS_FILE = "generator.pt"
CONFIG_FILE = "generator.json"


class TorchAdapter(Adapter):
    """An adapter around torch modules built from a per-budget config (see the module doc)."""

    configs: ClassVar[dict[str, Any]] = {}
    """Budget name (``smoke``, ``demo``, ``paper``) -> frozen config dataclass instance."""
    paper_parameters: ClassVar[dict[str, int]] = {}
    """Parameter counts the paper states, by module name (empty when it states none)."""
    side_stages: ClassVar[tuple[str, ...]] = ()
    """Training stages (``run_steps`` descriptions) that do not train the generator on
    generated frames (e.g. discriminator pre-training); ``bench profile`` gives no frames/s
    for them."""

    def __init__(self, seed: int = 0, device: str | None = None, **options: Any) -> None:
        super().__init__(seed, device, **options)
        self.budget: str | None = None
        self.cfg: Any = None
        self.nets: nn.ModuleDict | None = None
        self.notes: dict[str, Any] = {}
        """Run facts to record (e.g. which perceptual network stood in); saved with the model."""

    # -- to implement ------------------------------------------------------------------------
    def build(self, cfg: Any) -> nn.ModuleDict:
        raise NotImplementedError

    def train_model(self, train: Sequence[Clip], val: Sequence[Clip] | None,
                    cfg: Any) -> dict[str, Any]:
        raise NotImplementedError

    def synthesize(self, image: torch.Tensor, audio: np.ndarray, emotion: str | None,
                   num_frames: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    sequence_field: ClassVar[str] = "seq_len"
    """Config field holding the frames per training sample (``frames_per_step``)."""

    # -- may override ------------------------------------------------------------------------
    def frames_per_step(self, cfg: Any, train: Sequence[Clip]) -> int:
        """Frames the generator makes in one training step: ``batch x`` the config's
        ``sequence_field`` (sequences no longer than the longest training clip), or ``batch``
        when the config has no such field."""
        length = getattr(cfg, self.sequence_field, 1)
        longest = max((c.num_frames for c in train), default=length)
        return int(cfg.batch * max(1, min(length, longest)))

    def profile_options(self, steps: int) -> dict[str, Any]:
        """Options that make ``fit`` run ``steps`` steps of each stage and no time limit
        (``bench profile``); adapters with more stages add theirs."""
        return {"steps": steps, "max_seconds": None}

    # -- provided ----------------------------------------------------------------------------
    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    def config_for(self, budget: str) -> Any:
        """The budget's config with the options that name its fields applied."""
        known = {name: cfg for name, cfg in self.configs.items() if name in BUDGETS}
        base = budget_plan(known, budget, self.name)
        fields = {f.name for f in dataclasses.fields(base)}
        return dataclasses.replace(base, **{k: v for k, v in self.options.items()
                                            if k in fields})

    def fit(self, train: Sequence[Clip], val: Sequence[Clip] | None, budget: str) -> dict:
        self.budget = budget
        self.cfg = self.config_for(budget)
        torch.manual_seed(self.seed)
        np.random.seed(self.seed % 2**32)
        self.nets = self.build(self.cfg).to(self.torch_device)
        log = self.train_model(train, val, self.cfg)
        self.nets.eval()
        return {"budget": budget, "config": dataclasses.asdict(self.cfg),
                "parameters": self.parameter_counts_of(self.nets), **self.notes, **log}

    @torch.no_grad()
    def generate(self, image: np.ndarray, audio: np.ndarray, emotion: str | None) -> np.ndarray:
        if self.nets is None:
            raise RuntimeError(f"{self.name}: call fit() or load() before generate()")
        image = np.asarray(image, dtype=np.uint8)
        audio = np.asarray(audio, dtype=np.float32)
        self.nets.eval()
        x = to_tensor(image[None], self.cfg.size, self.torch_device)
        generator = torch.Generator(device=self.torch_device).manual_seed(self.seed)
        frames = self.synthesize(x, audio, emotion, self.num_frames(audio), generator)
        return to_uint8(frames, image.shape[:2])

    def save(self, directory: Path) -> None:
        if self.nets is None:
            raise RuntimeError(f"{self.name}: nothing to save (not trained)")
        directory = Path(directory)
        state = {k: v.detach().cpu() for k, v in self.nets.state_dict().items()}
        torch.save(state, directory / WEIGHTS_FILE)
        (directory / CONFIG_FILE).write_text(json.dumps(
            {"name": self.name, "version": self.version, "seed": self.seed,
             "budget": self.budget, "config": dataclasses.asdict(self.cfg),
             "notes": self.notes}, indent=2, default=str))

    def load(self, directory: Path) -> None:
        directory = Path(directory)
        saved = json.loads((directory / CONFIG_FILE).read_text())
        self.budget = saved["budget"]
        base = self.configs[self.budget]
        self.cfg = type(base)(**_tuples(base, saved["config"]))
        self.notes = saved.get("notes", {})
        self.nets = self.build(self.cfg)
        state = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        self.nets.load_state_dict(state)
        self.nets.to(self.torch_device).eval()

    @staticmethod
    def parameter_counts_of(nets: nn.ModuleDict) -> dict[str, int]:
        counts = {name: count_parameters(module) for name, module in nets.items()}
        return {**counts, "total": int(sum(counts.values()))}

    @classmethod
    def parameter_counts(cls, budget: str = "paper") -> dict[str, int]:
        """Parameters of the generation modules at ``budget``'s sizes (built on the meta
        device: no memory is allocated)."""
        adapter = cls()
        with torch.device("meta"):
            nets = adapter.build(adapter.config_for(budget))
        return cls.parameter_counts_of(nets)


def count_parameters(module: nn.Module) -> int:
    """Trainable and frozen parameters of ``module``."""
    return int(sum(p.numel() for p in module.parameters()))


def _tuples(base: Any, values: dict[str, Any]) -> dict[str, Any]:
    """JSON turned the config's tuples into lists; turn them back where the default is one."""
    out = {}
    for f in dataclasses.fields(base):
        if f.name not in values:
            continue
        value = values[f.name]
        out[f.name] = tuple(value) if isinstance(getattr(base, f.name), tuple) else value
    return out
