"""au-tcsan (seed 004, Chen et al. 2022): shapes for several audio lengths at 25 fps, the
paper's layer sizes, TCSAN's non-causal receptive field and per-frame tokens, the AU loss and
its weights by hand, Eq. 11's weights as configured, the five Audio2AU heads learning their
training data, the full model's loss falling on a fixed batch, save/load, and that the
generator's AU classifier shares no weights with the AU metric's judge; AU labels from OpenFace
CSVs (issue 15: written from the synthetic truth, the log counts them, the checkpoint key
changes with them, unusable CSVs fall back to the rules); at the demo budget (slow) the
Audio2AU heads of AU20, AU25 and AU26 beat chance on held-out synthetic speakers, trained on
rule or on OpenFace labels."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from openface_csvs import truth_as_openface, truth_occurrence, write_openface_csv

import bench.adapters.au_tcsan as adapter_module
import bench.generators.au_tcsan as model_module
import bench.generators.au_tcsan_training as training_module
from bench.adapters import adapter_class
from bench.adapters.au_tcsan import (
    AUTCSAN,
    DEMO,
    MAX_FRAME_DIFFERENCE,
    PAPER,
    SMOKE,
    load_labelled,
    rule_labels,
)
from bench.core.au_rules import AUS, au_rules
from bench.data.clip import Clip, ClipRef
from bench.data.preprocess import PrepParams, load_prepared, prepare_all
from bench.data.synthetic import SyntheticDataset
from bench.generators.au_tcsan import (
    TCSAN,
    AUTCSANNets,
    au_loss,
    class_weights,
    clip_mfcc,
    f1_and_chance,
)
from bench.generators.au_tcsan_training import (
    FullModelTrainer,
    audio2au_scores,
    pretrain_audio2au,
)

torch.set_num_threads(1)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def prepared(synth_native_root, tmp_path_factory) -> tuple[Path, list[ClipRef], list[Clip]]:
    """The session's tiny synthetic corpus (4 speakers x 2 clips), prepared (128 px crops,
    dlib landmarks) into ``<cache>/prepared`` of a module cache folder (where a run with
    ``--cache-dir <cache>`` finds them): the cache folder, the clips' refs and the clips."""
    cache = tmp_path_factory.mktemp("au_tcsan_cache")
    refs = SyntheticDataset(synth_native_root).scan().clips
    report = prepare_all(refs, cache / "prepared", PrepParams(), workers=1, progress=False)
    assert not report.failed
    out = [load_prepared(r, cache / "prepared") for r in refs]
    assert all(c.landmarks is not None for c in out)
    return cache, refs, out


@pytest.fixture(scope="module")
def clips(prepared) -> list[Clip]:
    return prepared[2]


@pytest.fixture(scope="module")
def trained(clips, tmp_path_factory) -> tuple[AUTCSAN, str, dict]:
    model = AUTCSAN(seed=2)
    log = model.fit(clips[:6], clips[6:], "smoke")
    path = tmp_path_factory.mktemp("au_tcsan")
    model.save(path)
    return model, str(path), log


def test_registered():
    assert adapter_class("au-tcsan") is AUTCSAN
    assert not AUTCSAN.needs_emotion


def test_fit_log_and_notes(trained):
    _, _, log = trained
    assert log["steps"] == SMOKE.steps
    assert log["audio2au"]["steps"] == SMOKE.a2au_steps
    assert log["au_classifier"]["steps"] == SMOKE.auc_steps
    assert log["labelled_frames"] > 0.9 * log["frames"]  # the rules label nearly every frame
    assert len(log["au_rates"]) == len(log["au_weights"]) == 5
    assert log["val_l1"] > 0 and log["val_audio2au"]["frames"] > 0
    for key in ("mfcc", "au_labels", "tcsan_tokens", "perceptual"):
        assert key in log, key
    assert "7 tokens" in log["tcsan_tokens"]  # smoke: f_id 1 + f_a 1 + f_au 5


@pytest.mark.parametrize("samples", [8000, 20800, 32000, 21000])
def test_generate_shapes_25_fps(trained, clips, samples):
    model, _, _ = trained
    image = clips[0].frames[0]
    audio = np.random.default_rng(samples).normal(0, 0.1, samples).astype(np.float32)
    frames = model.generate(image, audio, None)
    # 16 kHz audio, 25 fps: one frame per 640 samples, the last partial one included
    assert frames.shape == ({8000: 13, 20800: 33, 32000: 50, 21000: 33}[samples], 128, 128, 3)
    assert frames.dtype == np.uint8
    small = model.generate(image[:96, :96], audio, "HAP")  # emotion ignored
    assert small.shape == (frames.shape[0], 96, 96, 3)


def test_mfcc_windows_are_280_ms_of_12_coefficients():
    rng = np.random.default_rng(0)
    audio = np.zeros(30 * 640, np.float32)
    audio[20 * 640:21 * 640] = rng.normal(0, 0.3, 640)  # a burst in video frame 20
    windows = clip_mfcc(audio, 30, PAPER)
    assert windows.shape == (30, 12, 28)
    # the burst sits at the centre of frame 20's window and outside frame 0's
    energy = np.abs(np.diff(windows, axis=2)).sum(1)
    assert energy[20, 10:17].sum() > 0 and energy[0].sum() == 0
    assert np.argmax(np.abs(windows[20] - windows[0]).sum(0)) in range(10, 18)


def test_save_load_round_trip(trained, clips):
    model, path, _ = trained
    other = AUTCSAN(seed=9)
    other.load(Path(path))
    image, audio = clips[7].frames[0], clips[7].audio
    a, b = model.generate(image, audio, None), other.generate(image, audio, None)
    assert np.array_equal(a, b)
    assert np.array_equal(a, model.generate(image, audio, None))  # deterministic
    assert torch.equal(other.nets["mfcc"].std, model.nets["mfcc"].std)
    assert not torch.equal(model.nets["mfcc"].std, torch.ones(12))  # fitted, saved, loaded


def test_audio_changes_the_output(trained, clips):
    model, _, _ = trained
    image = clips[4].frames[0]
    speech = model.generate(image, clips[4].audio, None).astype(int)
    silent = model.generate(image, np.zeros_like(clips[4].audio), None).astype(int)
    assert np.abs(speech - silent).max() > 0


def test_paper_budget_sizes():
    cfg = PAPER
    assert (cfg.size, cfg.mfcc_window, cfg.mfcc_count, cfg.heads, cfg.tcsan_kernel) == \
        (112, 28, 12, 4, 3)
    assert cfg.feature_dim == 1344 and cfg.tokens == 21
    assert (cfg.lr, cfg.betas[0], cfg.lr_a2au, cfg.lr_auc, cfg.epochs) == \
        (2e-4, 0.5, 1e-6, 1e-7, 20.0)
    counts = AUTCSAN.parameter_counts("paper")
    assert set(counts) == {"mfcc", "identity", "audio", "a2au", "tcsan", "decoder",
                           "au_classifier", "total"}
    nets = AUTCSANNets(cfg).eval()
    assert counts["total"] == sum(p.numel() for p in nets.parameters())
    assert len(nets["identity"].convs) == 4 and len(nets["audio"].convs) == 5
    assert len(nets["a2au"].heads) == 5
    head = nets["a2au"].heads[0]
    assert head.lstm.num_layers == 2 and head.fc[2].out_features == 64
    assert head.out.out_features == 1
    convs = [m for m in nets["decoder"].modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs) == 6
    auc_convs = [m for m in nets["au_classifier"].modules() if isinstance(m, torch.nn.Conv2d)]
    auc_fcs = [m for m in nets["au_classifier"].modules() if isinstance(m, torch.nn.Linear)]
    assert len(auc_convs) == 4 and len(auc_fcs) == 3 and auc_fcs[-1].out_features == 5
    assert nets["tcsan"].receptive_field == 31  # 1 + 2 (1 + 2 + 4 + 8)
    with torch.no_grad():
        f_id, skips = nets["identity"](torch.zeros(2, 3, 112, 112))
        assert f_id.shape == (2, 512)
        assert [s.shape[-1] for s in skips] == [56, 28, 14, 7]
        mfcc = torch.randn(2, 3, 12, 28)
        assert nets["audio"](mfcc[0]).shape == (3, 512)
        assert nets["a2au"].features(mfcc[0]).shape == (3, 320)
        assert nets["a2au"](mfcc[0]).shape == (3, 5)
        assert nets(torch.zeros(2, 3, 112, 112), mfcc).shape == (2, 3, 3, 112, 112)
        assert nets["au_classifier"](torch.zeros(2, 3, 56, 112)).shape == (2, 5)


def test_tcsan_is_non_causal_dilated_and_attends_within_frames():
    torch.manual_seed(0)
    cfg = SMOKE  # 2 blocks: dilations 1, 2 -> receptive field 1 + 2 (1 + 2) = 7
    tcsan = TCSAN(cfg).eval()
    assert tcsan.receptive_field == 7
    x = torch.rand(1, 40, cfg.feature_dim)
    y = x.clone()
    y[0, 20] += 1.0
    with torch.no_grad():
        changed = (tcsan(x) - tcsan(y)).abs().amax(2)[0] > 1e-6
    assert changed.nonzero().flatten().tolist() == list(range(17, 24))  # 20 -/+ 3
    # the attention runs within each frame: tokens of one frame never see another frame
    block = tcsan.blocks[0]
    tokens = torch.rand(3, cfg.feature_dim, 5)
    with torch.no_grad():
        z = torch.relu(block.conv(tokens))
        t = z.transpose(1, 2).reshape(15, cfg.tokens, cfg.au_dim)
        want, _ = block.attention(t, t, t)
        got = block(tokens) - tokens
    # ReLU(x + attn) - x == attn where x + attn > 0
    keep = (block(tokens) > 0)
    want = want.reshape(3, 5, cfg.feature_dim).transpose(1, 2)
    assert torch.allclose(got[keep], want[keep], atol=1e-5)


def test_au_weights_and_loss_by_hand():
    w = class_weights([0.5, 0.25, 0.1, 0.02, 1.0], min_rate=0.05)
    # 1/r = 2, 4, 10, 20 (0.02 raised to 0.05), 1: sum 37; w = 5 (1/r) / 37
    assert np.allclose(w.numpy(), [10 / 37, 20 / 37, 50 / 37, 100 / 37, 5 / 37])
    logits = torch.tensor([[0.0, 2.0, -1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, -3.0]])
    target = torch.tensor([[1.0, 0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0, 0.0]])
    weights = torch.tensor([1.0, 2.0, 0.5, 1.0, 0.5])
    out = au_loss(logits, target, weights, eps=1.0)
    p = 1 / (1 + np.exp(-logits.numpy().astype(np.float64)))
    y = target.numpy()
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(0)
    dice = 1 - (2 * (y * p).sum(0) + 1) / ((y ** 2).sum(0) + (p ** 2).sum(0) + 1)
    assert float(out["bce"]) == pytest.approx(float((weights.numpy() * bce).mean()), rel=1e-5)
    assert float(out["dice"]) == pytest.approx(float((weights.numpy() * dice).mean()), rel=1e-5)
    assert float(out["au"]) == pytest.approx(float(out["bce"] + out["dice"]))
    # unlabelled frames are left out
    masked = au_loss(logits, target, weights, torch.tensor([True, False]), eps=1.0)
    alone = au_loss(logits[:1], target[:1], weights, eps=1.0)
    assert float(masked["au"]) == pytest.approx(float(alone["au"]))


def test_f1_and_chance_by_hand():
    prob = np.array([[0.9], [0.8], [0.1], [0.2], [0.7]]).repeat(5, 1)
    target = np.array([[1], [0], [1], [0], [1]]).repeat(5, 1)
    out = f1_and_chance(prob, target)
    # TP 2, FP 1, FN 1: F1 = 4 / 6; prevalence 0.6: chance F1 = 1.2 / 1.6
    assert out["f1"] == [pytest.approx(2 / 3, abs=1e-4)] * 5
    assert out["chance_f1"] == [pytest.approx(0.75, abs=1e-4)] * 5
    assert out["balanced_acc"] == [pytest.approx((2 / 3 + 1 / 2) / 2, abs=1e-4)] * 5


def _data(clips, cfg):
    labelled = load_labelled(clips, cfg.size)
    assert not labelled.problems()
    return labelled.training_data(cfg)


def test_loss_weights_and_rates_as_configured(clips):
    cfg = SMOKE
    for budget in (PAPER, DEMO, SMOKE):  # Eq. 11 (Sect. 4.2) at every budget
        assert (budget.w_rec, budget.w_id, budget.w_perc, budget.w_au) == (1.5, 1.5, 0.07, 0.02)
    torch.manual_seed(0)
    nets = AUTCSANNets(cfg)
    data = _data(clips[:2], cfg)
    weights = class_weights(data.rates(), cfg.min_rate)
    perceptual = torch.nn.L1Loss()  # a stand-in with a known value
    trainer = FullModelTrainer(nets, data, cfg, weights, perceptual,
                               np.random.default_rng(0), CPU)
    lrs = [(g["lr"], g["betas"]) for o in trainer.optimizers for g in o.param_groups]
    assert lrs == [(1e-3, (0.5, 0.999)), (1e-6, (0.5, 0.999)), (1e-7, (0.5, 0.999))]
    trained_ids = {id(p) for o in trainer.optimizers for g in o.param_groups
                   for p in g["params"]}
    assert trained_ids == {id(p) for p in nets.parameters()}
    batch = data.sequences(2, cfg.seq_len, np.random.default_rng(1), CPU)
    nets.eval()
    with torch.no_grad():
        out = trainer.losses(batch)
        fake = nets(batch["identity"], batch["mfcc"])
    real, h = batch["frames"], cfg.size // 2
    rec = (fake - real).abs().mean()
    ident = (fake[..., :h, :] - batch["identity"][:, None, :, :h, :]).abs().mean()
    assert float(out["rec"]) == pytest.approx(float(rec), rel=1e-5)
    assert float(out["id"]) == pytest.approx(float(ident), rel=1e-5)
    assert float(out["perc"]) > 0  # L1 over 2 of the frames: nonzero for an untrained model
    # L_au: the generator's own classifier on the lower half of the generated frames
    with torch.no_grad():
        logits = nets["au_classifier"](fake.flatten(0, 1)[..., h:, :])
    au = au_loss(logits, batch["labels"].flatten(0, 1), trainer.weights,
                 batch["valid"].flatten())
    assert float(out["au"]) == pytest.approx(float(au["au"]), rel=1e-5)
    want = 1.5 * out["rec"] + 1.5 * out["id"] + 0.07 * out["perc"] + 0.02 * out["au"]
    assert float(out["total"]) == pytest.approx(float(want), rel=1e-6)
    # the AU loss's w_i come from the training clips' occurrence rates (the rules' labels)
    labels = [au_rules(c.landmarks) for c in clips[:2]]
    rates = np.concatenate([lab.occurrence[lab.valid] for lab in labels]).mean(0)
    assert np.allclose(data.rates(), rates)
    inv = 1 / np.maximum(rates, 0.05)
    assert np.allclose(trainer.weights.numpy(), 5 * inv / inv.sum(), rtol=1e-6)


def test_audio2au_heads_learn_their_training_data(clips):
    """Smoke-width heads, pre-trained on 6 clips' rule labels for a few hundred steps, then
    scored on those frames: each AU's F1 beats the all-positive F1 and balanced accuracy
    beats 0.5 clearly."""
    cfg = dataclasses.replace(SMOKE, a2au_hidden=32, a2au_fc=32, a2au_steps=200,
                              a2au_batch=64, a2au_lr=3e-3)
    torch.manual_seed(0)
    nets = AUTCSANNets(cfg)
    data = _data(clips[:6], cfg)
    rates = data.rates()
    assert ((rates > 0) & (rates < 1)).all(), rates  # both classes for every AU
    log = pretrain_audio2au(nets, data, cfg, np.random.default_rng(0), CPU)
    assert log["steps"] == 200
    scores = audio2au_scores(nets, data, CPU)
    print("\ntraining-data Audio2AU:", scores)
    for i, au in enumerate(AUS):
        assert scores["balanced_acc"][i] >= 0.7, (au, scores)
        assert scores["f1"][i] > scores["chance_f1"][i], (au, scores)


def test_full_model_loss_falls_on_a_fixed_batch(clips):
    cfg = dataclasses.replace(SMOKE, lr=3e-3)
    torch.manual_seed(0)
    nets = AUTCSANNets(cfg)
    data = _data(clips[:2], cfg)
    weights = class_weights(data.rates(), cfg.min_rate)
    trainer = FullModelTrainer(nets, data, cfg, weights, None, np.random.default_rng(0), CPU)
    batch = data.sequences(2, cfg.seq_len, np.random.default_rng(3), CPU)
    nets.train()
    totals = []
    for _ in range(25):
        losses = trainer.losses(batch)
        for opt in trainer.optimizers:
            opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        for opt in trainer.optimizers:
            opt.step()
        totals.append(losses["total"].item())
    assert totals[-1] < 0.7 * totals[0], totals


# ---------------------------------------------------------------------------------------------
# AU labels from OpenFace CSVs (issue 15)


def _truth_rates(refs: list[ClipRef], clips: list[Clip]) -> np.ndarray:
    """Occurrence rate of each AU in the clips' synthesised truth (every frame labelled)."""
    return np.concatenate([truth_occurrence(r)[:c.num_frames]
                           for r, c in zip(refs, clips, strict=True)]).mean(0)


def test_training_labels_from_openface_csvs(prepared, tmp_path):
    """OpenFace CSVs written from the corpus's synthesised AU truth label every training and
    validation clip: the log counts them, the AU rates (and so the loss weights w_i) are the
    truth's, AU14's included, not the landmark rules'."""
    _, refs, clips = prepared
    folder = truth_as_openface(refs, tmp_path / "openface")
    model = AUTCSAN(seed=2, openface=str(folder))
    lines: list[str] = []
    model.echo = lines.append
    log = model.fit(clips[:6], clips[6:], "smoke")
    assert lines == []  # every CSV was read
    assert log["au_label_sources"] == {"openface": 6, "landmark-rules": 0, "none": 0}
    assert log["val_au_label_sources"] == {"openface": 2, "landmark-rules": 0, "none": 0}
    assert "au_label_problems" not in log
    truth = _truth_rates(refs[:6], clips[:6])
    assert np.allclose(log["au_rates"], truth, atol=1e-4), (log["au_rates"], truth)
    rules = np.concatenate([lab.occurrence[lab.valid] for lab in
                            (rule_labels(c) for c in clips[:6])]).mean(0)
    au14 = AUS.index("AU14")
    assert truth[au14] > 0.05 and abs(rules[au14] - truth[au14]) > 0.02, (rules, truth)
    assert log["labelled_frames"] == log["frames"]  # OpenFace tracked every frame
    assert "OpenFace CSVs" in log["au_labels"] and "for 6 of 6 clips" in log["au_labels"]
    assert str(folder) in log["au_labels"]
    assert model.config()["options"] == {"openface": str(folder)}


def test_unusable_openface_csvs_fall_back_to_the_rules(prepared, tmp_path):
    """Per clip: its CSV when usable (a frame count off by up to two frames labels the
    common frames), else the landmark rules with one line naming the file; no CSV: the
    rules."""
    _, refs, clips = prepared
    folder = tmp_path / "openface"
    folder.mkdir()
    truth = [truth_occurrence(r)[:c.num_frames] for r, c in zip(refs, clips, strict=True)]
    write_openface_csv(folder / f"{refs[0].clip_id}.csv", truth[0])
    (folder / f"{refs[1].clip_id}.csv").write_text("frame, success\n1, 1\n")  # no AU columns
    long = np.concatenate([truth[2], truth[2][:MAX_FRAME_DIFFERENCE + 1]])
    write_openface_csv(folder / f"{refs[2].clip_id}.csv", long)
    short = truth[3][:-MAX_FRAME_DIFFERENCE]
    write_openface_csv(folder / f"{refs[3].clip_id}.csv", short)
    # refs[4]: no CSV
    labelled = load_labelled(clips[:5], SMOKE.size, openface=folder)
    assert [lab.source for lab in labelled.labels] == \
        ["openface", "landmark-rules", "landmark-rules", "openface", "landmark-rules"]
    assert labelled.sources() == {"openface": 2, "landmark-rules": 3, "none": 0}
    problems = labelled.problems()
    assert len(problems) == 2
    assert str(folder / f"{refs[1].clip_id}.csv") in problems[0]
    assert "missing column" in problems[0] and "landmark rules" in problems[0]
    assert str(folder / f"{refs[2].clip_id}.csv") in problems[1]
    assert f"{len(long)} frames" in problems[1] and "landmark rules" in problems[1]
    assert all("\n" not in line for line in problems)
    assert np.array_equal(labelled.labels[0].occurrence, truth[0])
    prefix = labelled.labels[3]
    n = clips[3].num_frames
    assert np.array_equal(prefix.occurrence[:len(short)], short)
    assert prefix.valid.tolist() == [True] * len(short) + [False] * (n - len(short))
    for i in (1, 2, 4):
        assert np.array_equal(labelled.labels[i].occurrence, rule_labels(clips[i]).occurrence)


def test_checkpoint_key_changes_with_the_openface_labels(prepared, synth_native_root,
                                                         tmp_path, monkeypatch):
    """``bench train --openface DIR`` trains au-tcsan on the CSVs (the log says so) under
    another checkpoint key than training on the rules; other CSV contents give another key
    again, the same ones the same key; a model that learns no AU labels refuses the option."""
    from click.testing import CliRunner

    from bench.cli import main
    from bench.core.devices import TRAIN_THREADS_ENV

    monkeypatch.setenv(TRAIN_THREADS_ENV, "1")  # two threads crawl on a busy 2-core box

    cache, refs, _ = prepared
    folder = truth_as_openface(refs, tmp_path / "openface")
    base = ["train", "--model", "au-tcsan", "--dataset", "synthetic", "--root",
            str(synth_native_root), "--budget", "smoke", "--cache-dir", str(cache),
            "--quiet", "--workers", "1"]

    def train(runs: str, *extra: str) -> dict:
        result = CliRunner().invoke(main, [*base, "--runs-dir", str(tmp_path / runs), *extra])
        assert result.exit_code == 0, result.output
        done = next((tmp_path / runs).glob("synthetic/*/au-tcsan/checkpoint/done.json"))
        return json.loads(done.read_text())

    rules = train("rules")
    csvs = train("openface", "--openface", str(folder))
    n_train = rules["log"]["clips"]
    assert rules["log"]["au_label_sources"] == {"openface": 0, "landmark-rules": n_train,
                                                "none": 0}
    assert csvs["log"]["au_label_sources"] == {"openface": n_train, "landmark-rules": 0,
                                               "none": 0}
    assert csvs["key"] != rules["key"]
    assert csvs["log"]["au_rates"] != rules["log"]["au_rates"]

    ids = [r.clip_id for r in refs]
    adapter = AUTCSAN(openface=str(folder))
    key = adapter.data_key(ids)
    assert key["au_labels"]["openface_csvs"] == len(ids)
    assert AUTCSAN().data_key(ids) == {}  # rule labels: the key of before issue 15
    assert adapter.data_key(ids) == key
    path = folder / f"{ids[0]}.csv"
    path.write_text(path.read_text().replace("0.98", "0.97", 1))  # one value changed
    assert AUTCSAN(openface=str(folder)).data_key(ids) != key

    # bench run passes the folder to the models that take it, and only to them
    from types import SimpleNamespace

    from bench.adapters.still_image import StillImage
    from bench.stages.train import run_options

    ws = SimpleNamespace(cfg=SimpleNamespace(openface=folder))
    assert run_options(ws, AUTCSAN) == {"openface": str(folder)}
    assert run_options(ws, StillImage) == {}
    assert run_options(SimpleNamespace(cfg=SimpleNamespace(openface=None)), AUTCSAN) == {}
    refused = CliRunner().invoke(main, ["train", "--model", "still-image", "--openface",
                                        str(folder)])
    assert refused.exit_code != 0 and "does not learn from AU labels" in refused.output
    assert "au-tcsan" in refused.output


# ---------------------------------------------------------------------------------------------
# The generator's AU classifier is not the AU metric's judge


def _imports(module) -> set[str]:
    tree = ast.parse(inspect.getsource(module))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_generator_classifier_shares_no_weights_with_the_metric_judge(trained, clips,
                                                                      tmp_path):
    from bench.judges import au_classifier as judge_module

    judge_dir = tmp_path / "judge"
    judge_dir.mkdir()
    judge_module.train(clips[:6], None, judge_dir, budget="smoke", device="cpu", seed=2,
                       progress=False)
    judge = judge_module.load(judge_dir, "cpu")
    before = {k: v.clone() for k, v in judge.net.state_dict().items()}

    # training a generator from scratch leaves the judge untouched ...
    model = AUTCSAN(seed=5)
    model.fit(clips[:6], None, "smoke")
    after = judge.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)

    # ... and no tensor of either generator is (or equals) one of the judge's
    judge_tensors = list(judge.net.state_dict().values())
    judge_ptrs = {t.data_ptr() for t in judge_tensors}
    for generator in (model, trained[0]):
        assert not isinstance(generator.nets["au_classifier"], judge_module.AUNet)
        for name, t in generator.nets.state_dict().items():
            assert t.data_ptr() not in judge_ptrs, name
            for j in judge_tensors:
                assert not (t.shape == j.shape and torch.equal(t, j) and t.abs().sum() > 0), \
                    name
    # nothing in the generator's or adapter's code reads the judge or its weights
    for module in (model_module, training_module, adapter_module):
        assert not any(m.startswith("bench.judges") for m in _imports(module)), module
        assert judge_module.WEIGHTS_FILE not in inspect.getsource(module)


# ---------------------------------------------------------------------------------------------
# Demo budget on held-out synthetic speakers


MIN_BALANCED_ACCURACY: dict[str, dict[str, float]] = {
    "landmark-rules": {"AU20": 0.7, "AU25": 0.7, "AU26": 0.7},
    "openface": {"AU10": 0.6, "AU14": 0.6, "AU20": 0.7, "AU25": 0.7, "AU26": 0.7},
}
"""Per label source, the AUs whose held-out heads must beat chance (F1 at least 0.1 above the
all-positive F1) and the balanced accuracy they must reach. The landmark rules cannot see
AU14 in 68 points and their AU10 is a threshold on the rest face, so with rule labels AU10
and AU14 are printed, not asserted."""


@pytest.mark.slow
@pytest.mark.parametrize("labels", ["landmark-rules", "openface"])
def test_demo_audio2au_above_chance_on_held_out_speakers(synth_heldout, tmp_path: Path,
                                                         labels: str) -> None:
    """Audio2AU pre-training at the demo budget on the held-out corpus's 12 training speakers
    (36 clips), scored on its 4 unseen speakers (12 clips, 670 frames) against the same
    labeller: the landmark rules, or the synthesised truth written as OpenFace CSVs (issue
    15). Trained and scored on OpenFace labels, all five heads beat chance; on the rules,
    AU20, AU25 and AU26 do (``MIN_BALANCED_ACCURACY``); the untrained heads do not.

    Measured with the corpus's code version 2 (each emotion has a voice quality; with version
    1 the expression-driven AU10 and AU14 were not in the audio and their heads were at chance
    in half the runs even on right labels). Trained on the truth as OpenFace labels, against
    the truth of the unseen speakers, in 4 folds (each 4 speakers held out in turn, fold 0 is
    this test's) x seeds 0 and 1: AU10 F1 0.37-0.66 vs chance 0.30-0.33 (balanced accuracy
    0.61-0.80, above chance in 8 of 8, by 0.1 in 6), AU14 0.26-0.70 vs 0.26 (0.57-0.80, by
    0.1 in 7 of 8; fold 2 seed 1 at chance), AU20/25/26 above chance in every run. This
    test's fold, seeds 0/1: AU10 0.43/0.50 vs 0.29, AU14 0.63/0.67 vs 0.26. Trained on the
    rules and scored against the truth, AU14 stays at chance (0.00-0.20 vs 0.26) in all 8."""
    train = [clip for _, clip in synth_heldout["train"]]
    test = [clip for _, clip in synth_heldout["test"]]
    assert (len(train), len(test)) == (36, 12)
    folder = None
    if labels == "openface":
        refs = [ref for part in ("train", "test") for ref, _ in synth_heldout[part]]
        folder = truth_as_openface(refs, tmp_path / "openface")
    cfg = DEMO
    train_data = load_labelled(train, cfg.size, openface=folder)
    test_data = load_labelled(test, cfg.size, openface=folder)
    for part in (train_data, test_data):
        assert part.sources()[labels] == len(part.labels), part.sources()
    held = test_data.training_data(cfg)
    torch.manual_seed(0)
    nets = AUTCSANNets(cfg)
    data = train_data.training_data(cfg)
    nets["mfcc"].fit(data.mfcc)
    untrained = audio2au_scores(nets, held, CPU)
    start = time.perf_counter()
    pretrain_audio2au(nets, data, cfg, np.random.default_rng(0), CPU)
    seconds = time.perf_counter() - start
    scores = audio2au_scores(nets, held, CPU)
    print(f"\nAudio2AU demo pre-training on {labels} labels {seconds:.1f} s; held-out:", scores)
    assert scores["frames"] > 600

    def beats_chance(s: dict, i: int, balanced_accuracy: float) -> bool:
        return (s["f1"][i] >= s["chance_f1"][i] + 0.1
                and s["balanced_acc"][i] >= balanced_accuracy)

    for i, au in enumerate(AUS):
        bar = MIN_BALANCED_ACCURACY[labels].get(au)
        if bar is not None:
            assert beats_chance(scores, i, bar), (au, scores)
            assert not beats_chance(untrained, i, bar), (au, untrained)
