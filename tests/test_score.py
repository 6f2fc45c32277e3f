"""`bench score`: folders of generated and real videos -> per-clip table, summary, leaderboard;
every bad pair gets one line and the rest is scored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.media import read_media, write_video


@pytest.fixture(scope="module")
def folders(synth_native_root, tmp_path_factory) -> tuple[Path, Path]:
    """gt/: three real clips; pred/: a noisy copy, a copy without audio, a short copy, a
    face-less video, a file that is not a video; one real clip has no generated video."""
    videos = sorted(Path(synth_native_root).glob("spk*/*.mp4"))[:4]
    base = tmp_path_factory.mktemp("score")
    gt, pred = base / "gt", base / "pred"
    gt.mkdir()
    pred.mkdir()
    rng = np.random.default_rng(0)
    clips = {}
    for name, path in zip(("noisy", "silent", "short", "missing"), videos, strict=True):
        media = read_media(path)
        clips[name] = media
        write_video(gt / f"{name}.mp4", media.frames, media.audio)
    noise = rng.integers(-12, 13, clips["noisy"].frames.shape)
    noisy = np.clip(clips["noisy"].frames.astype(int) + noise, 0, 255).astype(np.uint8)
    write_video(pred / "noisy.mp4", noisy, clips["noisy"].audio)
    write_video(pred / "silent.mp4", clips["silent"].frames, None)
    write_video(pred / "short.mp4", clips["short"].frames[:-10], clips["short"].audio)
    faceless = rng.integers(0, 256, clips["noisy"].frames.shape, dtype=np.uint8)
    write_video(gt / "faceless.mp4", faceless, clips["noisy"].audio)
    write_video(pred / "faceless.mp4", faceless, clips["noisy"].audio)
    (pred / "broken.mp4").write_text("not a video")
    write_video(gt / "broken.mp4", clips["noisy"].frames, clips["noisy"].audio)
    return pred, gt


def test_score_folders_reports_each_bad_pair_and_scores_the_rest(folders, tmp_path):
    pred, gt = folders
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["score", "--pred", str(pred), "--gt", str(gt),
                                       "--metrics", "psnr,ssim,cpbd", "--out", str(out),
                                       "--quiet"])
    assert result.exit_code == 0, result.output
    def strict(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    summary = json.loads((out / "summary.json").read_text(), parse_constant=strict)
    psnr = summary["aggregate"]["psnr"]
    assert psnr["kind"] == "mean" and psnr["n"] == 1 and psnr["n_infinite"] == 1
    assert sorted(summary["skipped"]) == ["broken", "faceless", "missing", "short"]
    assert "lengths differ" in summary["skipped"]["short"]
    assert "no face" in summary["skipped"]["faceless"]
    assert "no generated video" in summary["skipped"]["missing"]
    assert "broken.mp4" in summary["skipped"]["broken"]
    assert summary["n_scored"] == 2 and summary["n_test"] == 6
    for reason in summary["skipped"].values():  # one line each on stderr
        assert reason in result.output and "\n" not in reason
    table = (out / "scores.csv").read_text().splitlines()
    assert table[0].startswith("clip_id,psnr,ssim,cpbd")
    rows = {line.split(",")[0]: line.split(",")[1:] for line in table[1:]}
    assert set(rows) == {"noisy", "silent"}
    # the same frames aligned with the same transforms are identical: PSNR infinite, SSIM 1
    assert rows["silent"][0] == "inf" and float(rows["silent"][1]) == pytest.approx(1.0)
    assert 20 < float(rows["noisy"][0]) < 40
    md = (out / "leaderboard.md").read_text()
    assert "| pred |" in md and "4 of 6 test clips skipped" in md


def test_score_without_alignment_uses_frames_as_they_are(folders, tmp_path):
    from bench.folder_scoring import ScoreConfig, run_score

    pred, gt = folders
    cfg = ScoreConfig(pred_dir=pred, gt_dir=gt, metrics=["psnr"], align="none",
                      out_dir=tmp_path / "out", progress=False)
    lines: list[str] = []
    result = run_score(cfg, echo=lines.append)
    # without alignment the face-less pair is scored too (PSNR needs no face)
    assert "faceless" not in result.skipped and "short" in result.skipped
    noisy = read_media(pred / "noisy.mp4").frames.astype(np.float64)
    real = read_media(gt / "noisy.mp4").frames.astype(np.float64)
    mse = ((noisy - real) ** 2).reshape(len(noisy), -1).mean(axis=1)
    expected = np.mean(10 * np.log10(255.0**2 / mse))
    table = (tmp_path / "out" / "scores.csv").read_text().splitlines()
    value = float(next(line for line in table if line.startswith("noisy,")).split(",")[1])
    assert value == pytest.approx(expected, rel=1e-9)
    assert result.table.loc["noisy", "psnr"] == value


def test_python_api_returns_the_per_clip_table(folders, tmp_path, monkeypatch):
    """``bench.score_folders`` (lazily imported): a DataFrame per clip, the summary beside it,
    and no files unless asked for."""
    import subprocess
    import sys

    code = ("import sys, bench; assert 'torch' not in sys.modules and 'pandas' not in "
            "sys.modules; assert callable(bench.score_folders)")
    subprocess.run([sys.executable, "-c", code], check=True)
    import bench

    pred, gt = folders
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    table = bench.score_folders(pred, gt, metrics="psnr", align="none", echo=lines.append)
    assert list(tmp_path.iterdir()) == []  # nothing written
    assert table.index.name == "clip_id" and list(table.columns) == ["psnr"]
    assert sorted(table.index) == ["faceless", "noisy", "silent"]
    assert table.loc["silent", "psnr"] == np.inf and 20 < table.loc["noisy", "psnr"] < 40
    summary = table.attrs["summary"]
    assert summary["aggregate"]["psnr"]["n_infinite"] == 2  # silent and faceless: identical
    assert set(table.attrs["skipped"]) == {"broken", "missing", "short"}
    assert any("short" in line for line in lines)


def test_score_needs_videos(tmp_path):
    result = CliRunner().invoke(main, ["score", "--pred", str(tmp_path)])
    assert result.exit_code != 0
    assert "no videos" in result.output and "Traceback" not in result.output


def test_score_au_with_openface_csvs(folders, tmp_path):
    """``--openface-pred DIR --openface-gt DIR``: the AU metric labels each pair with its
    OpenFace CSVs (seed 004 Sect. 5), AU14 included, pooling the frames of every clip; the two
    options go together, and only with the AU metric."""
    from openface_csvs import write_openface_csv

    from bench.core.au_rules import AUS

    pred, gt = folders
    of_pred, of_gt = tmp_path / "openface_pred", tmp_path / "openface_gt"
    of_pred.mkdir()
    of_gt.mkdir()
    rng = np.random.default_rng(0)
    real, made = {}, {}
    for name in ("noisy", "silent"):
        n = len(read_media(gt / f"{name}.mp4").frames)
        real[name] = rng.random((n, len(AUS))) < 0.4
        made[name] = real[name] ^ (rng.random((n, len(AUS))) < 0.2)  # a fifth flipped
        write_openface_csv(of_gt / f"{name}.csv", real[name])
        write_openface_csv(of_pred / f"{name}.csv", made[name])
    out = tmp_path / "out"
    args = ["score", "--pred", str(pred), "--gt", str(gt), "--metrics", "au", "--align",
            "none", "--out", str(out), "--quiet"]
    result = CliRunner().invoke(main, [*args, "--openface-pred", str(of_pred),
                                       "--openface-gt", str(of_gt)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    y = np.concatenate([real["noisy"], real["silent"]])
    p = np.concatenate([made["noisy"], made["silent"]])
    tp, fp, fn = (p & y).sum(0), (p & ~y).sum(0), (~p & y).sum(0)
    f1 = 2 * tp / (2 * tp + fp + fn)
    for i, au in enumerate(AUS):
        value = summary["aggregate"][f"au{au[2:]}_f1"]["value"]
        assert value == pytest.approx(f1[i]), au
    assert summary["aggregate"]["au_f1"]["value"] == pytest.approx(f1.mean())  # all five
    assert summary["provenance"]["metrics"]["au"]["labels"] == "openface"
    assert "no OpenFace CSV" in result.output  # the face-less pair has none: one line

    only = CliRunner().invoke(main, [*args, "--openface-pred", str(of_pred)])
    assert only.exit_code != 0 and "--openface-pred needs --openface-gt" in only.output
    other = CliRunner().invoke(main, [*args[:6], "psnr", *args[7:], "--openface-pred",
                                      str(of_pred), "--openface-gt", str(of_gt)])
    assert other.exit_code != 0 and "AU metric" in other.output
    assert "Traceback" not in only.output + other.output
