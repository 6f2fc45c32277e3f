"""Dataset registry and the base class every dataset loader implements (SPEC 4.2, 4.3).

A dataset reads a tree exactly as its release unpacks (``--root``), lists its clips as
``ClipRef`` records without decoding media, and says in plain lines what it found wrong
(missing files, unexpected names). Splits are applied by ``bench.data.splits``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from bench.data.clip import ClipRef
from bench.registry import Registry


class DatasetError(Exception):
    """The root cannot be read as this dataset at all; one line for the user."""


@dataclass
class Scan:
    """What a loader found under its root."""

    clips: list[ClipRef]
    problems: list[str] = field(default_factory=list)  # one line each, shown to the user


class Dataset:
    """Base class: subclasses set ``name`` and implement ``scan``."""

    name: ClassVar[str]
    default_split: ClassVar[str] = "vougioukas2019"
    description: ClassVar[str] = ""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise DatasetError(f"{self.name}: root {self.root} does not exist")
        if not self.root.is_dir():
            raise DatasetError(f"{self.name}: root {self.root} is not a folder")

    def scan(self) -> Scan:
        """List every clip under the root (no media decoded)."""
        raise NotImplementedError


DATASETS = Registry("dataset")
DATASETS.add("synthetic", "bench.data.synthetic:SyntheticDataset")
DATASETS.add("crema-d", "bench.data.crema_d:CremaD")
DATASETS.add("grid", "bench.data.grid:Grid")
DATASETS.add("tcd-timit", "bench.data.tcd_timit:TcdTimit")


def open_dataset(name: str, root: str | Path) -> Dataset:
    """Instantiate the loader registered as ``name`` on ``root``."""
    return DATASETS.get(name)(root)
