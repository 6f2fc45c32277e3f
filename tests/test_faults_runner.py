"""Fault injection, runner side (issue 12): damaged run files heal, limits are checked and
recorded, concurrent runs agree, `bench generate` checks its inputs. Each test reproduces a
case of the issue as it was found and asserts the fixed behaviour."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.core import cache

RUN_DIR = ("runs", "crema-d", "vougioukas2019")


def _bench(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _args(root: Path, tmp_path: Path, *extra: str, model: str = "still-image") -> list[str]:
    return ["run", "--model", model, "--dataset", "crema-d", "--root", str(root),
            "--runs-dir", str(tmp_path / "runs"), "--leaderboard-dir", str(tmp_path / "lb"),
            "--cache-dir", str(tmp_path / "cache"), "--quiet", "--workers", "1",
            "--budget", "smoke", "--metrics", "psnr,ssim", *extra]


@pytest.fixture()
def crema(synth_crema_root, tmp_path) -> Path:
    root = tmp_path / "crema"
    shutil.copytree(synth_crema_root, root)
    return root


def _numbers(md: str) -> list[str]:
    """The leaderboard's table rows (the provenance footnotes name the time and commit)."""
    return [line for line in md.splitlines() if line.startswith("| ")]


@pytest.mark.parametrize("damage", ["truncated", "zero-byte"])
def test_damaged_generated_npz_is_regenerated(crema, tmp_path, damage):
    code, out = _bench(*_args(crema, tmp_path))
    assert code == 0, out
    md = (tmp_path / "lb" / "crema-d.md").read_text()
    npz = sorted(tmp_path.joinpath(*RUN_DIR, "still-image", "generated").glob("*.npz"))[0]
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"")
    record = tmp_path.joinpath(*RUN_DIR, "still-image", "scores", npz.stem + ".json")
    record.unlink()  # the score must be recomputed from the regenerated frames
    code, out = _bench(*_args(crema, tmp_path))
    assert code == 0, out
    assert "Traceback" not in out and "Aborted" not in out
    assert cache.npz_key(npz) is not None  # rewritten whole
    assert _numbers((tmp_path / "lb" / "crema-d.md").read_text()) == _numbers(md)


def test_corrupt_checkpoint_marker_retrains_instead_of_skipping(crema, tmp_path):
    code, out = _bench(*_args(crema, tmp_path, model="static-gan"))
    assert code == 0, out
    done = tmp_path.joinpath(*RUN_DIR, "static-gan", "checkpoint", "done.json")
    done.write_text("{not json")
    summary = tmp_path.joinpath(*RUN_DIR, "static-gan", "summary.json")
    summary.unlink()
    code, out = _bench(*_args(crema, tmp_path, model="static-gan"))
    assert code == 0, out
    assert "static-gan: training" in out  # retrained, not skipped with its old row kept
    assert json.loads(done.read_text())["model"] == "static-gan"
    assert summary.exists()


def test_stale_temporary_folders_of_dead_processes_are_swept(tmp_path):
    folder = tmp_path / "checkpoint"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f".checkpoint-tmp-{dead.stdout.strip()}-abcd1234"
    alive = tmp_path / f".checkpoint-tmp-{os.getpid()}-abcd1234"
    stale.mkdir()
    alive.mkdir()
    cache.write_folder(folder, "k", lambda d: {"ok": True})
    assert not stale.exists() and alive.exists()
    assert cache.read_folder(folder, "k")["ok"] is True
    assert cache.read_folder(folder, "other") is None


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_invalid_test_clip_limits_are_refused(crema, tmp_path, limit):
    code, out = _bench(*_args(crema, tmp_path, "--max-test-clips", limit))
    assert code != 0
    assert f"--max-test-clips must be a positive number of clips, got {limit}" in out
    assert "Traceback" not in out


def test_test_clip_limit_is_recorded_and_names_the_test_set(crema, tmp_path):
    code, out = _bench(*_args(crema, tmp_path, "--max-test-clips", "1"))
    assert code == 0, out
    limited = json.loads(tmp_path.joinpath(*RUN_DIR, "still-image", "summary.json").read_text())
    assert limited["provenance"]["max_test_clips"] == 1 and limited["n_test"] == 1
    code, out = _bench(*_args(crema, tmp_path))
    assert code == 0, out
    full = json.loads(tmp_path.joinpath(*RUN_DIR, "still-image", "summary.json").read_text())
    assert full["provenance"]["max_test_clips"] is None
    assert full["provenance"]["test_set"] != limited["provenance"]["test_set"]


def test_unknown_dataset_is_named_as_unknown(tmp_path):
    code, out = _bench("run", "--dataset", "nosuch", "--root", str(tmp_path), "--quiet")
    assert code != 0
    assert "unknown dataset 'nosuch'" in out and "--root is required" not in out


def test_messages_keep_their_closing_quotes(tmp_path):
    code, out = _bench("run", "--dataset", "nosuch", "--root", str(tmp_path), "--quiet")
    assert "'nosuch'" in out


def test_two_concurrent_runs_on_one_runs_dir_agree_with_a_single_run(crema, tmp_path):
    # every run in its own process (as a user runs them): in-process runs would inherit the
    # test session's torch thread count, and float sums depend on it
    def bench_process(out: Path) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", "from bench.cli import main; main()",
             *_args(crema, out, model="static-gan")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    single, shared = tmp_path / "single", tmp_path / "shared"
    alone = bench_process(single)
    output = alone.communicate(timeout=600)[0]
    assert alone.returncode == 0, output
    runs = [bench_process(shared) for _ in range(2)]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
    # both wrote the same, finished files: the leaderboard equals the single run's
    assert _numbers((shared / "lb" / "crema-d.md").read_text()) == \
        _numbers((single / "lb" / "crema-d.md").read_text())
    leftovers = [p for p in shared.rglob(".*") if "-tmp-" in p.name or "-old-" in p.name
                 or p.name.startswith(".tmp-")]
    assert not leftovers


# ---------------------------------------------------------------------------------------------
# bench generate


@pytest.fixture()
def speech(synth_native_root, tmp_path) -> Path:
    from bench.data.media import read_media, write_wav

    video = sorted(Path(synth_native_root).rglob("*.mp4"))[0]
    path = tmp_path / "speech.wav"
    write_wav(path, read_media(video).audio)
    return path


@pytest.fixture()
def photo(synth_native_root, tmp_path) -> Path:
    from PIL import Image

    from bench.data.media import read_media

    video = sorted(Path(synth_native_root).rglob("*.mp4"))[0]
    path = tmp_path / "face.png"
    Image.fromarray(read_media(video).frames[0]).save(path)
    return path


def _generate(image: Path, audio: Path, out: Path, *extra: str) -> tuple[int, str]:
    return _bench("generate", "--model", "still-image", "--image", str(image), "--audio",
                  str(audio), "--out", str(out), *extra)


def test_generate_aligns_the_photo_as_the_runner_does(photo, speech, tmp_path):
    from bench.data.media import read_media
    from bench.data.preprocess import PrepParams

    code, out = _generate(photo, speech, tmp_path / "out.mp4")
    assert code == 0, out
    frames = read_media(tmp_path / "out.mp4").frames
    size = PrepParams().size
    assert frames.shape[1:3] == (size, size)  # the aligned crop, not the 256x256 photo


@pytest.mark.parametrize("kind", ["face-less", "1x1"])
def test_generate_refuses_a_photo_without_a_face(speech, tmp_path, kind):
    from PIL import Image

    rng = np.random.default_rng(0)
    size = (200, 200) if kind == "face-less" else (1, 1)
    image = tmp_path / "bad.png"
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(image)
    code, out = _generate(image, speech, tmp_path / "out.mp4")
    assert code != 0 and "Traceback" not in out
    assert ("no face found in the image" in out) if kind == "face-less" else "too small" in out
    assert not (tmp_path / "out.mp4").exists()


def test_generate_refuses_truncated_or_silent_audio(photo, speech, tmp_path):
    from bench.data.media import write_wav

    data = speech.read_bytes()
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(data[: len(data) // 2])
    code, out = _generate(photo, truncated, tmp_path / "out.mp4")
    assert code != 0 and "truncated" in out and "Traceback" not in out
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros(16_000, np.float32))
    code, out = _generate(photo, silent, tmp_path / "out.mp4")
    assert code != 0 and "silent" in out
    assert not (tmp_path / "out.mp4").exists()


def test_generate_with_another_models_checkpoint_is_one_line(crema, photo, speech, tmp_path):
    code, out = _bench(*_args(crema, tmp_path, model="static-gan"))
    assert code == 0, out
    checkpoint = tmp_path.joinpath(*RUN_DIR, "static-gan", "checkpoint")
    code, out = _bench("generate", "--model", "vougioukas", "--image", str(photo), "--audio",
                       str(speech), "--checkpoint", str(checkpoint), "--out",
                       str(tmp_path / "out.mp4"))
    assert code != 0
    assert f"{checkpoint} is a checkpoint of static-gan, not of vougioukas" in out
    assert len(out.strip().splitlines()) == 1
