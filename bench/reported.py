"""Numbers the source papers report, to show beside ours in leaderboards (SPEC 8).

The numbers are data: ``bench/reported.csv`` (shipped with the package), one value a row, with
the columns ``source`` (seed id), ``table`` (where in the paper), ``dataset`` (harness dataset
name), ``split`` (the paper's test set, in words), ``model`` (the talkbench adapter name where
one exists), ``metric`` (the harness column name), ``value``, ``bound`` and ``note``. They
were transcribed by hand from the seed papers' tables; to add a paper's numbers, add rows there.

Metric names are the harness' column names (``lse_c`` is what seed 003 calls "AV confidence"
and seed 001 "SyncNet confidence"; ``acd_openface`` is ACD with OpenFace embeddings, a scale
not comparable with other embedders; ``wer_lipnet`` is seed 003's LipNet WER in %).

The file is read once, on first use (``load_reported``); ``REPORTED`` is kept as a module
attribute for older callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files

RESULTS_FILE = "reported.csv"
"""The data file, inside the ``bench`` package."""

COLUMNS: tuple[str, ...] = ("source", "table", "dataset", "split", "model", "metric", "value",
                            "bound", "note")


@dataclass(frozen=True)
class Reported:
    """One reported value."""

    source: str  # "seed003"
    table: str  # "Table 6"
    dataset: str  # "crema-d"
    split: str  # e.g. "vougioukas2019 test"
    model: str  # talkbench adapter name where one exists
    metric: str  # harness column name
    value: float
    note: str = ""  # what the paper calls it, where it differs from ours
    bound: str = ""  # "lower": the paper says "more than" the value; "upper": "less than"


PAPERS = {
    "seed000": "Bhagat et al. 2022, deformable emotional talking faces",
    "seed001": "Das et al. 2022, Ventriloquist-Net",
    "seed002": "Goyal et al. 2023, emotionally enhanced talking faces",
    "seed003": "Vougioukas et al. 2019 (IJCV), realistic speech-driven facial animation",
    "seed004": "Chen et al. 2022, AU-driven talking heads",
}


@lru_cache(maxsize=1)
def load_reported() -> tuple[Reported, ...]:
    """Every reported value, in the file's order (which is the leaderboards' order)."""
    with files("bench").joinpath(RESULTS_FILE).open("r", encoding="utf-8") as f:
        return read_reported(f, RESULTS_FILE)


def read_reported(source, name: str | None = None) -> tuple[Reported, ...]:
    """Parse a reported-numbers CSV (a path or an open text file) into ``Reported`` records.

    Values are read as text and converted by ``float``: exactly the double the written decimal
    names. A malformed file raises ValueError naming the line.
    """
    import pandas as pd

    name = name or str(source)
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    if tuple(frame.columns) != COLUMNS:
        raise ValueError(f"{name}: columns {list(frame.columns)}, expected {list(COLUMNS)}")
    out = []
    for line, row in enumerate(frame.itertuples(index=False), start=2):
        fields = row._asdict()
        try:
            fields["value"] = float(fields["value"])
        except ValueError as err:
            raise ValueError(f"{name} line {line}: value {fields['value']!r} is not a "
                             f"number") from err
        empty = [k for k in COLUMNS[:6] if not fields[k]]
        if empty:
            raise ValueError(f"{name} line {line}: empty {', '.join(empty)}")
        if fields["bound"] not in ("", "lower", "upper"):
            raise ValueError(f"{name} line {line}: bound {fields['bound']!r} is not "
                             f"'lower', 'upper' or empty")
        out.append(Reported(**fields))
    return tuple(out)


def reported_for(dataset: str) -> list[Reported]:
    """Every reported value for ``dataset`` (harness dataset name)."""
    return [r for r in load_reported() if r.dataset == dataset]


def __getattr__(name: str):
    if name == "REPORTED":
        return load_reported()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
