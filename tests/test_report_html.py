"""`bench report` (issue 18): the static HTML page built from a smoke run, checked for its
content: every model, every plot a valid PNG, the videos, and the significance table against
a direct scipy computation on the per-clip values in the run folders."""

from __future__ import annotations

import csv
import json
import math
import re
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy.stats import wilcoxon

from bench.cli import main

MODELS = ("still-image", "static-gan", "speech2vid")
METRICS = "psnr,ssim,blinks,lse,emoacc,au"  # no CPBD: slow, and tested elsewhere
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def smoke_run(synth_crema_root, tmp_path_factory) -> Path:
    """One smoke run of three models on the tiny CREMA-D tree (judges at the smoke budget);
    `bench run` writes the report beside the leaderboard."""
    out = tmp_path_factory.mktemp("report_run")
    args = ["run", "--budget", "smoke", "--dataset", "crema-d", "--root", str(synth_crema_root),
            "--runs-dir", str(out / "runs"), "--leaderboard-dir", str(out / "lb"),
            "--cache-dir", str(out / "cache"), "--quiet", "--workers", "1",
            "--metrics", METRICS]
    for model in MODELS:
        args += ["--model", model]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "report: " in result.output
    return out


def _page(folder: Path) -> str:
    return (folder / "index.html").read_text(encoding="utf-8")


def test_bench_run_writes_the_report_and_bench_report_rewrites_it(smoke_run, tmp_path):
    page = _page(smoke_run / "reports" / "crema-d")
    result = CliRunner().invoke(main, ["report", "--dataset", "crema-d", "--runs-dir",
                                       str(smoke_run / "runs"), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'r' / 'index.html'}" in result.output
    assert _page(tmp_path / "r") == page  # the same runs give the same page
    missing = CliRunner().invoke(main, ["report", "--dataset", "nope", "--runs-dir",
                                        str(smoke_run / "runs"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "no runs of dataset 'nope'" in missing.output


def test_page_shows_every_model_section_and_no_outside_resource(smoke_run):
    folder = smoke_run / "reports" / "crema-d"
    page = _page(folder)
    table = page.split('id="leaderboard"', 1)[1].split("</table>", 1)[0]
    for model in MODELS:
        assert f'data-model="{model}" data-kind="model"' in table
    assert 'data-model="ground truth" data-kind="ground-truth"' in table
    assert '<tbody class="reported">' in table and "reported: seed003 Table 6" in table
    assert "<th>Sync</th>" in table and "Rank</th>" not in table
    assert "Ranks are per metric family" in page
    for section in ("Paired comparisons", "Blinks (seed 003, Fig. 9 and 12)", "AV offset",
                    "Emotion: confusion matrices", "Action units: occurrence rates",
                    "Test clips side by side", "Judges", "Provenance", "Package versions"):
        assert f">{section}</h2>" in page or f">{section}</h3>" in page, section
    summary = json.loads(next((smoke_run / "runs").rglob("still-image/summary.json"))
                         .read_text())
    assert summary["provenance"]["git_commit"][:14] in page
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script src" not in page and "<link" not in page


def test_every_plot_is_a_valid_png_and_every_video_is_there(smoke_run):
    folder = smoke_run / "reports" / "crema-d"
    page = _page(folder)
    images = re.findall(r'<img src="([^"]+)"', page)
    plots = [i for i in images if i.startswith("plots/")]
    names = {Path(p).name.split("_")[0] for p in plots}
    assert {"metric", "blinks", "av", "au", "confusion"} <= names, names
    assert {f"plots/metric_{c}.png" for c in ("psnr", "ssim", "lse_c", "av_offset",
                                              "blinks_per_s", "emoacc")} <= set(plots)
    for src in images:
        path = folder / src
        assert path.read_bytes()[:8] == PNG, src
        with Image.open(path) as image:
            image.verify()
    videos = re.findall(r'<video controls preload="metadata" src="([^"]+)"', page)
    clips = {Path(v).parent.name for v in videos}
    assert 2 <= len(clips) <= 3
    assert len(videos) == len(clips) * (len(MODELS) + 1)  # every model and the real clip
    from bench.data.media import read_media

    for video in videos:
        assert (folder / video).stat().st_size > 0
    real = read_media(folder / next(v for v in videos if v.endswith("/real.mp4")))
    assert real.frames is not None and real.audio is not None and real.audio.size > 0
    assert any("strip_" in i for i in images)


def _per_clip(run: Path, column: str) -> dict[str, dict[str, float]]:
    """Folder name -> clip -> the column's value, straight from scores/<clip>.json."""
    out: dict[str, dict[str, float]] = {}
    for folder in sorted(p for p in run.iterdir() if (p / "scores").is_dir()):
        values = {}
        for path in sorted((folder / "scores").glob("*.json")):
            for entry in json.loads(path.read_text())["metrics"].values():
                raw = (entry.get("values") or {}).get(column)
                if raw is not None and math.isfinite(float(raw)):
                    values[path.stem] = float(raw)
        out[folder.name] = values
    return out


def _holm(pvalues: list[float]) -> list[float]:
    order = np.argsort(pvalues, kind="stable")
    out, running = [0.0] * len(pvalues), 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - k) * pvalues[i]))
        out[i] = running
    return out


def test_significance_table_matches_scipy_on_the_per_clip_values(smoke_run):
    folder = smoke_run / "reports" / "crema-d"
    rows = list(csv.DictReader((folder / "comparisons.csv").open()))
    assert rows, "no paired comparison at all"
    page = _page(folder)
    run = next((smoke_run / "runs" / "crema-d").iterdir())
    summary = json.loads((run / "still-image" / "summary.json").read_text())
    checked = set()
    for column in {r["column"] for r in rows}:
        higher = summary["columns"][column]["higher_is_better"]
        values = _per_clip(run, column)
        truth = values.pop("ground-truth", {})
        models = sorted(m for m, v in values.items() if v)
        common = set.intersection(*(set(values[m]) for m in models))
        if higher is None:
            common &= set(truth)
        clips = sorted(common)

        series = {m: np.array([values[m][c] for c in clips]) for m in models}
        if higher is None:  # ≈GT: each clip's distance to the real clip's value
            series = {m: np.abs(v - np.array([truth[c] for c in clips]))
                      for m, v in series.items()}
        pairs = list(combinations(models, 2))
        p = []
        for a, b in pairs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                p.append(float(wilcoxon(series[a] - series[b]).pvalue))
        holm = dict(zip(pairs, _holm(p), strict=True))
        raw = dict(zip(pairs, p, strict=True))
        for row in (r for r in rows if r["column"] == column):
            key = tuple(sorted((row["model"], row["other"])))
            assert int(row["n_clips"]) == len(clips)
            assert float(row["p_wilcoxon"]) == pytest.approx(raw[key], rel=1e-12), row
            assert float(row["p_holm"]) == pytest.approx(holm[key], rel=1e-12), row
            assert row["holds"] == ("yes" if holm[key] < 0.05 else "no")
            diff = series[row["model"]] - series[row["other"]]
            assert float(row["difference"]) == pytest.approx(diff.mean(), rel=1e-12, abs=1e-15)
            assert float(row["ci_low"]) <= float(row["difference"]) <= float(row["ci_high"])
            assert row["role"] in ("best", "baseline")
            table = page.split(f'<table class="paired" data-column="{column}">', 1)[1]
            table = table.split("</table>", 1)[0]
            match = re.search(rf'<tr data-model="{re.escape(row["model"])}" data-other="'
                              rf'{re.escape(row["other"])}" data-p-wilcoxon="([^"]+)"', table)
            assert match and float(match.group(1)) == float(row["p_wilcoxon"])
            checked.add(column)
    assert {"psnr", "lse_c"} <= checked
