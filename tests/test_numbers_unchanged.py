"""Numbers unchanged across refactors (issue 11): a recorded reference of the outputs.

``tests/reference/smoke_run_corpus_v2.json`` holds the per-clip values and the leaderboard
CSV's numbers of one small configuration: the session's tiny synthetic CREMA-D tree,
``still-image``, ``static-gan`` and ``eskimez-emotion`` at the smoke budget (step-count
budgets, so the weights do not depend on the machine's speed), the harness-trained SyncNet and
emotion judges at the smoke budget, and the metrics PSNR, SSIM, CPBD, blinks, ACD, LSE and
EmoAcc. This test runs the same configuration with today's code and compares every number to
1e-9.

History. The first reference (``smoke_run_0b23ec7.json``, in git history up to commit
340eb8a) was recorded with the code at commit 0b23ec7, before the architecture change, and
held through commit 340eb8a, with the changes made on purpose since listed and left out of
the comparison (LSE after the OpenCV resize of issue 17, ACD's ground-truth row and its torch
backend, columns and one reported row added). The synthetic corpus's code version 2 (issue
15: each emotion has a voice quality) changes the tiny tree's audio and so every trained judge
and number, so the reference was recorded again with the commit that made that change (the
same command as this test, ``python tests/test_numbers_unchanged.py OUT`` on its output
folder).

A number that is unavailable in one and a number in the other is a difference too. Run
``python tests/test_numbers_unchanged.py OUT`` on a finished run folder to print the same
extraction (how the reference was made).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

REFERENCE = Path(__file__).parent / "reference" / "smoke_run_corpus_v2.json"
MODELS = ("still-image", "static-gan", "eskimez-emotion")
METRICS = "psnr,ssim,cpbd,blinks,acd,lse,emoacc"
ADDED_ROWS: dict[str, str] = {}
"""Leaderboard rows that did not exist when the reference was recorded (new rows, no number
changed), each with why."""


def _number(text: str | None) -> float | None:
    try:
        return float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None  # empty cell or "unavailable"


ADDED_COLUMNS = ("test_set", "av_offset_signed", "rank_sync", "rank_quality", "rank_realism",
                 "rank_emotion")
ADDED_SUFFIXES = ("_n", "_unavailable", "_flag", "_comparable")
"""Leaderboard CSV columns that hold no number of their own, left out on both sides: the
test clips' hash, the signed AV offset (a detail of the offset), the family ranks, and per
metric column ``<col>_n`` (clips that made the value), ``<col>_unavailable`` (why not, text),
``<col>_flag`` (judge below chance, text) and ``<col>_comparable``."""
REMOVED_COLUMNS: dict[str, str] = {}
"""Leaderboard CSV columns of the reference that no longer exist, each with why."""
ADDED_CLIP_COLUMNS = ("unavailable",)
"""scores.csv's text column of reasons (issue 12), added after the reference."""


def _added(column: str) -> bool:
    return (column.endswith(ADDED_SUFFIXES)
            or any(column == c or column.startswith(c + "_ci_") for c in ADDED_COLUMNS))


def extract(out: Path) -> dict:
    """The leaderboard's numbers per row and every model's per-clip table, from ``out``
    (which holds ``lb/crema-d.csv`` and ``runs/``)."""
    board = {}
    with open(out / "lb" / "crema-d.csv", newline="") as f:
        for row in csv.DictReader(f):
            key = " | ".join([row["kind"], row["model"], row["source"]])
            board[key] = {k: _number(v) for k, v in row.items()
                          if k not in ("kind", "model", "source", "split") and not _added(k)
                          and k.split("_ci_")[0] not in REMOVED_COLUMNS}
    per_clip = {}
    for table in sorted((out / "runs" / "crema-d" / "vougioukas2019").glob("*/scores.csv")):
        with open(table, newline="") as f:
            per_clip[table.parent.name] = {
                row["clip_id"]: {k: _number(v) for k, v in row.items()
                                 if k != "clip_id" and k not in ADDED_CLIP_COLUMNS
                                 and not _added(k)}
                for row in csv.DictReader(f)}
    return {"leaderboard": board, "per_clip": per_clip}


CHANGED_BACKENDS: dict[str, float] = {}
"""Columns whose judge has moved to another backend since the reference was recorded, with
the tolerance that allows for it (none: the first reference needed ``{"acd": 2e-6}`` when
ACD's face network moved from dlib to torch)."""


CHANGED_ON_PURPOSE: dict[str, str] = {}
"""Columns changed on purpose since the reference was recorded (``name`` in every row,
``name@kind`` in the rows of one kind), left out of the comparison, each with why."""


def _changed_on_purpose(where: str) -> bool:
    parts = where.strip("/").split("/")
    column = parts[-1].split("_ci_")[0]
    kind = "ground-truth" if "ground-truth" in parts[1] else parts[1].split(" | ")[0]
    return column in CHANGED_ON_PURPOSE or f"{column}@{kind}" in CHANGED_ON_PURPOSE


def _tolerance(where: str) -> float:
    parts = where.strip("/").split("/")
    return max([1e-9] + [tol for name, tol in CHANGED_BACKENDS.items()
                         if any(part == name or part.startswith(name + "_") for part in parts)])


def _differences(expected: dict, got: dict, where: str = "") -> list[str]:
    out = []
    for key in sorted(set(expected) | set(got)):
        here = f"{where}/{key}"
        if here.count("/") >= 3 and _changed_on_purpose(here):
            continue
        if key not in got or key not in expected:
            out.append(f"{here}: only in {'reference' if key in expected else 'this run'}")
            continue
        a, b = expected[key], got[key]
        if isinstance(a, dict):
            out += _differences(a, b, here)
        elif a is None or b is None:
            if a is not b:
                out.append(f"{here}: reference {a}, now {b}")
        elif not math.isclose(a, b, rel_tol=1e-9, abs_tol=_tolerance(here)):
            out.append(f"{here}: reference {a!r}, now {b!r}")
    return out


REFERENCE_THREADS = 2
"""torch's CPU thread count when the reference was recorded (this 2-core box's default).
Float reductions depend on how work is split over threads, so the test pins it: other test
modules lower it for the whole session when they are imported."""


@pytest.fixture()
def reference_threads():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(REFERENCE_THREADS)
    yield
    torch.set_num_threads(before)


def test_smoke_run_numbers_equal_the_recorded_reference(synth_crema_root, tmp_path,
                                                        reference_threads):
    from bench.cli import main

    args = ["run", "--budget", "smoke", "--dataset", "crema-d", "--root", str(synth_crema_root),
            "--runs-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"),
            "--cache-dir", str(tmp_path / "cache"), "--quiet", "--workers", "1",
            "--metrics", METRICS]
    for model in MODELS:
        args += ["--model", model]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    got = extract(tmp_path)
    for row in ADDED_ROWS:
        assert got["leaderboard"].pop(row, None) is not None, f"{row} is no longer added"
    reference = json.loads(REFERENCE.read_text())
    for row in reference["leaderboard"].values():
        for column in [c for c in row if c.split("_ci_")[0] in REMOVED_COLUMNS]:
            del row[column]
    differences = _differences(reference, got)
    assert not differences, "\n".join(differences[:400])


if __name__ == "__main__":
    print(json.dumps(extract(Path(sys.argv[1])), indent=1, sort_keys=True))
