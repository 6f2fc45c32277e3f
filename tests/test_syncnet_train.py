"""talkbench's own SyncNet: training inputs, loss, storage, and the LSE metric's fallback to it.

The fast tests train with the ``smoke`` budget on toy clips (a bright/dark face whose audio is
loud/quiet with it); the ``slow`` test trains the ``demo`` budget on the synthetic corpus and
checks offsets on held-out speakers.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from bench.core.audio import audio_to_int16, mfcc
from bench.core.sync_windows import prepare_lip_frames, resize_frames
from bench.core.weights import WEIGHTS_DIR_ENV, sha256_of_file
from bench.data.clip import Clip
from bench.judges import syncnet as sn
from bench.judges import syncnet_pairs as sp
from bench.judges import syncnet_train as st
from bench.judges.store import store_trained, trained_judge
from bench.metrics.base import MetricContext, MetricUnavailable, Sample
from bench.metrics.lse import LSE, lse_from_arrays

DATASET = "toy"


# ---------------------------------------------------------------------------------------------
# Toy clips and a perfect judge


def toy_clip(index: int, num_frames: int = 32, size: int = 32, seed: int = 0) -> Clip:
    """A clip whose frames are bright (200) where a random on/off sequence is on and dark (50)
    elsewhere; its audio is loud noise (+-10000 / 32768) where on, quiet (+-1000) elsewhere,
    in sync with the frames."""
    rng = np.random.default_rng([seed, index])
    pattern = rng.integers(0, 2, num_frames)
    frames = np.where(pattern[:, None, None, None] == 1, 200, 50)
    frames = np.broadcast_to(frames, (num_frames, size, size, 3)).astype(np.uint8).copy()
    frames[:, : size // 4] = 120  # a constant "forehead", so frames are not uniform
    amplitude = np.repeat(np.where(pattern == 1, 10000.0, 1000.0), 640)
    audio = amplitude * np.sign(rng.standard_normal(num_frames * 640)) / 32768.0
    return Clip(speaker=f"s{index % 2}", clip_id=f"toy{index}", frames=frames,
                audio=audio.astype(np.float32))


class PerfectJudge(nn.Module):
    """Lip embedding: mean brightness of each of the 5 frames; audio embedding: loudness (MFCC
    log energy) at the start of each of the 5 frames; both mapped to about 0 .. 1. In sync,
    the two agree; shifted, they differ."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 5, H, W)
        return (x.mean(dim=(1, 3, 4)) - 50.0) / 150.0

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 13, 20)
        low, high = (math.log(400 * (1 + 0.97**2) * a**2 / 2) for a in (1000.0, 10000.0))
        return (x[:, 0, 0, 0::4] - low) / (high - low)


# ---------------------------------------------------------------------------------------------
# Inputs are the metric's


def test_bank_and_batches_use_the_lse_inputs():
    """Lip windows are the metric's 224x224 BGR crops of frames v..v+4, audio windows its MFCC
    windows 4u..4u+20; labels mark in-sync pairs 1, pairs >= 2 frames apart in the same clip
    0, the rest -1."""
    clips = [toy_clip(i, num_frames=30 + 5 * i) for i in range(3)]
    rng = np.random.default_rng(0)
    bank = sp.build_bank(clips, rng)
    assert list(bank.windows) == [25, 30, 35]  # min(T, samples // 640) - 5
    for clip, coeffs in zip(clips, bank.mfccs, strict=True):
        np.testing.assert_array_equal(coeffs.numpy(),
                                      mfcc(audio_to_int16(clip.audio)).astype(np.float32))

    plan = st.Budget(steps=1, batch=6, group=3, lr=1e-3, lr_final=1e-3, speech_fraction=0.5)
    pairs = sp.draw_pairs(bank, plan, rng)
    lips, audio = sp.network_inputs(bank, pairs, torch.device("cpu"))
    assert lips.shape == (6, 3, 5, 224, 224) and audio.shape == (12, 1, 13, 20)
    assert pairs.labels.shape == (6, 12)
    # Two clips, three lip windows each; audio: the three own windows, then three shifted.
    assert len({c for c, _ in pairs.lips}) == 2
    for i, (c, v) in enumerate(pairs.lips):
        group = i // 3
        assert pairs.audio[group * 6 + i % 3] == (c, v)
        shifted = pairs.audio[group * 6 + 3 + i % 3]
        assert shifted[0] == c and sp.MIN_SHIFT <= abs(shifted[1] - v) <= sp.MAX_SHIFT
        # The metric's inputs: frames v..v+4 resized to 224 in BGR; MFCC frames 4u..4u+20.
        video = torch.from_numpy(clips[c].frames[v:v + 5]).permute(0, 3, 1, 2)
        expected = prepare_lip_frames(video).transpose(0, 1).float()  # (3, 5, 224, 224)
        torch.testing.assert_close(lips[i], expected, rtol=0, atol=0)
    for j, (c, u) in enumerate(pairs.audio):
        coeffs = mfcc(audio_to_int16(clips[c].audio)).astype(np.float32)  # as embed_audio
        np.testing.assert_array_equal(audio[j, 0].numpy(), coeffs[4 * u:4 * u + 20].T)
    for i, (c, v) in enumerate(pairs.lips):
        for j, (c2, u) in enumerate(pairs.audio):
            want = -1 if c2 != c else 1 if u == v else 0 if abs(u - v) >= 2 else -1
            assert pairs.labels[i, j] == want, (i, j)
    # The window's BGR order: channel 0 is the RGB blue channel.
    video = torch.from_numpy(clips[0].frames[:5]).permute(0, 3, 1, 2)
    assert torch.equal(prepare_lip_frames(video)[:, 0], resize_frames(video)[:, 2])


def test_speech_windows_are_the_loud_ones():
    clip = toy_clip(7, num_frames=40)
    coeffs = mfcc(audio_to_int16(clip.audio))
    windows = sp.speech_windows(coeffs, 35)
    loud = np.repeat(clip.frames[:, 20, 0, 0] == 200, 4)[: coeffs.shape[0]]
    share = np.array([loud[4 * v:4 * v + 20].mean() for v in range(35)])
    # A frame's MFCC frames start inside it; the loud 25 ms frames are the ones over 3 nats.
    assert set(windows) <= set(np.flatnonzero(share >= 0.4))
    assert set(np.flatnonzero(share >= 0.6)) <= set(windows)


def test_contrastive_loss_is_the_papers_formula():
    """E = 1/2 (mean over genuine pairs of d^2 + mean over false pairs of max(m - d, 0)^2),
    the zero padding counted as a false pair of every lip window."""
    lip = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    audio = torch.tensor([[0.0, 1.0], [3.0, 4.0], [0.0, 0.5]])
    labels = torch.tensor([[1, 0, -1], [0, 1, 0]], dtype=torch.int8)
    loss, dists = st.contrastive_loss(lip, audio, labels, margin=2.0)
    eps = 1e-6  # torch.nn.functional.pairwise_distance adds eps to the difference
    d = lambda a, b: float(torch.linalg.vector_norm(a - b + eps))  # noqa: E731
    pos = [d(lip[0], audio[0]), d(lip[1], audio[1])]
    neg = [d(lip[0], audio[1]), d(lip[1], audio[0]), d(lip[1], audio[2]),
           d(lip[0], torch.zeros(2)), d(lip[1], torch.zeros(2))]
    expected = 0.5 * (np.mean(np.square(pos)) + np.mean(np.square(np.maximum(2.0 - np.array(neg),
                                                                                    0))))
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert dists["d_pos"] == pytest.approx(np.mean(pos), rel=1e-6)
    assert dists["d_neg"] == pytest.approx(np.mean(neg), rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Evaluation: offsets and their sign


def test_shift_audio_moves_the_content_earlier():
    audio = np.arange(10 * 640, dtype=np.float32)
    ahead = st.shift_audio(audio, 2)
    assert ahead[0] == 2 * 640 and ahead[-1] == 2 * 640 - 1
    assert st.shift_audio(audio, -3)[3 * 640] == 0


def test_evaluate_with_a_perfect_judge_finds_every_offset():
    """Shifted audio leading the video by k frames gives AV offset +k (vshift - argmin)."""
    clips = [toy_clip(i, num_frames=60) for i in range(3)]
    result = st.evaluate(PerfectJudge(), clips, device="cpu", shift=7)
    assert result["n"] == 3 and result["n_skipped"] == 0
    assert result["offset_accuracy"] == 1.0
    assert result["shifted_offset_accuracy"] == 1.0
    assert result["av_offset"] == 0.0
    assert result["lse_c"] > result["lse_c_shifted"] > 0
    assert result["dist_gap"] > 0.3
    net = PerfectJudge()
    for k in (-4, 0, 6):
        clip = clips[0]
        video = torch.from_numpy(clip.frames).permute(0, 3, 1, 2)
        bgr = prepare_lip_frames(video).permute(0, 2, 3, 1).numpy()
        shifted = audio_to_int16(st.shift_audio(clip.audio, k))
        assert lse_from_arrays(bgr, shifted, net).av_offset == k
    short = st.evaluate(PerfectJudge(), [toy_clip(0, num_frames=20)], device="cpu")
    assert short["n"] == 0 and short["n_skipped"] == 1


# ---------------------------------------------------------------------------------------------
# Smoke training, the store, and the metric


@pytest.fixture
def no_official_weights(tmp_path, monkeypatch):
    """An empty weights dir and no $TALKBENCH_SYNCNET_WEIGHTS."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(folder))
    monkeypatch.delenv(sn.SYNCNET_WEIGHTS_ENV, raising=False)
    return folder


@pytest.fixture(scope="module")
def smoke_judge(tmp_path_factory):
    """A smoke-budget SyncNet trained on toy clips, stored for dataset ``toy`` (read-only)."""
    clips = [toy_clip(i, num_frames=24) for i in range(4)]
    cache = tmp_path_factory.mktemp("syncnet") / "cache"
    found = store_trained("syncnet", DATASET, st.train,
                          record={"split": "toy-split", "budget": "smoke", "n_train": 3},
                          cache_dir=cache, train=clips[:3], val=clips[3:], budget="smoke",
                          device="cpu", seed=0, progress=False)
    return found, cache, clips


def test_smoke_training_writes_a_syncnet_python_state_dict(smoke_judge):
    found, cache, _ = smoke_judge
    assert trained_judge("syncnet", DATASET, cache) is not None
    log = found.record["log"]
    assert log["steps"] == st.BUDGETS["smoke"].steps and not log["stopped_early"]
    assert math.isfinite(log["train_loss_last"]) and log["n_train_clips"] == 3
    assert log["val"]["n"] == 1 and 0.0 <= log["val"]["offset_accuracy"] <= 1.0
    json.dumps(log)  # plain JSON values

    weights = found.directory / st.WEIGHTS_FILE
    state = torch.load(weights, map_location="cpu", weights_only=True)
    reference = sn.SyncNet().state_dict()
    assert list(state) == list(reference)  # syncnet_python's keys, in its order
    assert all(state[k].shape == reference[k].shape for k in reference)
    # Loads through the official weights' loader, strictly, with the provenance JSON.
    net, provenance = sn.load_syncnet(weights, device="cpu")
    assert not net.training
    assert provenance["sha256"] == sha256_of_file(weights) == log["weights_sha256"]
    assert provenance["source"].startswith("talkbench-trained")
    loaded = st.load(found.directory, "cpu")
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, state[key]), key
    # evaluate() on the judge: the contract's third function.
    quality = st.evaluate(loaded, [toy_clip(9, num_frames=22)], device="cpu")
    assert quality["n"] == 1 and set(quality) >= {"lse_c", "lse_c_shifted", "offset_accuracy"}


def test_lse_metric_uses_the_judge_trained_on_its_dataset(smoke_judge, no_official_weights):
    found, cache, clips = smoke_judge
    clip = toy_clip(5, num_frames=22, size=48)
    sample = Sample(clip_id="c", pred=clip.frames, audio=clip.audio)

    metric = LSE(device="cpu")
    metric.context = MetricContext(dataset=DATASET, cache_dir=cache)
    assert not metric.needs_trained_judge()
    row = metric.update(sample)

    net = st.load(found.directory, "cpu")
    video = torch.from_numpy(clip.frames).permute(0, 3, 1, 2)
    bgr = prepare_lip_frames(video).permute(0, 2, 3, 1).numpy()
    expected = lse_from_arrays(np.ascontiguousarray(bgr), audio_to_int16(clip.audio), net)
    assert row["lse_d"] == pytest.approx(expected.lse_d, abs=1e-4)
    assert row["lse_c"] == pytest.approx(expected.lse_c, abs=1e-4)
    assert row["av_offset"] == abs(expected.av_offset)  # the column is |offset| (issue 17)
    assert row["av_offset_signed"] == expected.av_offset

    provenance = metric.provenance()
    weights = found.directory / st.WEIGHTS_FILE
    sha = sha256_of_file(weights)
    assert provenance["source"] == found.describe()
    assert provenance["source"].startswith(f"talkbench-trained syncnet on {DATASET}/toy-split")
    assert provenance["file"] == str(weights) and provenance["sha256"] == sha
    assert metric.version == f"{LSE.base_version}+{sha[:12]}"


def test_lse_metric_without_any_syncnet_says_how_to_get_one(smoke_judge, no_official_weights):
    _, cache, _ = smoke_judge
    clip = toy_clip(5, num_frames=30)
    sample = Sample(clip_id="c", pred=clip.frames, audio=clip.audio)
    for dataset, hint in ((None, "--dataset <dataset>"), ("other", "--dataset other")):
        metric = LSE(device="cpu")
        metric.context = MetricContext(dataset=dataset, cache_dir=cache)
        with pytest.raises(MetricUnavailable, match="no SyncNet weights: put syncnet_v2.model"):
            metric.update(sample)
        reason = metric.provenance()["unavailable"]
        assert f"bench judges train syncnet {hint}" in reason
        assert metric.version == f"{LSE.base_version}+none"
        assert metric.needs_trained_judge() is (dataset is not None)


def test_official_weights_win_over_the_trained_judge(smoke_judge, no_official_weights,
                                                     tmp_path, monkeypatch):
    _, cache, _ = smoke_judge
    official = no_official_weights / sn.OFFICIAL_WEIGHTS_NAME
    torch.save(sn.random_syncnet(3, device="cpu")[0].state_dict(), official)
    metric = LSE(device="cpu")
    metric.context = MetricContext(dataset=DATASET, cache_dir=cache)
    assert not metric.needs_trained_judge()
    provenance = metric.provenance()
    assert provenance["file"] == str(official)
    assert provenance["sha256"] == sha256_of_file(official)
    assert "syncnet_v2.model" in provenance["source"]

    # A named file that does not exist is reported, not replaced by the trained judge.
    monkeypatch.setenv(sn.SYNCNET_WEIGHTS_ENV, str(tmp_path / "missing.model"))
    metric = LSE(device="cpu")
    metric.context = MetricContext(dataset=DATASET, cache_dir=cache)
    assert "does not exist" in metric.provenance()["unavailable"]
    assert not metric.needs_trained_judge()


def test_frozen_trunk_heads_are_the_networks_last_layers():
    """The cached-feature path computes exactly what the full network computes (eval mode),
    and trains only the last convolution block and the FC layers."""
    net, _ = sn.random_syncnet(4, device="cpu")
    rng = np.random.default_rng(1)
    lips = torch.from_numpy(rng.uniform(0, 255, (3, 3, 5, 224, 224)).astype(np.float32))
    audio = torch.from_numpy(rng.normal(0, 10, (4, 1, 13, 20)).astype(np.float32))
    with torch.no_grad():
        lip_feats = net.netcnnlip[:sp.TRUNK_LAYERS](lips).flatten(1)
        aud_feats = net.netcnnaud[:sp.TRUNK_LAYERS](audio).flatten(1)
        torch.testing.assert_close(sp.head_lip(net, lip_feats), net.forward_lip(lips),
                                   rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(sp.head_audio(net, aud_feats), net.forward_aud(audio),
                                   rtol=1e-4, atol=1e-4)
    head = {id(p) for p in sp.head_parameters(net)}
    trained = {name for name, p in net.named_parameters() if id(p) in head}
    assert trained == {name for name, _ in net.named_parameters()
                       if name.startswith(("netfc", "netcnnlip.18", "netcnnlip.19",
                                           "netcnnaud.18", "netcnnaud.19"))}


def test_frozen_trunk_training_leaves_the_trunk_at_its_init(smoke_judge):
    found, _, _ = smoke_judge
    trained = st.load(found.directory, "cpu").state_dict()
    init = sn.SyncNet()
    st._init_weights(init, torch.Generator().manual_seed(0))
    for name, value in init.state_dict().items():
        if "running" in name or "num_batches" in name:
            continue
        layer = int(name.split(".")[1]) if name.startswith("netcnn") else 99
        if layer < sp.TRUNK_LAYERS:
            assert torch.equal(trained[name], value), name
        elif name.endswith("weight") and "netfc" in name:
            assert not torch.equal(trained[name], value), name


def test_full_network_training_step(tmp_path):
    """A budget without a frozen trunk trains every layer (the paper budget's path)."""
    plan = st.Budget(steps=1, batch=2, group=2, lr=1e-3, lr_final=1e-3, augment=True,
                     bn_batches=1)
    log = st.train([toy_clip(i, num_frames=16) for i in range(2)], None, tmp_path,
                   budget="custom", device="cpu", seed=0, plan=plan)
    assert log["steps"] == 1 and log["training"] == "all layers trained" and "val" not in log
    trained = st.load(tmp_path, "cpu").state_dict()
    init = sn.SyncNet()
    st._init_weights(init, torch.Generator().manual_seed(0))
    assert not torch.equal(trained["netcnnlip.0.weight"], init.state_dict()["netcnnlip.0.weight"])


def test_unknown_budget_and_too_few_clips_are_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown budget"):
        st.train([toy_clip(0)], None, tmp_path, budget="huge", device="cpu")
    with pytest.raises(ValueError, match="none of the 2 has"):
        st.train([toy_clip(0, num_frames=9), toy_clip(1, num_frames=8)], None, tmp_path,
                 budget="smoke", device="cpu")


# ---------------------------------------------------------------------------------------------
# Demo budget on held-out synthetic speakers


def test_small_judge_finds_offsets_on_a_held_out_speaker(synth_native_root, tmp_path) -> None:
    """Issue 17, in the default run: a SyncNet trained for 150 steps on 3 speakers of the
    session corpus (6 clips) finds the AV offset of the unseen fourth speaker's clips within one
    frame, in sync and with the audio shifted by +-10 frames, on at least 4 of the 6 trials
    (chance: 3/31 each, so 4 or more by chance has probability about 1e-3), and its distance at
    the true offset is below the distance at far offsets. Measured here: 6 of 6, gap 4.4."""
    import dataclasses

    from bench.data.preprocess import PrepParams, load_prepared, prepare_all
    from bench.data.synthetic import SyntheticDataset

    refs = SyntheticDataset(synth_native_root).scan().clips
    report = prepare_all(refs, tmp_path / "prepared", PrepParams(), workers=1, progress=False)
    assert not report.failed
    clips = [load_prepared(r, tmp_path / "prepared") for r in refs]
    held_out = sorted({c.speaker for c in clips})[-1]
    train = [c for c in clips if c.speaker != held_out]
    test = [c for c in clips if c.speaker == held_out]
    assert (len(train), len(test)) == (6, 2)
    plan = dataclasses.replace(st.BUDGETS["demo"], steps=150, batch=32, trunk_windows=200,
                               calib_batches=1, bn_batches=4, val_clips=2)
    (tmp_path / "judge").mkdir()
    st.train(train, None, tmp_path / "judge", budget="demo", device="cpu", seed=0, plan=plan)
    result = st.evaluate(st.load(tmp_path / "judge", "cpu"), test, device="cpu", shift=10)
    assert result["n"] == 2
    hits = round(2 * result["offset_accuracy"] + 4 * result["shifted_offset_accuracy"])
    assert hits >= 4, result
    assert result["dist_gap"] > 0 and result["chance"] == pytest.approx(3 / 31)


@pytest.mark.slow
def test_demo_budget_finds_offsets_on_held_out_speakers(tmp_path: Path) -> None:
    """12 synthetic speakers x 6 clips: train on 8 speakers, validate on 1, test on 3 unseen
    speakers (18 clips). In sync, LSE-C must be clearly higher than with the audio shifted by
    10 frames, and the AV offset must be found within one frame (0 in sync, +-10 shifted).
    Prints the numbers and the training time."""
    from bench.data.preprocess import PrepParams, load_prepared, prepare_all
    from bench.data.synth import build_corpus
    from bench.data.synthetic import SyntheticDataset

    root = build_corpus(tmp_path / "corpus", layout="native", seed=0, n_speakers=12,
                        clips_per_speaker=6, workers=2, progress=False)
    refs = SyntheticDataset(root).scan().clips
    report = prepare_all(refs, tmp_path / "prepared", PrepParams(), workers=2, progress=False)
    assert not report.failed
    clips = [load_prepared(r, tmp_path / "prepared") for r in refs]
    speakers = sorted({c.speaker for c in clips})
    test_speakers, val_speakers = set(speakers[-3:]), {speakers[-4]}
    train = [c for c in clips if c.speaker not in test_speakers | val_speakers]
    val = [c for c in clips if c.speaker in val_speakers]
    test = [c for c in clips if c.speaker in test_speakers]
    assert (len(train), len(val), len(test)) == (48, 6, 18)

    cache = tmp_path / "cache"
    start = time.perf_counter()
    found = store_trained("syncnet", "synthetic", st.train,
                          record={"split": "held-out-speakers", "budget": "demo",
                                  "n_train": len(train)},
                          cache_dir=cache, train=train, val=val, budget="demo", device="cpu",
                          seed=0, progress=False)
    seconds = time.perf_counter() - start
    log = found.record["log"]
    net = found.load("cpu") if False else st.load(found.directory, "cpu")
    result = st.evaluate(net, test, device="cpu", shift=10)

    # The metric, through the run's context, gives the same numbers on a held-out clip.
    metric = LSE(device="cpu", weights=None)
    metric.context = MetricContext(dataset="synthetic", cache_dir=cache)
    clip = test[0]
    row = metric.update(Sample(clip_id=clip.clip_id, pred=clip.frames, audio=clip.audio))
    shifted = metric.update(Sample(clip_id=clip.clip_id, pred=clip.frames,
                                   audio=st.shift_audio(clip.audio, 10)))
    direct = st.clip_lse(net, clip.frames, [clip.audio, st.shift_audio(clip.audio, 10)])
    assert row["lse_c"] == pytest.approx(direct[0].lse_c, abs=1e-3)
    assert shifted["av_offset"] == direct[1].av_offset

    print(f"\ndemo training {seconds:.1f} s ({log['steps']} steps, load {log['load_s']} s, "
          f"train {log['train_s']} s), train loss {log['train_loss_first']:.2f} -> "
          f"{log['train_loss_last']:.2f}")
    print("val:", json.dumps({k: v for k, v in log.get("val", {}).items()
                              if k != "skipped_examples"}))
    print("held-out (18 clips):", json.dumps({k: v for k, v in result.items()
                                              if k != "skipped_examples"}))
    print(f"metric on {clip.clip_id}: in sync {row}, audio 10 frames ahead {shifted}")
    assert result["n"] == 18
    assert result["lse_c"] > result["lse_c_shifted"] + 1.0
    assert result["offset_accuracy"] >= 0.8
    assert result["shifted_offset_accuracy"] >= 0.8
