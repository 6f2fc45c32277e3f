"""The papers' reported numbers, read from the package's CSV (SPEC 8), against an independent
expectation: SPEC 8's own text, parsed here, and counts per source and table."""

from __future__ import annotations

import math
import re
from collections import Counter
from importlib.resources import files

import pytest

from bench.leaderboard import KNOWN_COLUMNS, build_table
from bench.reported import (
    COLUMNS,
    PAPERS,
    RESULTS_FILE,
    Reported,
    load_reported,
    read_reported,
    reported_for,
)

# SPEC 8, as written there (the expectation, not derived from the CSV).
SPEC_TABLE6 = """
GRID: proposed 27.100 0.818 0.268 1.47e-4 23.1% 1 7.4 0.45 0.36; baseline 27.023 0.811 0.249
  1.42e-4 36.4% 2 6.5 0.04 0.29; Speech2Vid 22.662 0.720 0.255 1.48e-4 58.2% 1 5.3 0.00 0.00
TCD: proposed 24.243 0.730 0.308 1.76e-4 - 1 5.5 0.19 0.33; baseline 24.187 0.711 0.231
  1.77e-4 - 8 1.4 0.08 0.13; Speech2Vid 20.305 0.658 0.211 1.81e-4 - 1 4.6 0.00 0.00
CREMA: proposed 23.565 0.700 0.216 1.40e-4 - 2 5.5 0.25 0.26; baseline 22.933 0.685 0.212
  1.65e-4 - 2 5.2 0.11 0.13; Speech2Vid 22.190 0.700 0.217 1.73e-4 - 1 4.7 0.00 0.00
"""
SPEC_SEED004 = """
CRAN 28.041 0.694 0.710 78.71 | 24.381 0.650 0.562 81.41; Speech2Vid 28.863 0.755 0.738 78.97
| 25.132 0.685 0.556 81.91; baseline L_rec 28.681 0.746 0.725 77.77 | 25.003 0.717 0.545 80.96;
proposed 29.971 0.772 0.751 81.15 | 26.601 0.760 0.590 86.51.
"""
TABLE6_METRICS = ("psnr", "ssim", "cpbd", "acd_openface", "wer_lipnet", "av_offset", "lse_c",
                  "blinks_per_s", "blink_duration_s")
SEED003_MODELS = {"proposed": "vougioukas", "baseline": "static-gan", "Speech2Vid": "speech2vid"}
SEED004_MODELS = {"CRAN": "cran", "Speech2Vid": "speech2vid",
                  "baseline L_rec": "au-tcsan-baseline-lrec", "proposed": "au-tcsan"}
DATASETS = {"GRID": "grid", "TCD": "tcd-timit", "CREMA": "crema-d"}


def _value(source: str, table: str, dataset: str, model: str, metric: str) -> float:
    hits = [r.value for r in load_reported() if (r.source, r.table, r.dataset, r.model,
                                                 r.metric) == (source, table, dataset, model,
                                                               metric)]
    assert len(hits) == 1, (source, table, dataset, model, metric, hits)
    return hits[0]


def _spec_table6() -> dict[tuple[str, str, str], float | None]:
    out = {}
    text = " ".join(SPEC_TABLE6.split())
    for block in re.findall(r"(GRID|TCD|CREMA): (.*?)(?= (?:GRID|TCD|CREMA):|$)", text):
        dataset = DATASETS[block[0]]
        for part in block[1].split(";"):
            label, *numbers = part.split()
            assert len(numbers) == 9, part
            for metric, number in zip(TABLE6_METRICS, numbers, strict=True):
                value = None if number == "-" else float(number.rstrip("%"))
                out[(dataset, SEED003_MODELS[label], metric)] = value
    return out


def test_every_table6_number_of_spec8():
    expected = _spec_table6()
    assert len(expected) == 81
    for (dataset, model, metric), value in expected.items():
        rows = [r for r in load_reported() if (r.source, r.table, r.dataset, r.model, r.metric)
                == ("seed003", "Table 6", dataset, model, metric)]
        if value is None:  # WER is GRID only
            assert rows == [], (dataset, model, metric)
        else:
            assert [r.value for r in rows] == [value], (dataset, model, metric)
            assert rows[0].split == "vougioukas2019 test"


def test_every_seed004_table5_number_of_spec8():
    text = " ".join(SPEC_SEED004.split()).rstrip(".")
    seen = 0
    for part in text.split(";"):
        grid_part, tcd_part = part.split("|")
        words = grid_part.split()
        label = " ".join(w for w in words if not re.match(r"^[\d.]+$", w))
        grid_numbers = [float(w) for w in words if re.match(r"^[\d.]+$", w)]
        tcd_numbers = [float(w) for w in tcd_part.split()]
        for dataset, numbers in (("grid", grid_numbers), ("tcd-timit", tcd_numbers)):
            for metric, value in zip(("psnr", "ssim", "au_f1", "au_acc"), numbers, strict=True):
                got = _value("seed004", "Table 5", dataset, SEED004_MODELS[label], metric)
                assert got == value
                seen += 1
    assert seen == 32


def test_other_spec8_numbers():
    # Ground truth, seed 003 Tables 4 and 5.
    assert _value("seed003", "Table 5", "grid", "ground-truth", "cpbd") == 0.276
    assert _value("seed003", "Table 5", "grid", "ground-truth", "av_offset") == 1
    assert _value("seed003", "Table 5", "grid", "ground-truth", "lse_c") == 7.0
    assert _value("seed003", "Table 5", "grid", "ground-truth", "blinks_per_s") == 0.39
    assert _value("seed003", "Table 5", "grid", "ground-truth", "blink_duration_s") == 0.41
    for dataset, (rate, duration) in {"grid": (0.39, 0.4), "tcd-timit": (0.28, 0.2),
                                      "crema-d": (0.26, 0.36)}.items():
        assert _value("seed003", "Table 4", dataset, "ground-truth", "blinks_per_s") == rate
        assert _value("seed003", "Table 4", dataset, "ground-truth",
                      "blink_duration_s") == duration
    # Seed 000, Table I (CREMA-D happy/sad), PSNR/SSIM.
    for model, (psnr, ssim) in {"vougioukas": (22.01, 0.61), "eskimez-emotion": (22.94, 0.63),
                                "deformable-emotion": (23.57, 0.65)}.items():
        assert _value("seed000", "Table I", "crema-d", model, "psnr") == psnr
        assert _value("seed000", "Table I", "crema-d", model, "ssim") == ssim
    # Seed 001, SyncNet confidence on VoxCeleb2.
    for model, conf in {"ventriloquist": 2.08, "makeittalk": 2.80, "pc-avs": 5.90}.items():
        assert _value("seed001", "Sect. 3.3", "voxceleb2", model, "lse_c") == conf
    # Seed 002, Sect. 6.1: the EmoAcc judge scores "more than 90%" on real test clips.
    assert _value("seed002", "Sect. 6.1", "crema-d", "ground-truth", "emoacc") == 0.9


def test_counts_per_source_and_table():
    counts = Counter((r.source, r.table) for r in load_reported())
    assert counts == {
        ("seed003", "Table 6"): 27 + 24 + 24,  # 3 models x 9 metrics on GRID, 8 (no WER) else
        ("seed003", "Table 5"): 7,  # ground-truth row (PSNR/SSIM are trivial there)
        ("seed003", "Table 4"): 6,
        ("seed000", "Table I"): 6,
        ("seed004", "Table 5"): 32,
        ("seed004", "Table 2"): 8,
        ("seed004", "Table 1"): 2,
        ("seed001", "Sect. 3.3"): 3,
        ("seed002", "Sect. 6.1"): 1,  # the emotion classifier's accuracy, a lower bound
    }
    assert len(load_reported()) == 140


def test_rows_are_well_formed():
    rows = load_reported()
    assert all(isinstance(r, Reported) for r in rows)
    assert all(type(r.value) is float and math.isfinite(r.value) for r in rows)
    assert {r.metric for r in rows} <= set(KNOWN_COLUMNS)
    assert {r.source for r in rows} <= set(PAPERS)
    assert {r.dataset for r in rows} == {"grid", "tcd-timit", "crema-d", "voxceleb2"}
    assert len({(r.source, r.table, r.dataset, r.split, r.model, r.metric) for r in rows}) == \
        len(rows)  # no value twice


def test_reported_for_and_the_old_names():
    import bench.reported as reported

    assert reported.REPORTED == load_reported()
    crema = reported_for("crema-d")
    assert crema == [r for r in load_reported() if r.dataset == "crema-d"]
    assert len(crema) == 33 and {r.source for r in crema} == {"seed003", "seed000", "seed002"}
    assert reported_for("synthetic") == []
    with pytest.raises(AttributeError):
        reported.NOT_A_NAME  # noqa: B018


def test_the_csv_ships_inside_the_package():
    resource = files("bench").joinpath(RESULTS_FILE)
    assert resource.is_file()
    header = resource.read_text(encoding="utf-8").splitlines()[0]
    assert tuple(header.split(",")) == COLUMNS


def test_malformed_files_say_which_line(tmp_path):
    header = ",".join(COLUMNS)
    bad_value = tmp_path / "bad.csv"
    bad_value.write_text(f"{header}\nseed003,Table 6,grid,t,m,psnr,27.1,\n"
                         f"seed003,Table 6,grid,t,m,ssim,high,\n")
    with pytest.raises(ValueError, match="line 3: value 'high' is not a number"):
        read_reported(bad_value)
    empty = tmp_path / "empty.csv"
    empty.write_text(f"{header}\nseed003,,grid,t,m,psnr,27.1,\n")
    with pytest.raises(ValueError, match="line 2: empty table"):
        read_reported(empty)
    columns = tmp_path / "columns.csv"
    columns.write_text("source,value\nseed003,1\n")
    with pytest.raises(ValueError, match="expected"):
        read_reported(columns)


def test_leaderboard_groups_the_rows_as_before():
    rows, cols = build_table("grid", [])
    labels = [(r.source, r.model) for r in rows]
    assert labels[:3] == [("reported: seed003 Table 6", "vougioukas"),
                          ("reported: seed003 Table 6", "static-gan"),
                          ("reported: seed003 Table 6", "speech2vid")]
    assert len(rows) == 3 + 1 + 1 + 4 + 2 + 1  # T6 models, T5 GT, T4 GT, 004 T5, T2 judges, T1
    assert "acd_openface" in rows[0].values and "wer_lipnet" in rows[0].values
    assert {c.name for c in cols} == {r.metric for r in reported_for("grid")}
