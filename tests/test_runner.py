"""End to end: synthetic CREMA-D tree -> still-image run -> leaderboard; resume; bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.media import write_video, write_wav


def _bench(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.fixture()
def crema_tree(synth_crema_root, tmp_path) -> Path:
    root = tmp_path / "crema"
    shutil.copytree(synth_crema_root, root)
    return root


def _run_args(root: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "--model", "still-image", "--dataset", "crema-d", "--root", str(root),
            "--runs-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"),
            "--cache-dir", str(tmp_path / "cache"), "--quiet", "--workers", "1",
            "--metrics", "psnr,ssim", *extra]


def _add_bad_clips(root: Path) -> dict[str, str]:
    """A truncated flv, a clip without audio, a face-less clip: all test-split actors."""
    rng = np.random.default_rng(0)
    videos = sorted((root / "VideoFlash").glob("1015_*.flv"))
    data = videos[0].read_bytes()
    (root / "VideoFlash" / "1015_TSI_NEU_XX.flv").write_bytes(data[: len(data) // 3])
    shutil.copy(root / "AudioWAV" / f"{videos[0].stem}.wav",
                root / "AudioWAV" / "1015_TSI_NEU_XX.wav")
    noise = rng.integers(0, 256, (40, 360, 480, 3), dtype=np.uint8)
    write_video(root / "VideoFlash" / "1020_WSI_NEU_XX.flv", noise, None, fps=30)
    write_wav(root / "AudioWAV" / "1020_WSI_NEU_XX.wav",
              0.1 * rng.standard_normal(25_600).astype(np.float32))
    write_video(root / "VideoFlash" / "1015_WSI_SAD_XX.flv", noise, None, fps=30)
    return {"1015_TSI_NEU_XX": "truncated", "1020_WSI_NEU_XX": "no face",
            "1015_WSI_SAD_XX": "no audio"}


def test_crema_d_run_writes_leaderboard_and_resumes(crema_tree, tmp_path):
    bad = _add_bad_clips(crema_tree)
    code, out = _bench(*_run_args(crema_tree, tmp_path))
    assert code == 0, out
    md = (tmp_path / "lb" / "crema-d.md").read_text()
    assert "| still-image |" in md and "| ground truth |" in md
    assert "reported: seed003 Table 6" in md and "reported: seed000 Table I" in md
    assert "3 of" in md and "test clips skipped" in md
    for clip_id, reason in bad.items():
        assert clip_id in out and reason in out.split(clip_id, 1)[1].splitlines()[0]
    run_dir = tmp_path / "runs" / "crema-d" / "vougioukas2019" / "still-image"
    generated = sorted((run_dir / "generated").glob("*.npz"))
    assert generated and (run_dir / "summary.json").exists()
    assert list(run_dir.glob("strip_*.png"))

    # a killed run: the summary and one score record are gone; generation must not be redone
    stamps = {p: p.stat().st_mtime_ns for p in generated}
    (run_dir / "summary.json").unlink()
    next((run_dir / "scores").glob("*.json")).unlink()
    (tmp_path / "lb" / "crema-d.md").unlink()
    code, out = _bench(*_run_args(crema_tree, tmp_path))
    assert code == 0, out
    assert {p: p.stat().st_mtime_ns for p in generated} == stamps
    assert (tmp_path / "lb" / "crema-d.md").read_text() == md


def test_missing_root_and_wrong_layout_are_one_line(tmp_path):
    code, out = _bench("run", "--model", "still-image", "--dataset", "crema-d",
                       "--runs-dir", str(tmp_path / "runs"), "--quiet")
    assert code != 0 and "--root is required" in out and "Traceback" not in out
    (tmp_path / "notcrema").mkdir()
    code, out = _bench(*_run_args(tmp_path / "notcrema", tmp_path))
    assert code != 0 and "VideoFlash" in out and len(out.strip().splitlines()) == 1
    code, out = _bench(*_run_args(tmp_path / "nowhere", tmp_path))
    assert code != 0 and "does not exist" in out
