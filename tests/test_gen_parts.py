"""Shared generator pieces: audio windows line up with frames, image round trips, the mouth
region of the aligned crop, the perceptual loss's stand-in; and the training pattern of
:mod:`bench.core.training` that generators and judges share: the time-capped loop, learning
rate schedules, budget lookup."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.core import training
from bench.generators import audio_frames, face_regions, images, perceptual


def test_audio_windows_are_centred_on_their_frame():
    audio = np.arange(640 * 10, dtype=np.float32)
    windows = audio_frames.audio_windows(audio, 10, 3200)
    assert windows.shape == (10, 3200)
    centre = 640 * 4 + 320  # frame 4 spans [2560, 3200)
    assert windows[4, 1600] == centre and windows[4, 0] == centre - 1600
    assert (windows[0, :1280] == 0).all() and windows[0, 1280] == 0 and windows[0, 1281] == 1
    assert (windows[9, -1280:] == 0).all()  # beyond the clip's end: zeros


def test_mfcc_windows_follow_the_speech():
    rng = np.random.default_rng(0)
    audio = np.zeros(640 * 25, np.float32)
    audio[640 * 12:640 * 13] = rng.normal(0, 0.3, 640)  # a burst in frame 12 only
    windows = audio_frames.mfcc_windows(audio, 25, 7)
    assert windows.shape == (25, 13, 7)
    energy = windows[:, 0, 3]  # log energy at each window's centre
    assert int(np.argmax(energy)) == 12
    assert audio_frames.mfcc_windows(audio, 25, 35, slice(1, 13)).shape == (25, 12, 35)


def test_image_round_trip_and_resize():
    frames = np.random.default_rng(1).integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    x = images.to_tensor(frames)
    assert x.shape == (2, 3, 3, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert (images.to_uint8(x) == frames).all()
    assert images.to_uint8(images.to_tensor(frames[0], 8), (16, 16)).shape == (3, 16, 16, 3)


def test_mouth_region_is_in_the_lower_middle_of_the_crop():
    for size in (32, 64, 128):
        top, bottom, left, right = face_regions.mouth_box(size)
        assert size * 0.45 < top < bottom <= size and left < size / 2 < right
        weights = face_regions.mouth_weights(size)
        y, x = np.unravel_index(int(weights.argmax()), (size, size))
        assert top <= y < bottom and left <= x < right
        mask = face_regions.lower_half_mask(size)
        assert mask[0, 0, :top].sum() < mask.sum() and mask[0, 0, -1].all()


def test_perceptual_stand_in_is_named_and_differentiable(monkeypatch, tmp_path):
    monkeypatch.setenv("TALKBENCH_WEIGHTS", str(tmp_path))
    monkeypatch.delenv(perceptual.VGG19_WEIGHTS_ENV, raising=False)
    loss = perceptual.VGGPerceptualLoss(layers=("relu1_2", "relu2_2"))
    assert loss.source.startswith("stand-in")
    a = torch.zeros(1, 3, 32, 32, requires_grad=True)
    b = torch.rand(1, 3, 32, 32) * 2 - 1
    value = loss(a, b)
    value.backward()
    assert value > 0 and a.grad.abs().sum() > 0 and float(loss(b, b)) == 0.0
    monkeypatch.setenv(perceptual.VGG19_WEIGHTS_ENV, str(tmp_path / "missing.pth"))
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        perceptual.VGGPerceptualLoss()


def test_run_steps_logs_and_stops_at_its_time_limit():
    log = training.run_steps(lambda i: {"loss": 10.0 / i}, steps=50, average=5)
    assert log.steps == 50 and not log.stopped_early
    assert log.first["loss"] > log.last["loss"]
    capped = training.run_steps(lambda i: {"loss": 1.0}, steps=10**9, max_seconds=0.05)
    assert capped.stopped_early and 0 < capped.steps < 10**9


def test_run_steps_counts_time_from_a_given_start():
    import time

    late = training.run_steps(lambda i: {"x": 0.0}, steps=5, max_seconds=10.0,
                              started=time.perf_counter() - 11.0)
    assert late.steps == 0 and late.stopped_early and late.first is None


def test_log_linear_learning_rate():
    assert training.log_linear_lr(1e-2, 1e-4, 1, 3) == 1e-2
    assert training.log_linear_lr(1e-2, 1e-4, 2, 3) == pytest.approx(1e-3)
    assert training.log_linear_lr(1e-2, 1e-4, 3, 3) == pytest.approx(1e-4)
    assert training.log_linear_lr(1e-2, 1e-4, 1, 1) == 1e-2


def test_step_decay_multiplies_before_every_nth_step():
    opt_a = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    opt_b = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    decay = training.StepDecay.every_epochs(2, items=30, items_per_step=10,
                                            factors=[(opt_a, 0.5), (None, 0.1), (opt_b, 0.1)])
    assert decay.every == 6  # 3 steps an epoch
    lrs = []
    for step in range(1, 14):
        decay(step)
        lrs.append(opt_a.param_groups[0]["lr"])
    assert lrs == [1.0] * 6 + [0.5] * 6 + [0.25]
    assert opt_b.param_groups[0]["lr"] == pytest.approx(0.01)


def test_budget_lookup_names_the_budgets():
    assert training.budget_plan({"smoke": 1, "demo": 2}, "demo") == 2
    with pytest.raises(ValueError, match="x: unknown budget 'big'; choose one of smoke, demo"):
        training.budget_plan({"smoke": 1, "demo": 2}, "big", "x")
