"""`bench run --protocol`: a paper's evaluation setting end to end (issue 11, SPEC 7)."""

from __future__ import annotations

import json
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
