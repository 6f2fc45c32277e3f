"""AU F1 / AU accuracy (seed 004): the landmark rules against the synthetic corpus's AU truth,
the F1/accuracy arithmetic against hand counts, the OpenFace CSV reader, the seed-004 AU
classifier (smoke training through the judge store) and the metric's pooling and errors."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from bench.judges import au_classifier
from bench.judges.au_rules import AUS, AULabels, au_counts, au_rules, au_scores
from bench.judges.openface import OpenFaceError, read_openface_csv
from bench.metrics.au import AU
from bench.metrics.base import Aggregation, MetricContext, MetricUnavailable, Sample
from bench.results import ClipResult

# ---------------------------------------------------------------------------------------------
# Fixtures: the tiny synthetic corpus, prepared (aligned 128x128 crops + dlib landmarks)


@pytest.fixture(scope="module")
def prepared(synth_native_root, tmp_path_factory):
    """[(clip, truth AU (T, 5) bool, truth landmarks (T, 68, 2) in video pixels)]."""
    pytest.importorskip("dlib")
    from bench.data.datasets import open_dataset
    from bench.data.preprocess import load_prepared, prepare_all

    refs = open_dataset("synthetic", synth_native_root).scan().clips
    cache = tmp_path_factory.mktemp("au_prepared")
    report = prepare_all(refs, cache, workers=1, progress=False)
    assert not report.failed
    out = []
    for ref in refs:
        clip = load_prepared(ref, cache)
        truth = json.loads(ref.truth.read_text())
        au = np.stack([truth["au"][name] for name in AUS], axis=1).astype(bool)
        assert au.shape[0] == clip.num_frames
        out.append((clip, au, np.asarray(truth["landmarks"], dtype=np.float64)))
    return out


def _pooled(pairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-AU F1, accuracy and prevalence of predicted vs truth labels over all clips."""
    counts = sum(au_counts(pred, truth) for pred, truth in pairs)
    f1, acc = au_scores(counts)
    prevalence = (counts[:, 0] + counts[:, 2]) / counts[0].sum()
    return f1, acc, prevalence


def _truth(au: np.ndarray) -> AULabels:
    return AULabels(au, np.ones(au.shape[0], dtype=bool), "synthetic truth")


# ---------------------------------------------------------------------------------------------
# The landmark rules against the synthetic AU truth


def test_rules_on_detected_landmarks_against_synthetic_truth(prepared):
    # dlib landmarks found by preprocessing (not the truth), mapped into the aligned crops
    f1, acc, prevalence = _pooled((au_rules(clip.landmarks), _truth(au))
                                  for clip, au, _ in prepared)
    chance = 2 * prevalence / (1 + prevalence)  # F1 of calling every frame positive
    f1, chance = dict(zip(AUS, f1, strict=True)), dict(zip(AUS, chance, strict=True))
    # Measured on this corpus (440 frames): F1 AU10 0.79, AU14 0.00, AU20 0.43, AU25 0.80,
    # AU26 0.86; all-positive F1 0.44, 0.32, 0.28, 0.69, 0.22. A held-out corpus (seed 1,
    # 20 speakers x 3 clips, 1280 frames of unseen identities) gave 0.55, 0.07, 0.54, 0.86,
    # 0.86. AU14 is not detectable from dlib landmarks here (see the next test); AU20 is weak.
    assert f1["AU25"] >= 0.75 and f1["AU25"] >= chance["AU25"] + 0.08
    assert f1["AU26"] >= 0.75 and f1["AU26"] >= chance["AU26"] + 0.4
    assert f1["AU10"] >= 0.65 and f1["AU10"] >= chance["AU10"] + 0.2
    assert f1["AU20"] >= 0.35 and f1["AU20"] >= chance["AU20"] + 0.07
    assert acc[AUS.index("AU26")] >= 0.93 and acc[AUS.index("AU25")] >= 0.75


def test_rules_on_the_true_geometry(prepared):
    # The same rules on the synthesised landmarks: AU14 (corners pulled in) is right on the
    # true geometry; dlib's shape prior is what hides it in the test above.
    f1, _, _ = _pooled((au_rules(true_lm), _truth(au)) for _, au, true_lm in prepared)
    measured = dict(zip(AUS, f1, strict=True))  # 0.82, 0.81, 0.44, 1.00, 0.99
    assert measured["AU25"] >= 0.98 and measured["AU26"] >= 0.95
    assert measured["AU14"] >= 0.7 and measured["AU10"] >= 0.7 and measured["AU20"] >= 0.35


def test_each_rule_fires_on_the_frames_that_cross_its_threshold():
    face = np.asarray(au_classifier._template()[0])  # canonical face, eyes level
    iod = np.linalg.norm(face[42:48].mean(0) - face[36:42].mean(0))
    lm = np.repeat(face[None], 12, axis=0)

    def move(frames, points, dx=0.0, dy=0.0):  # displacement in inter-ocular distances
        lm[np.ix_(frames, points)] += np.array([dx, dy]) * iod

    move(range(12), [65, 66, 67], dy=-0.074)  # lips closed: inner gap 0.094 -> 0.02
    move([3, 4], [65, 66, 67], dy=0.06)  # AU25: gap 0.08 >= 0.06
    move([6, 7], [8], dy=0.15)  # AU26: chin 0.15 below its rest
    move([9], [48], dx=-0.02)  # AU20: mouth 0.04 wider than at rest
    move([9], [54], dx=0.02)
    move([10], [50, 51, 52], dy=-0.12)  # AU10: upper lip 0.127 below the nose base
    move([11], [48], dx=0.04)  # AU14: corners pulled in, extent 0.29 of the width
    move([11], [54], dx=-0.04)
    expected = np.zeros((12, 5), dtype=bool)
    for frames, au in (([3, 4], "AU25"), ([6, 7], "AU26"), ([9], "AU20"), ([10], "AU10"),
                       ([11], "AU14")):
        expected[frames, AUS.index(au)] = True
    np.testing.assert_array_equal(au_rules(lm).occurrence, expected)
    # the geometry is in the eye frame: rotating, scaling and moving the face changes nothing
    angle = np.deg2rad(25)
    rot = 1.7 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    np.testing.assert_array_equal(au_rules(lm @ rot.T + [40, -13]).occurrence, expected)


def test_rules_need_a_rest_reference_and_mark_faceless_frames():
    rng = np.random.default_rng(0)
    face = np.asarray(au_classifier._template()[0])  # canonical face, crop pixels
    lm = face[None] + rng.normal(0, 0.2, (12, 68, 2))
    lm[3] = np.nan
    labels = au_rules(lm)
    assert labels.valid.tolist() == [True] * 3 + [False] + [True] * 8
    assert not labels.occurrence[3].any()
    with pytest.raises(ValueError, match="at least 10 frames"):
        au_rules(lm[:9])


# ---------------------------------------------------------------------------------------------
# F1 and accuracy against hand counts


def _labels(columns: dict[str, list[int]], valid: list[int] | None = None) -> AULabels:
    n = len(next(iter(columns.values())))
    occurrence = np.zeros((n, len(AUS)), dtype=bool)
    for name, values in columns.items():
        occurrence[:, AUS.index(name)] = np.asarray(values, dtype=bool)
    return AULabels(occurrence, np.ones(n, bool) if valid is None else np.asarray(valid, bool))


def test_counts_f1_and_accuracy_by_hand():
    gt = _labels({"AU10": [1, 1, 1, 0, 0, 0, 0, 0, 0, 0],
                  "AU25": [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]})
    pred = _labels({"AU10": [1, 1, 0, 1, 0, 0, 0, 0, 0, 1],
                    "AU25": [0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
                    "AU26": [0, 0, 0, 0, 0, 0, 0, 1, 0, 0]},
                   valid=[1, 1, 1, 1, 1, 1, 1, 1, 1, 0])  # the last frame is left out
    counts = au_counts(pred, gt)
    # AU10: TP 2 (frames 0, 1), FP 1 (3), FN 1 (2), TN 5 (4-8); frame 9 not valid
    np.testing.assert_array_equal(counts[AUS.index("AU10")], [2, 1, 1, 5])
    np.testing.assert_array_equal(counts[AUS.index("AU25")], [0, 0, 5, 4])
    np.testing.assert_array_equal(counts[AUS.index("AU26")], [0, 1, 0, 8])
    np.testing.assert_array_equal(counts[AUS.index("AU14")], [0, 0, 0, 9])
    f1, acc = au_scores(counts)
    assert f1[AUS.index("AU10")] == pytest.approx(4 / 6)  # 2 TP / (2 TP + FP + FN)
    assert acc[AUS.index("AU10")] == pytest.approx(7 / 9)
    assert f1[AUS.index("AU25")] == 0.0 and acc[AUS.index("AU25")] == pytest.approx(4 / 9)
    assert f1[AUS.index("AU26")] == 0.0 and acc[AUS.index("AU26")] == pytest.approx(8 / 9)
    assert np.isnan(f1[AUS.index("AU14")]) and acc[AUS.index("AU14")] == 1.0
    with pytest.raises(ValueError, match="cannot be compared"):
        au_counts(pred, _labels({"AU10": [0] * 9}))


def _sample(clip_id: str, pred: AULabels, gt: AULabels) -> Sample:
    """A sample whose rule labels are already in its shared cache (no landmarks needed)."""
    n = len(pred)
    frames = np.zeros((n, 8, 8, 3), dtype=np.uint8)
    sample = Sample(clip_id, pred=frames, gt=frames.copy())
    sample.shared.au_labels[("landmark-rules", "pred")] = pred
    sample.shared.au_labels[("landmark-rules", "gt")] = gt
    return sample


def test_metric_pools_frame_counts_over_clips():
    every = {name: [1, 0, 0, 0] for name in AUS}
    a = _sample("a", _labels({**every, "AU10": [1, 1, 0, 0]}), _labels({**every}))
    # clip b: AU10 TP 1, FN 2, TN 1 -> per-clip F1 0.5; pooled with a: TP 2, FP 1, FN 2
    b = _sample("b", _labels({**every, "AU10": [1, 0, 0, 0]}),
                _labels({**every, "AU10": [1, 1, 1, 0]}))
    metric = AU(device="cpu")
    va, vb = metric.update(a), metric.update(b)
    assert va["au10_f1"] == pytest.approx(2 / 3) and vb["au10_f1"] == pytest.approx(0.5)
    assert va["au10_tp"] == 1 and va["au10_fp"] == 1 and va["au10_tn"] == 2
    # AU14 is invisible to landmark labellers: unavailable, the averages over the other four
    assert np.isnan(va["au14_f1"]) and va["au_acc"] == pytest.approx(100 * (0.75 + 3) / 4)
    assert va["au_f1"] == pytest.approx((2 / 3 + 3) / 4) and va["au_f1_aus"] == 4
    out = metric.compute()
    assert out["au10_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))  # not (2/3 + 1/2) / 2
    assert out["au10_acc"] == pytest.approx(100 * 5 / 8)
    assert out["au_f1"] == pytest.approx((4 / 7 + 3) / 4)
    assert out["au_acc"] == pytest.approx(100 * (5 / 8 + 3) / 4)
    assert out["au_frames"] == 8 and np.isnan(out["au14_f1"])

    # the same through the test-set reduction from cached clip states
    states = [(metric.clip_state(s), None) for s in (a, b)]
    pooled = metric.compute_from_states(states)
    assert isinstance(pooled["au14_f1"], MetricUnavailable)
    assert "cannot be seen in 68 landmarks" in str(pooled["au14_f1"])
    assert all(pooled[k] == pytest.approx(out[k]) for k in pooled if k[:4] != "au14")
    assert "AU14 unavailable" in metric.provenance()["averaged_aus"]
    assert str(states[0][0]["source"]) == "landmark-rules"
    reduced = metric.reduce([ClipResult(c, state=s) for c, (s, _) in zip("ab", states,
                                                                          strict=True)])
    assert list(reduced) == [c.name for c in AU.columns]
    assert reduced["au10_f1"].kind == "pooled" and reduced["au10_f1"].n == 2
    assert reduced["au10_f1"].value == pytest.approx(out["au10_f1"])
    assert reduced["au10_f1"].ci_low <= reduced["au10_f1"].value <= reduced["au10_f1"].ci_high


def test_undefined_f1_is_unavailable_and_labellers_are_not_mixed():
    quiet = {name: [0, 0, 0, 0] for name in AUS}
    sample = _sample("q", _labels({**quiet, "AU25": [1, 1, 0, 0]}),
                     _labels({**quiet, "AU25": [1, 0, 0, 0]}))
    metric = AU(device="cpu")
    values = metric.update(sample)  # per clip: NaN where undefined, mean over the defined
    assert np.isnan(values["au10_f1"]) and values["au_f1"] == pytest.approx(2 / 3)
    assert values["au_f1_aus"] == 1
    state = metric.clip_state(sample)
    pooled = metric.compute_from_states([(state, None)])
    assert isinstance(pooled["au_f1"], MetricUnavailable) and "AU10" in str(pooled["au_f1"])
    assert isinstance(pooled["au10_f1"], MetricUnavailable)
    assert pooled["au25_f1"] == pytest.approx(2 / 3) and pooled["au10_acc"] == 100.0
    other = {**state, "source": np.array("openface")}
    with pytest.raises(MetricUnavailable, match="different labellers"):
        metric.compute_from_states([(state, None), (other, None)])
    reduced = metric.reduce([ClipResult("q", state=state), ClipResult("o", state=other),
                             ClipResult("x", unavailable="no face")])
    assert all("different labellers" in r.unavailable for r in reduced.values())
    assert reduced["au_f1"].n_unavailable == 1
    assert reduced["au_f1"].to_dict()["unavailable_examples"] == {"x": "no face"}


def test_mismatched_lengths_are_unavailable():
    metric = AU(device="cpu")
    sample = Sample("m", pred=np.zeros((10, 16, 16, 3), np.uint8),
                    gt=np.zeros((12, 16, 16, 3), np.uint8))
    with pytest.raises(MetricUnavailable, match="10 frames and the ground truth 12"):
        metric.update(sample)
    with pytest.raises(MetricUnavailable, match="ground-truth"):
        metric.update(Sample("n", pred=np.zeros((10, 16, 16, 3), np.uint8)))
    assert AU.on_ground_truth is False
    assert {c.aggregation for c in AU.columns} == {Aggregation.POOLED}
    assert AU(device="cpu").has_clip_state and not AU(device="cpu").has_clip_values


# ---------------------------------------------------------------------------------------------
# OpenFace CSVs

_AU_R = ["01", "02", "04", "05", "06", "07", "09", "10", "12", "14", "15", "17", "20", "23",
         "25", "26", "45"]
_AU_C = _AU_R[:-1] + ["28", "45"]


def _write_openface_csv(path, present: dict[str, list[int]], success: list[int],
                        face_ids: list[int] | None = None, drop: str | None = None) -> None:
    """An OpenFace 2.2 FeatureExtraction CSV: ", " separators, so names have a leading space."""
    names = (["frame", "face_id", "timestamp", "confidence", "success", "pose_Rx"]
             + [f"AU{n}_r" for n in _AU_R] + [f"AU{n}_c" for n in _AU_C])
    names = [n for n in names if n != drop]
    lines = [", ".join(names)]
    for i, ok in enumerate(success):
        row = {"frame": str(i + 1), "face_id": str(face_ids[i] if face_ids else 0),
               "timestamp": f"{i * 0.04:.3f}", "confidence": "0.98" if ok else "0.00",
               "success": str(ok), "pose_Rx": "0.012"}
        for n in _AU_R:
            row[f"AU{n}_r"] = "1.23"
        for n in _AU_C:
            row[f"AU{n}_c"] = f"{float(present.get(f'AU{n}', [0] * len(success))[i]):.2f}"
        lines.append(", ".join(row[n] for n in names))
    path.write_text("\n".join(lines) + "\n")


def test_openface_csv_reader(tmp_path):
    path = tmp_path / "clip.csv"
    _write_openface_csv(path, {"AU10": [1, 0, 1, 0], "AU26": [0, 1, 1, 1], "AU12": [1, 1, 1, 1]},
                        success=[1, 1, 0, 1])
    assert path.read_text().startswith("frame, face_id, timestamp")
    labels = read_openface_csv(path)
    assert labels.source == "openface" and len(labels) == 4
    assert labels.valid.tolist() == [True, True, False, True]  # success 0: no label
    assert labels.occurrence[:, AUS.index("AU10")].tolist() == [True, False, False, False]
    assert labels.occurrence[:, AUS.index("AU26")].tolist() == [False, True, False, True]
    assert not labels.occurrence[:, AUS.index("AU14")].any()

    for column in ("AU20_c", "frame"):
        _write_openface_csv(path, {}, success=[1, 1], drop=column)
        with pytest.raises(OpenFaceError, match=f"missing column.*{column}"):
            read_openface_csv(path)
    _write_openface_csv(path, {"AU25": [1, 0, 1, 1]}, success=[1] * 4, face_ids=[0, 1, 0, 1])
    with pytest.raises(OpenFaceError, match="face_id"):
        read_openface_csv(path)
    one = read_openface_csv(path, face_id=1)  # rows of face 1: frames 2 and 4
    assert one.valid.tolist() == [False, True, False, True]
    assert one.occurrence[:, AUS.index("AU25")].tolist() == [False, False, False, True]
    path.write_text("frame, success, AU10_c\n")
    with pytest.raises(OpenFaceError, match="missing"):
        read_openface_csv(path)


def test_metric_with_openface_csvs(tmp_path):
    (tmp_path / "gen").mkdir()
    (tmp_path / "real").mkdir()
    _write_openface_csv(tmp_path / "gen" / "c1.csv", {"AU25": [1, 1, 0, 0, 1]}, [1] * 5)
    _write_openface_csv(tmp_path / "real" / "c1.csv", {"AU25": [1, 0, 0, 1, 1]},
                        [1, 1, 1, 1, 0])
    metric = AU(device="cpu")
    metric.use_openface(tmp_path / "gen", tmp_path / "real")
    assert metric.label_source() == "openface" and not metric.needs_trained_judge()
    assert metric.version.startswith("2/openface-")  # other CSVs, other cached results
    frames = np.zeros((5, 4, 4, 3), np.uint8)
    values = metric.update(Sample("c1", pred=frames, gt=frames.copy()))
    # AU25 on frames 0-3 (frame 4 failed in the real CSV): TP 1, FP 1, FN 1, TN 1
    assert values["au25_f1"] == pytest.approx(0.5) and values["au25_acc"] == 50.0
    assert values["au_frames"] == 4
    assert "openface" in metric.provenance()["labels"]
    with pytest.raises(MetricUnavailable, match="no OpenFace CSV"):
        metric.update(Sample("c2", pred=frames, gt=frames.copy()))
    with pytest.raises(MetricUnavailable, match="has 5 frames"):
        metric.update(Sample("c1", pred=frames[:3], gt=frames[:3].copy()))


# ---------------------------------------------------------------------------------------------
# The seed-004 AU classifier


def test_class_weights_and_loss_follow_the_paper():
    w = au_classifier.au_weights(np.array([0.5, 0.25, 0.25, 0.5, 0.01]))
    inv = np.array([2, 4, 4, 2, 1 / au_classifier.MIN_RATE])  # the rare AU is clamped
    np.testing.assert_allclose(w, inv * 5 / inv.sum())
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.0, -3.0], [-0.5, 1.5, -2.0, 1.0, 0.3]])
    y = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0, 1.0]])
    wt = torch.tensor(w, dtype=torch.float32)
    p = torch.sigmoid(logits)
    bce = -(y * torch.log(p) + (1 - y) * torch.log(1 - p))
    dice = 1 - (2 * (y * p).sum(0) + 1) / ((y * y).sum(0) + (p * p).sum(0) + 1)
    expected = (bce * wt).mean() + (dice * wt).mean()
    assert float(au_classifier.au_loss(logits, y, wt)) == pytest.approx(float(expected), 1e-6)
    net = au_classifier.AUNet()
    assert net(torch.zeros(2, 3, 56, 112)).shape == (2, 5)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    fcs = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    pools = [m for m in net.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert (len(convs), len(fcs), len(pools)) == (4, 3, 2)  # seed 004: 4 conv, 3 FC


def test_lower_face_crops_follow_the_face(prepared):
    from bench.core.face_template import fit_similarity

    clip = prepared[0][0]
    template, points = au_classifier._template()
    a, b, tx, ty = fit_similarity(template[points], clip.landmarks[5, points].astype(float))
    np.testing.assert_allclose(au_classifier.crop_to_frame(clip.landmarks[5:6])[0],
                               [[a, -b, tx], [b, a, ty]], atol=1e-9)
    crops, valid = au_classifier.lower_face_crops(clip.frames[:4], clip.landmarks[:4])
    assert crops.shape == (4, 3, 56, 112) and crops.dtype == torch.uint8 and valid.all()
    # the same face at twice the size and shifted gives nearly the same crop
    big = np.repeat(np.repeat(clip.frames[:4], 2, axis=1), 2, axis=2)
    big = np.pad(big, ((0, 0), (10, 0), (30, 0), (0, 0)), mode="edge")
    moved = (clip.landmarks[:4] + 0.5) * 2 - 0.5 + np.array([30, 10])
    crops2, _ = au_classifier.lower_face_crops(big, moved)
    assert float((crops.float() - crops2.float()).abs().mean()) < 4.0
    lm = clip.landmarks[:4].copy()
    lm[1] = np.nan
    _, valid = au_classifier.lower_face_crops(clip.frames[:4], lm)
    assert valid.tolist() == [True, False, True, True]


def test_smoke_training_gives_a_loadable_judge_the_metric_uses(prepared, tmp_path):
    from bench.judges.store import store_trained, trained_judge

    clips = [clip for clip, _, _ in prepared]
    found = store_trained("au", "synthetic", au_classifier.train,
                          record={"split": "test", "budget": "smoke", "n_train": 6},
                          cache_dir=tmp_path, train=clips[:6], val=clips[6:], budget="smoke",
                          device="cpu", seed=0, progress=False)
    log = found.record["log"]
    assert log["steps"] > 0 and log["n_train_frames"] > 0 and "val" in log
    assert set(log["val"]["f1"]) == set(AUS)
    assert trained_judge("au", "synthetic", tmp_path) is not None
    judge = found.load("cpu")
    labels = judge.predict(clips[6].frames, clips[6].landmarks)
    assert labels.occurrence.shape == (clips[6].num_frames, 5) and labels.valid.all()
    report = au_classifier.evaluate(judge, clips[6:], device="cpu")
    assert report["n_frames"] == sum(c.num_frames for c in clips[6:])

    metric = AU(device="cpu")
    metric.context = MetricContext(dataset="synthetic", cache_dir=tmp_path)
    assert metric.label_source() == "au-classifier" and not metric.needs_trained_judge()
    clip = clips[7]
    values = metric.update(Sample(clip.clip_id, pred=clip.frames, gt=clip.frames.copy()))
    assert values["au_acc"] == 100.0  # same frames, same labeller
    prov = metric.provenance()
    assert prov["labels"] == "au-classifier" and "talkbench-trained au" in prov["judge"]
    assert metric.version == f"2/au-classifier-{found.record['weights_sha256'][:12]}"
    plain = AU(device="cpu")  # no dataset: the rules
    assert plain.label_source() == "landmark-rules" and plain.version == "2/landmark-rules"


def test_judge_quality_is_measured_against_synthesised_truth(prepared, synth_native_root):
    """Issue 17: the AU judge's quality against the corpus's synthesised AU states, not the
    rules it learned from: per-AU F1 by hand equals the report's; an oracle scores 1.0 and a
    judge that always answers "absent" scores 0; AU14 is not in the average."""
    from bench.data.datasets import open_dataset

    refs = open_dataset("synthetic", synth_native_root).scan().clips
    truth_files = [r.truth for r in refs[6:]]
    clips = [clip for clip, _, _ in prepared[6:]]
    truths = [au for _, au, _ in prepared[6:]]

    class Oracle:
        def __init__(self, answer):
            self.answer = iter(answer)

        def predict(self, frames, landmarks):
            occurrence = next(self.answer)
            return AULabels(occurrence, np.ones(len(occurrence), bool), "test")

    oracle = au_classifier.evaluate_against_truth(Oracle(truths), clips, truth_files,
                                                  device="cpu")
    assert oracle["figure"] == "truth_avg_f1" and oracle["truth_avg_f1"] == 1.0
    assert "AU14" not in oracle["truth_aus"] and oracle["chance"] < 1.0
    rules = [au_rules(clip.landmarks).occurrence for clip in clips]
    report = au_classifier.evaluate_against_truth(Oracle(rules), clips, truth_files,
                                                  device="cpu")
    p, t = np.concatenate(rules), np.concatenate(truths)
    for i, au in enumerate(AUS):
        tp, fp, fn = (p[:, i] & t[:, i]).sum(), (p[:, i] & ~t[:, i]).sum(), \
            (~p[:, i] & t[:, i]).sum()
        expected = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
        got = report["truth_f1"][au]
        assert (got is None and expected is None) or got == pytest.approx(expected, abs=1e-4)
    silent = [np.zeros_like(r) for r in rules]
    nothing = au_classifier.evaluate_against_truth(Oracle(silent), clips, truth_files,
                                                   device="cpu")
    assert nothing["truth_avg_f1"] == 0.0


def test_small_judge_beats_chance_against_truth_on_held_out_speakers(synth_heldout, tmp_path,
                                                                     monkeypatch):
    """Issue 17, in the default run: the demo network trained for 200 steps on the rule
    labels of 12 speakers (36 clips) is scored against the synthesised AU states of the 12
    clips of 4 unseen speakers. Its F1 averaged over the AUs visible in landmarks (AU10, 20,
    25, 26) beats always answering "present" (the best constant answer) by at least 0.1; the
    same network untrained does not. Measured here (about 15 s of training, the demo's blur
    augmentation, corpus code version 2): 0.586, 0.520 and 0.445 with training seeds 0, 1 and
    2 against that chance level's 0.342 (seed 2 is just above the bar; before the blur and the
    voice qualities: 0.530, 0.517, 0.508); AU20 (lips stretched, fear only) stays at or near 0:
    the judge does not find it in unseen faces."""
    monkeypatch.setitem(au_classifier.BUDGETS, "demo", replace(au_classifier.BUDGETS["demo"],
                                                               epochs=100, max_steps=200))
    train = [clip for _, clip in synth_heldout["train"]]
    test = [clip for _, clip in synth_heldout["test"]]
    truth_files = [ref.truth for ref, _ in synth_heldout["test"]]
    log = au_classifier.train(train, None, tmp_path, budget="demo", device="cpu", seed=0,
                              progress=False)
    assert log["steps"] == 200
    judge = au_classifier.load(tmp_path, "cpu")
    report = au_classifier.evaluate_against_truth(judge, test, truth_files, device="cpu")
    assert report["truth_aus"] == "AU10, AU20, AU25, AU26"
    assert report["truth_avg_f1"] >= report["chance"] + 0.1, report

    torch.manual_seed(0)
    untrained = au_classifier.AUClassifier(au_classifier.AUNet(judge.config["channels"],
                                                               judge.config["hidden"]),
                                           "cpu", judge.config)
    fresh = au_classifier.evaluate_against_truth(untrained, test, truth_files, device="cpu")
    assert fresh["truth_avg_f1"] < fresh["chance"] + 0.1


def test_rules_metric_end_to_end(prepared):
    clip = prepared[3][0]
    metric = AU(device="cpu")
    same = metric.score(Sample(clip.clip_id, pred=clip.frames, gt=clip.frames.copy()))
    assert same["au_acc"] == 100.0 and same["au25_f1"] == 1.0
    shifted = np.roll(clip.frames, 12, axis=0)  # speech out of sync by 0.48 s
    off = metric.score(Sample(clip.clip_id, pred=shifted, gt=clip.frames.copy()))
    assert off["au25_f1"] < 0.8 and off["au_acc"] < 100.0
    assert "landmark rules" in metric.provenance()["judge"]


def test_training_blur_is_a_gaussian_filter_per_crop():
    """The demo judge's blur augmentation (`bench.core.blur.gaussian_blur`, edges repeated)
    equals scipy's Gaussian filter (edges repeated, the same truncation) with each crop's own
    sigma; the smallest sigma leaves a crop nearly unchanged."""
    from scipy.ndimage import gaussian_filter

    from bench.core.blur import gaussian_blur

    rng = np.random.default_rng(0)
    crops = torch.from_numpy(rng.uniform(-1, 1, (3, 3, 12, 20)).astype(np.float32))
    sigmas = np.array([au_classifier.MIN_BLUR_SIGMA, 0.8, 1.5])
    out = gaussian_blur(crops, torch.as_tensor(sigmas, dtype=crops.dtype),
                        padding="replicate").numpy()
    radius = int(np.ceil(3 * sigmas.max()))
    assert np.allclose(out[0], crops[0].numpy(), atol=1e-6)
    for k in (1, 2):
        expected = gaussian_filter(crops[k].numpy().astype(np.float64), (0, sigmas[k], sigmas[k]),
                                   mode="nearest", truncate=radius / sigmas[k])
        assert np.abs(out[k] - expected).max() < 1e-5
