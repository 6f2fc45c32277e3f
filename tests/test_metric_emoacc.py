"""The emotion classifier judge (seed 002's emotion discriminator) and the EmoAcc metric."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bench import EMOTIONS
from bench.data.clip import Clip
from bench.judges import emotion_classifier as ec
from bench.judges.store import JUDGES, store_trained, trained_judge
from bench.metrics.base import MetricContext, MetricUnavailable, Sample
from bench.metrics.emoacc import EmoAcc

DATASET = "synthetic"


def test_the_package_registers_the_judge():
    assert JUDGES.get(ec.JUDGE_NAME) is ec


# ---------------------------------------------------------------------------------------------
# The network


def test_network_is_emogens_discemo() -> None:
    """Layer shapes and state-dict keys of EmoGen's DISCEMO (96x96 input -> 4608 features)."""
    net = ec.EmotionNet()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    expected = {
        "conv_1.0.weight": (64, 3, 3, 3), "conv_2.0.weight": (128, 64, 3, 3),
        "conv_3.0.weight": (256, 128, 3, 3), "conv_4.0.weight": (512, 256, 3, 3),
        "conv_5.0.weight": (512, 512, 3, 3), "projector.0.weight": (2048, 4608),
        "projector.2.weight": (512, 2048), "rnn_1.weight_ih_l0": (2048, 512),
        "rnn_1.weight_hh_l0": (2048, 512), "cls.0.weight": (6, 512), "cls.0.bias": (6,),
    }
    for key, shape in expected.items():
        assert shapes[key] == shape, key
    assert len(shapes) == 2 * 5 + 4 + 4 + 2  # convs, projector, LSTM (w/b ih/hh), classifier
    assert all(m.stride == (2, 2) and m.padding == (1, 1) for m in net.modules()
               if isinstance(m, torch.nn.Conv2d))
    assert net.rnn_1.num_layers == 1 and not net.rnn_1.bidirectional
    with torch.no_grad():
        out = net(torch.rand(2, 3, 5, 96, 96))
    assert out.shape == (2, len(EMOTIONS))
    # Eskimez et al.'s 128x128 crops give their 8192 projector inputs
    assert ec.EmotionNet(ec.NetConfig(size=128)).projector[0].in_features == 8192


def test_frames_are_embedded_one_by_one() -> None:
    """The CNN sees whole RGB frames (EmoGen's reshape mixes time and channels; see the
    module docstring): changing frame 2 of a window changes only frame 2's embedding."""
    torch.manual_seed(0)
    net = ec.EmotionNet(ec.BUDGETS["smoke"].net).eval()
    windows = torch.rand(3, 3, 5, 32, 32)
    changed = windows.clone()
    changed[:, :, 2] = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        a, b = net.frame_embeddings(windows), net.frame_embeddings(changed)
    assert a.shape == (3, 5, ec.BUDGETS["smoke"].net.embed)
    keep = [0, 1, 3, 4]
    torch.testing.assert_close(a[:, keep], b[:, keep], rtol=0, atol=0)
    assert (a[:, 2] - b[:, 2]).abs().max() > 1e-4


def test_window_starts() -> None:
    assert ec.window_starts(10) == [0, 5]
    assert ec.window_starts(12) == [0, 5, 7]  # the last window ends at the last frame
    assert ec.window_starts(5) == [0]
    with pytest.raises(ValueError, match="at least 5"):
        ec.window_starts(4)


def random_judge(seed: int = 0) -> ec.EmotionClassifier:
    torch.manual_seed(seed)
    net = ec.EmotionNet(ec.BUDGETS["smoke"].net)
    net.reset_parameters(torch.Generator().manual_seed(seed))
    return ec.EmotionClassifier(net.eval(), torch.device("cpu"))


def test_classify_is_softmax_of_mean_window_logits() -> None:
    judge = random_judge()
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (13, 32, 32, 3), dtype=np.uint8)  # windows 0, 5, 8
    frames = torch.from_numpy(video).permute(0, 3, 1, 2).float() / 255
    windows = torch.stack([frames[s:s + 5] for s in (0, 5, 8)]).transpose(1, 2)
    with torch.no_grad():
        logits = judge.net(windows).double()
    expected = torch.softmax(logits.mean(0), 0).numpy()
    probs = ec.classify(judge, video)
    assert probs.shape == (6,) and probs.dtype == np.float64
    np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-6)
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)
    # clips of other lengths and frame sizes in one batch: same as one by one
    others = [rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
              for n, h, w in ((5, 64, 64), (22, 128, 96), (9, 40, 40))]
    batched = ec.classify_videos(judge, [video, *others])
    for row, clip in zip(batched, [video, *others], strict=True):
        np.testing.assert_allclose(row, ec.classify(judge, clip), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="at least 5"):
        ec.classify(judge, video[:4])


def test_augmentation_keeps_windows_valid() -> None:
    gen = torch.Generator().manual_seed(0)
    windows = torch.rand(64, 3, 5, 16, 16)
    assert torch.equal(ec.augment_windows(windows, gen, p=0.0), windows)
    out = ec.augment_windows(windows, gen, p=1.0, p_each=1.0)
    assert out.shape == windows.shape and out.min() >= 0 and out.max() <= 1
    assert (out - windows).abs().mean() > 0.01


def test_frame_bank_resizes_skips_and_caps_memory() -> None:
    rng = np.random.default_rng(0)

    def clip(name: str, n: int, emotion: str | None) -> Clip:
        return Clip(speaker="s", clip_id=name, emotion=emotion,
                    frames=rng.integers(0, 256, (n, 48, 48, 3), dtype=np.uint8),
                    audio=np.zeros(n * 640, np.float32))

    clips = [clip("a", 30, "ANG"), clip("b", 12, "SAD"), clip("c", 3, "HAP"),
             clip("d", 20, None)]
    bank = ec.build_bank(clips, 16, 5, np.random.default_rng(0))
    assert [f.shape for f in bank.frames] == [(30, 3, 16, 16), (12, 3, 16, 16)]
    assert bank.labels.tolist() == [EMOTIONS.index("ANG"), EMOTIONS.index("SAD")]
    assert set(bank.skipped) == {"c", "d"}
    frame_bytes = 3 * 16 * 16
    capped = ec.build_bank(clips, 16, 5, np.random.default_rng(0), max_bytes=16 * frame_bytes)
    assert [f.shape[0] for f in capped.frames] == [8, 8]  # 16 frames shared by two clips
    full = bank.frames[0]
    run = capped.frames[0]
    assert any(torch.equal(full[s:s + 8], run) for s in range(30 - 8 + 1))  # consecutive
    x, y = ec.sample_batch(bank, 7, 5, np.random.default_rng(1))
    assert x.shape == (7, 3, 5, 16, 16) and x.dtype == torch.float32 and x.max() <= 1
    assert set(y.tolist()) <= set(bank.labels.tolist())


# ---------------------------------------------------------------------------------------------
# Smoke training through the judge store, and the metric


def synth_clips(root: Path) -> list[Clip]:
    """The tiny synthetic corpus's clips, decoded (256x256 frames; no face alignment, which
    the smoke test does not need: the classifier resizes any frames)."""
    from bench.data.preprocess import read_clip
    from bench.data.synthetic import SyntheticDataset

    return [read_clip(ref) for ref in SyntheticDataset(root).scan().clips]


@pytest.fixture(scope="module")
def trained(synth_native_root: Path, tmp_path_factory: pytest.TempPathFactory):
    clips = synth_clips(synth_native_root)
    assert {c.emotion for c in clips} == set(EMOTIONS)
    cache = tmp_path_factory.mktemp("cache")
    found = store_trained(ec.JUDGE_NAME, DATASET, ec.train, record={"split": "test",
                          "budget": "smoke", "n_train": 6}, cache_dir=cache,
                          train=clips[:6], val=clips[6:], budget="smoke", device="cpu", seed=0,
                          progress=False)
    return clips, cache, found


def test_smoke_training_is_stored_and_loads(trained) -> None:
    clips, cache, found = trained
    again = trained_judge(ec.JUDGE_NAME, DATASET, cache)
    assert again is not None and again.record == found.record
    log = found.record["log"]
    assert log["budget"] == "smoke" and log["steps"] == ec.BUDGETS["smoke"].steps
    assert log["n_train_clips"] == 6 and log["n_val_clips"] == 2
    assert 0 <= log["val_accuracy"] <= 1
    assert {p.name for p in found.directory.iterdir()} == {
        ec.WEIGHTS_FILE, ec.CONFIG_FILE, "done.json"}
    judge = found.load("cpu")
    assert isinstance(judge, ec.EmotionClassifier) and not judge.net.training
    assert judge.config == ec.BUDGETS["smoke"].net
    assert "talkbench-trained emotion on synthetic" in found.describe()


def test_evaluate_reports_accuracy_and_confusion(trained) -> None:
    clips, _, found = trained
    judge = found.load("cpu")
    unlabelled = Clip(speaker="x", clip_id="x", frames=clips[0].frames, audio=clips[0].audio)
    report = ec.evaluate(judge, [*clips, unlabelled], device="cpu")
    matrix = np.array(report["confusion"]["matrix"])
    assert matrix.shape == (6, 6) and matrix.sum() == len(clips) == report["n"]
    assert report["n_skipped"] == 1
    predicted = [EMOTIONS[int(np.argmax(ec.classify(judge, c.frames)))] for c in clips]
    hits = [p == c.emotion for p, c in zip(predicted, clips, strict=True)]
    assert report["accuracy"] == pytest.approx(np.mean(hits))
    for i, emotion in enumerate(EMOTIONS):
        n = sum(c.emotion == emotion for c in clips)
        assert matrix[i].sum() == n == report["per_emotion"][emotion]["n"]
    assert report["chance"] == pytest.approx(1 / 6)


def test_metric_uses_the_stored_judge(trained) -> None:
    clips, cache, found = trained
    metric = EmoAcc(device="cpu")
    metric.context = MetricContext(dataset=DATASET, cache_dir=cache)
    judge = found.load("cpu")
    # single path: the one video against its label, 0 or 1
    values = []
    for clip in clips:
        sample = Sample(clip_id=clip.clip_id, pred=clip.frames, gt=clip.frames,
                        emotion=clip.emotion)
        value = metric.update(sample)["emoacc"]
        direct = EMOTIONS[int(np.argmax(ec.classify(judge, clip.frames)))] == clip.emotion
        assert value == float(direct)
        values.append(value)
    # on the ground-truth row the mean is the classifier's own accuracy on the real clips
    assert metric.compute()["emoacc"] == pytest.approx(ec.evaluate(judge, clips)["accuracy"])

    # by_emotion path: one generated video per requested emotion
    videos = {c.emotion: c.frames for c in clips[:6]}
    shuffled = dict(zip(EMOTIONS, [videos[e] for e in EMOTIONS[1:] + EMOTIONS[:1]],
                        strict=True))
    for by_emotion in (videos, shuffled):
        sample = Sample(clip_id="c", pred=clips[0].frames, emotion=clips[0].emotion,
                        by_emotion=by_emotion)
        value = metric.score(sample)["emoacc"]
        expected = np.mean([EMOTIONS[int(np.argmax(ec.classify(judge, v)))] == e
                            for e, v in by_emotion.items()])
        assert 0 <= value <= 1 and value == pytest.approx(expected, abs=1e-12)
    # a model that ignores the emotion (one video for all six requests) scores exactly 1/6
    sample = Sample(clip_id="c", pred=clips[1].frames, emotion=clips[1].emotion,
                    by_emotion=dict.fromkeys(EMOTIONS, clips[1].frames))
    assert metric.score(sample)["emoacc"] == pytest.approx(1 / 6, abs=1e-12)
    # a sweep of one emotion agrees with the single path
    sample = Sample(clip_id="c", pred=clips[2].frames, emotion=clips[2].emotion)
    single = metric.score(sample)["emoacc"]
    sample.by_emotion = {clips[2].emotion: clips[2].frames}
    assert metric.score(sample)["emoacc"] == single

    provenance = metric.provenance()
    assert provenance["judge"] == found.describe()
    assert metric.version.endswith(found.record["weights_sha256"][:12])


def test_unavailable_without_judge_or_label(trained, tmp_path: Path) -> None:
    clips, cache, _ = trained
    clip = clips[0]
    metric = EmoAcc(device="cpu")
    metric.context = MetricContext(dataset=DATASET, cache_dir=tmp_path)  # nothing trained here
    sample = Sample(clip_id="c", pred=clip.frames, emotion=clip.emotion)
    with pytest.raises(MetricUnavailable) as err:
        metric.score(sample)
    assert str(err.value) == ("no emotion classifier trained for synthetic: run "
                              "`bench judges train emotion --dataset synthetic`")
    assert metric.version.endswith("+none")

    metric.context = MetricContext(dataset=DATASET, cache_dir=cache)
    with pytest.raises(MetricUnavailable, match="no emotion label"):
        metric.score(Sample(clip_id="c", pred=clip.frames, emotion=None))
    with pytest.raises(MetricUnavailable, match="not one of"):
        metric.score(Sample(clip_id="c", pred=clip.frames, emotion="CALM"))
    with pytest.raises(MetricUnavailable, match="at least 5"):
        metric.score(Sample(clip_id="c", pred=clip.frames[:3], emotion=clip.emotion))
    bad = Sample(clip_id="c", pred=clip.frames, emotion=clip.emotion,
                 by_emotion={"XYZ": clip.frames})
    with pytest.raises(MetricUnavailable, match="XYZ"):
        metric.score(bad)


# ---------------------------------------------------------------------------------------------
# Demo budget on held-out synthetic speakers


def test_small_judge_beats_chance_on_held_out_speakers(synth_heldout, tmp_path: Path,
                                                       monkeypatch) -> None:
    """Issue 17, in the default run: the demo network trained for 800 steps on 12 speakers'
    36 prepared clips (no validation) names the emotion of at least 6 of the 12 clips of 4
    unseen speakers. Chance is 1/6 a clip: 6 or more of 12 by chance has probability about
    0.008. The same network untrained stays below 6. Measured here (2 threads, about 18 s of
    training): 11, 9 and 8 of 12 with training seeds 0, 1 and 2."""
    monkeypatch.setitem(ec.BUDGETS, "demo", replace(ec.BUDGETS["demo"], steps=800,
                                                    eval_every=0))
    train = [clip for _, clip in synth_heldout["train"]]
    test = [clip for _, clip in synth_heldout["test"]]
    assert (len(train), len(test)) == (36, 12) and {c.emotion for c in test} == set(EMOTIONS)
    ec.train(train, None, tmp_path, budget="demo", device="cpu", seed=0)
    result = ec.evaluate(ec.load(tmp_path, "cpu"), test)
    assert result["n"] == 12 and result["chance"] == pytest.approx(1 / 6)
    assert round(12 * result["accuracy"]) >= 6, result["confusion"]

    untrained = ec.EmotionNet(ec.BUDGETS["demo"].net)
    untrained.reset_parameters(torch.Generator().manual_seed(0))
    fresh = ec.evaluate(ec.EmotionClassifier(untrained.eval(), torch.device("cpu")), test)
    assert round(12 * fresh["accuracy"]) < 6


@pytest.mark.slow
def test_demo_budget_beats_chance_on_held_out_speakers(tmp_path: Path) -> None:
    """12 synthetic speakers with one clip per emotion each: train on 8, select on 1, test on
    3 unseen speakers (18 clips). Prints accuracy, confusion and training time."""
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

    start = time.perf_counter()
    found = store_trained(ec.JUDGE_NAME, DATASET, ec.train, record={"budget": "demo"},
                          cache_dir=tmp_path / "cache", train=train, val=val, budget="demo",
                          device="cpu", seed=0, progress=False)
    seconds = time.perf_counter() - start
    result = ec.evaluate(found.load("cpu"), test)
    print(f"\ndemo training {seconds:.1f} s, val accuracy {found.record['log']['val_accuracy']:.3f}"
          f", held-out accuracy {result['accuracy']:.3f} (chance {1 / 6:.3f})")
    print("confusion (rows true, columns predicted)", " ".join(EMOTIONS))
    for emotion, row in zip(EMOTIONS, result["confusion"]["matrix"], strict=True):
        print(emotion, row)
    assert result["n"] == 18
    assert result["accuracy"] >= 0.4  # chance is 1/6; 0.4 is 7.2 of 18 clips
