"""`bench run --protocol`: a paper's evaluation setting end to end (issue 11, SPEC 7)."""

from __future__ import annotations

import json
import re
import shutil

from click.testing import CliRunner

from bench.cli import main


def test_goyal2023_protocol_run_writes_its_own_leaderboard(synth_crema_root, tmp_path):
    root = tmp_path / "crema"
    shutil.copytree(synth_crema_root, root)
    args = ["run", "--protocol", "goyal2023", "--dataset", "crema-d", "--root", str(root),
            "--model", "still-image", "--budget", "smoke", "--runs-dir", str(tmp_path / "runs"),
            "--leaderboard-dir", str(tmp_path / "lb"), "--cache-dir", str(tmp_path / "cache"),
            "--quiet", "--workers", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "lb").iterdir()) == [
        "crema-d-goyal2023.csv", "crema-d-goyal2023.md"]
    md = (tmp_path / "lb" / "crema-d-goyal2023.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| Model"))
    for label in ("EmoAcc", "LSE-D", "LSE-C", "FID"):
        assert label in header, header
    for label in ("PSNR", "SSIM", "CPBD", "ACD", "Blinks"):
        assert label not in header, header
    assert "reported: seed002 Sect. 6.1" in md and "≥ 0.900" in md
    assert "reported: seed003" not in md and "reported: seed000" not in md

    summary = json.loads(
        (tmp_path / "runs" / "crema-d" / "goyal2023" / "still-image" / "summary.json")
        .read_text())
    assert summary["provenance"]["protocol"] == "goyal2023"
    # goyal2023's test actors: of the tiny corpus's 1015, 1020, 1011 and 1001, only 1011
    scored = [p.stem for p in (tmp_path / "runs" / "crema-d" / "goyal2023" / "still-image"
                               / "scores").glob("*.json")]
    assert scored and all(name.startswith("1011_") for name in scored)
    assert "unavailable" in summary["aggregate"]["fid"]  # no Inception weights: said, not faked


def test_protocol_all_models_are_the_papers_that_exist_plus_the_baseline():
    from bench.protocols import get_protocol
    from bench.runner import resolve_models

    names = [cls.name for cls in resolve_models(["all"], get_protocol("goyal2023"))]
    assert names == ["still-image", "emotion-wav2lip", "wav2lip", "eskimez-emotion"]
    names = [cls.name for cls in resolve_models(["all"], get_protocol("vougioukas2019"))]
    assert names == ["still-image", "vougioukas", "static-gan", "speech2vid"]


def test_protocol_on_a_dataset_it_does_not_cover_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["run", "--protocol", "chen2022au", "--dataset", "crema-d",
                                       "--root", str(tmp_path), "--quiet"])
    assert result.exit_code != 0
    assert "protocol chen2022au is not defined on dataset 'crema-d'" in result.output
    assert "Traceback" not in result.output


def test_grid_layout_run_fills_the_wer_column_beside_seed_003(tmp_path):
    """Issue 17: a run on a GRID-layout tree trains the smoke LipNet on the split's train
    speakers and fills the WER column for the model and the ground truth, beside seed 003's
    reported rows, with the marker and footnote that a different lip reader made those; the
    CSV says the value is not comparable with them. M-LMD/F-LMD come from the same run."""
    import csv

    from bench.data.synth import build_corpus

    root = build_corpus(tmp_path / "grid", layout="grid", seed=0, n_speakers=4,
                        clips_per_speaker=1, workers=1, progress=False)
    args = ["run", "--dataset", "grid", "--root", str(root), "--model", "still-image",
            "--budget", "smoke", "--metrics", "wer,lmd", "--runs-dir", str(tmp_path / "runs"),
            "--leaderboard-dir", str(tmp_path / "lb"), "--cache-dir", str(tmp_path / "cache"),
            "--quiet", "--workers", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "judge lipnet: training on grid/vougioukas2019 train" in result.output

    md = (tmp_path / "lb" / "grid.md").read_text()
    lines = md.splitlines()

    def cells(line: str) -> list[str]:
        return [c.strip() for c in re.split(r"(?<!\\)\|", line)]

    at = next(k for k, x in enumerate(lines) if x.startswith("| Model"))
    header = cells(lines[at])
    # GitHub draws a table only when the header has as many cells as the delimiter row
    assert len(header) == len(cells(lines[at + 1])) and "\\|AV offset\\| ≈GT" in header
    assert all(len(cells(x)) == len(header) for x in lines[at:] if x.startswith("|"))
    wer = header.index("WER % (LipNet) ↓ †1")
    m_lmd = header.index("M-LMD (px) ↓")

    def row(source: str) -> list[str]:
        return cells(next(x for x in lines if f"| {source} |" in x))

    ours = row("talkbench, budget smoke")
    truth = row("talkbench: real test videos")
    reported = row("reported: seed003 Table 5")
    for measured in (ours, truth):
        assert 0.0 <= float(measured[wer]) <= 100.0  # a measured value, not "—" or "n/a"
    assert float(ours[m_lmd]) >= 0.0
    assert reported[1] == "ground-truth" and reported[wer] == "21.76"
    assert "not the lip reader of the papers (seed 003's ground truth: 21.76 %)" in md

    with open(tmp_path / "lb" / "grid.csv", newline="") as f:
        rows = {r["kind"]: r for r in csv.DictReader(f)}
    assert rows["model"]["wer_lipnet_comparable"] == "False"
    assert rows["model"]["wer_lipnet_n"] == "1"
