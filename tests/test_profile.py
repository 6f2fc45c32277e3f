"""bench profile: per-stage step timing, frames/s and peak memory of a generator's fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.adapters.eskimez_emotion import EskimezEmotion
from bench.adapters.speech2vid import Speech2Vid
from bench.adapters.still_image import StillImage
from bench.core.training import recording_training, run_steps
from bench.data.clip import Clip
from bench.profile import PeakMemory, profile_table, profile_training

torch.set_num_threads(1)


def clip(i: int, frames: int = 20, size: int = 64) -> Clip:
    rng = np.random.default_rng(i)
    video = rng.integers(0, 255, (frames, size, size, 3), dtype=np.uint8)
    audio = (0.1 * rng.standard_normal(frames * 640)).astype(np.float32)
    return Clip(clip_id=f"c{i}", speaker=f"s{i}", frames=video, audio=audio, emotion="HAP")


def test_recording_collects_every_stage_with_step_times():
    with recording_training() as logs:
        run_steps(lambda i: {"x": float(i)}, 4, desc="one")
        run_steps(lambda i: {"x": 0.0}, 2, desc="two")
    run_steps(lambda i: {"x": 0.0}, 2, desc="outside")
    assert [(log.desc, log.steps, len(log.step_seconds)) for log in logs] == [
        ("one", 4, 4), ("two", 2, 2)]
    assert logs[0].median_step_seconds == pytest.approx(np.median(logs[0].step_seconds[1:]))
    assert logs[0].as_dict()["median_step_s"] is not None


def test_speech2vid_profile_times_generator_and_deblur_stages():
    train = [clip(i) for i in range(3)]
    row = profile_training(Speech2Vid, train, "smoke", steps=3, device="cpu",
                           options={"deblur_layers": 2})
    stages = {s["stage"]: s for s in row["stages"]}
    assert set(stages) == {"speech2vid: generator", "speech2vid: deblur"}
    assert all(s["steps"] == 3 and s["median_step_s"] > 0 for s in stages.values())
    generator = stages["speech2vid: generator"]
    batch = Speech2Vid.configs["smoke"].batch
    assert generator["frames_per_step"] == batch  # one frame per sample
    median = generator["median_step_s"]  # rounded to 1e-4 s in the row: allow for that
    assert generator["frames_per_s"] == pytest.approx(batch / median, rel=1e-2 + 5e-5 / median)
    assert stages["speech2vid: deblur"]["frames_per_s"] is None  # a side stage
    assert row["device"] == "cpu" and row["peak_memory_kind"] == "CPU RSS rise"
    table = profile_table([row])
    assert table.count("| speech2vid | smoke | cpu |") == 2


def test_sequence_models_count_batch_times_length_capped_by_the_clips():
    adapter = EskimezEmotion()
    cfg = adapter.config_for("paper")
    short = [clip(0, frames=10)]
    assert adapter.frames_per_step(cfg, short) == cfg.batch * 10
    assert adapter.frames_per_step(cfg, [clip(0, frames=cfg.seq_len + 5)]) == \
        cfg.batch * cfg.seq_len


def test_models_without_training_steps_are_refused_and_warm_up_is_required():
    with pytest.raises(ValueError, match="TorchAdapter"):
        profile_training(StillImage, [clip(0)], "demo", steps=3)
    with pytest.raises(ValueError, match="at least 2"):
        profile_training(Speech2Vid, [clip(0)], "smoke", steps=1)
    with pytest.raises(ValueError, match="no config field batchsize"):
        profile_training(Speech2Vid, [clip(0)], "smoke", steps=2, options={"batchsize": 2})


def test_cpu_peak_memory_sees_a_large_allocation():
    import mmap
    import time

    size = 64 * 2**20
    with PeakMemory(torch.device("cpu"), interval=0.001) as memory:
        # fresh pages from the OS (malloc could reuse memory that is already resident)
        block = mmap.mmap(-1, size)
        block.write(b"\1" * size)
        time.sleep(0.05)
        block.close()
    assert memory.peak_bytes is not None and memory.peak_bytes >= 48 * 2**20


def test_cli_profiles_prepared_training_clips(synth_crema_root, tmp_path):
    import json

    from click.testing import CliRunner

    from bench.cli import main

    out = tmp_path / "profile.json"
    result = CliRunner().invoke(main, [
        "profile", "--model", "speech2vid", "--model", "still-image", "--budget", "smoke",
        "--steps", "2", "--clips", "2", "--set", "batch=3", "--dataset", "crema-d",
        "--root", str(synth_crema_root),
        "--cache-dir", str(tmp_path / "cache"), "--workers", "1", "--quiet", "--device", "cpu",
        "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "still-image: skipped" in result.output
    assert "| speech2vid | smoke | cpu | speech2vid: generator | 2 |" in result.output
    rows = json.loads(out.read_text())["rows"]
    assert [r["model"] for r in rows] == ["speech2vid"] and rows[0]["train_clips"] == 2
    assert rows[0]["batch"] == 3 and rows[0]["options"] == {"batch": 3}
