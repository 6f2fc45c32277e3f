"""Issue 12, the judges' and data's side: each test reproduces a fault as the issue found it
(it fails on the code before the fix) and shows the fixed behaviour, at smoke size.

- item 3: judges keyed by what they saw; a judge never scores speakers it trained on;
- item 9: judge budgets in steps (no wall-clock stop), chance levels beside the quality;
- item 5: damaged judge files and preprocessing cache entries are reported, removed, redone;
- item 4: a zero-byte test video stays in the count;
- item 6: preprocessing workers die with their parent; judge temp folders unique and swept;
  two processes training the same judge end with one consistent folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data import preprocess as prep
from bench.data.datasets import open_dataset
from bench.judges import store
from bench.metrics import MetricContext, get_metric
from bench.metrics.base import MetricUnavailable, Sample

HERE = Path(__file__).parent


def _bench(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def prepared(synth_native_root, tmp_path_factory):
    """The native tiny corpus's clips, prepared once into a module cache (copy it to damage
    it)."""
    cache = tmp_path_factory.mktemp("prep") / "prepared"
    refs = open_dataset("synthetic", synth_native_root).scan().clips
    report = prep.prepare_all(refs, cache, workers=1, progress=False)
    assert len(report.prepared) == len(refs)
    return refs, cache


# ----------------------------------------------------------------------------- item 3
def _run(root, tmp_path, *extra):
    return _bench("run", "--dataset", "crema-d", "--root", root, "--model", "still-image",
                  "--budget", "smoke", "--metrics", "lse,emoacc",
                  "--runs-dir", tmp_path / "runs", "--leaderboard-dir", tmp_path / "lb",
                  "--cache-dir", tmp_path / "cache", "--quiet", "--workers", "1", *extra)


def test_goyal2023_after_vougioukas2019_trains_new_judges_and_refuses_the_old(
        synth_crema_root, tmp_path):
    root = tmp_path / "crema"
    shutil.copytree(synth_crema_root, root)
    code, out = _run(root, tmp_path)  # vougioukas2019: test 1015 1020; 1011 is in train
    assert code == 0, out
    judges = tmp_path / "cache" / "judges"
    first = {name: sorted(p.name for p in (judges / name / "crema-d").iterdir())
             for name in ("syncnet", "emotion")}
    assert all(len(keys) == 1 for keys in first.values()), first
    old = store.trained_judge("emotion", "crema-d", tmp_path / "cache")
    assert old.record["split"] == "vougioukas2019" and "1011" in old.record["train_speakers"]

    code, out = _run(root, tmp_path, "--split", "goyal2023")  # 1011 is a test actor here
    assert code == 0, out
    for name in ("syncnet", "emotion"):  # a new judge beside the old one, not the old reused
        keys = sorted(p.name for p in (judges / name / "crema-d").iterdir())
        assert len(keys) == 2 and set(first[name]) < set(keys), (name, keys)
        new_key = (set(keys) - set(first[name])).pop()
        record = json.loads((judges / name / "crema-d" / new_key / "done.json").read_text())
        assert record["split"] == "goyal2023" and "1011" not in record["train_speakers"]
        assert record["root_hash"] and record["identity"]
    summary = json.loads((tmp_path / "runs" / "crema-d" / "goyal2023" / "still-image"
                          / "summary.json").read_text())
    assert "goyal2023" in json.dumps(summary["provenance"])
    assert "vougioukas2019 train" not in json.dumps(summary["provenance"])
    report = json.loads((tmp_path / "runs" / "crema-d" / "goyal2023" / "judges.json")
                        .read_text())
    for name in ("syncnet", "emotion"):  # chance level beside each judge's quality figure
        test = report[name]["test"]
        assert test["figure"] in test and test["chance"] > 0, test
    assert report["emotion"]["test"]["chance"] == pytest.approx(1 / 6)
    assert report["syncnet"]["test"]["chance"] == pytest.approx(3 / 31)

    # a hand-made attempt: the vougioukas2019 judges asked to score goyal2023's test actor
    context = MetricContext(dataset="crema-d", cache_dir=tmp_path / "cache",
                            judge_identity=old.record["identity"], judge_budget="smoke",
                            test_speakers=frozenset({"1011"}))
    found = context.trained_judge("emotion")
    assert found is not None and found.directory == old.directory
    with pytest.raises(MetricUnavailable, match="judge emotion .*saw test speakers 1011"):
        found.load("cpu")
    emoacc = get_metric("emoacc", device="cpu", context=context)
    frames = np.zeros((30, 64, 64, 3), np.uint8)
    with pytest.raises(MetricUnavailable, match="saw test speakers 1011: refused"):
        emoacc.update(Sample(clip_id="1011_x", pred=frames, emotion="HAP"))
    lse = get_metric("lse", device="cpu", context=context)
    assert not lse.needs_trained_judge()  # refused, not retrained over
    with pytest.raises(MetricUnavailable, match="judge syncnet .*saw test speakers 1011"):
        noise = 0.1 * np.random.default_rng(0).standard_normal(30 * 640)
        lse.update(Sample(clip_id="1011_x", pred=frames, audio=noise.astype(np.float32)))
    # the same through the store's own check
    bare = store.trained_judge("emotion", "crema-d", tmp_path / "cache", key=old.directory.name,
                               test_speakers={"1011", "1099"})
    assert bare.refusal() is not None and "1099" not in bare.refusal()
    with pytest.raises(store.JudgeRefused):
        bare.load("cpu")


def test_official_weights_are_not_checked_for_speakers(tmp_path, monkeypatch):
    """Official SyncNet weights are not harness-trained: the speaker rule does not apply."""
    from bench.judges.syncnet import SyncNet

    weights = tmp_path / "syncnet_v2.model"
    import torch

    torch.save(SyncNet().state_dict(), weights)
    context = MetricContext(dataset="crema-d", cache_dir=tmp_path / "cache",
                            judge_identity="x", judge_budget="smoke",
                            test_speakers=frozenset({"1011"}))
    lse = get_metric("lse", device="cpu", context=context)
    lse.weights = weights
    assert lse.choice().kind == "file" and not lse.needs_trained_judge()


# ----------------------------------------------------------------------------- item 9
def test_judge_budgets_are_step_counts():
    for name in store.JUDGES.names():
        module = store.judge_module(name)
        for budget, plan in module.BUDGETS.items():
            assert getattr(plan, "max_seconds", None) is None, (name, budget)


def test_au_smoke_judge_does_not_depend_on_machine_speed(prepared, tmp_path, monkeypatch):
    """A machine 10 s slower per step (a loaded CPU) trains the same AU judge, to the step."""
    from bench.core import training
    from bench.data.preprocess import load_prepared
    from bench.judges import au_classifier

    refs, cache = prepared
    clips = [load_prepared(r, cache) for r in refs[:3]]
    (tmp_path / "fast").mkdir()
    fast = au_classifier.train(clips, None, tmp_path / "fast", budget="smoke", device="cpu",
                               seed=0, progress=False)
    clock = {"t": 0.0}

    def slow_clock() -> float:
        clock["t"] += 10.0
        return clock["t"]

    monkeypatch.setattr(training.time, "perf_counter", slow_clock)
    (tmp_path / "slow").mkdir()
    slow = au_classifier.train(clips, None, tmp_path / "slow", budget="smoke", device="cpu",
                               seed=0, progress=False)
    monkeypatch.undo()
    assert slow["steps"] == fast["steps"] > 1  # a time limit stopped the slow one at 1
    assert slow["stopped_by"] != "time"
    import torch

    a = torch.load(tmp_path / "fast" / au_classifier.WEIGHTS_FILE, weights_only=True)
    b = torch.load(tmp_path / "slow" / au_classifier.WEIGHTS_FILE, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same weights, whatever the load
    judge = au_classifier.load(tmp_path / "slow", "cpu")
    quality = au_classifier.evaluate(judge, clips, device="cpu")
    assert quality["figure"] == "avg_f1" and 0 < quality["chance"] <= 1
    assert 0.5 <= quality["chance_avg_acc"] <= 1


# ----------------------------------------------------------------------------- item 5
@pytest.fixture
def fixture_judge():
    """The test judge and metric, registered for one test only (the registries are global:
    left behind, they would join every later run's metrics)."""
    import judge_fixture

    from bench.metrics import METRICS

    store.JUDGES.add("test-brightness", "judge_fixture")
    METRICS.add("test-brightness", "judge_fixture:BrightnessOffset")
    try:
        yield judge_fixture
    finally:
        store.JUDGES.remove("test-brightness")
        METRICS.remove("test-brightness")


@pytest.mark.parametrize("damage", ["weights-truncated", "weights-empty", "done-truncated",
                                    "done-empty"])
def test_damaged_judge_is_reported_removed_and_retrained(synth_native_root, tmp_path, damage,
                                                         fixture_judge):
    judge_fixture = fixture_judge
    args = ["run", "--model", "still-image", "--dataset", "synthetic",
            "--root", synth_native_root, "--runs-dir", tmp_path / "runs", "--budget", "smoke",
            "--leaderboard-dir", tmp_path / "lb", "--cache-dir", tmp_path / "cache",
            "--quiet", "--workers", "2", "--metrics", "test-brightness"]
    code, out = _bench(*args)
    assert code == 0, out
    folder = store.trained_judge("test-brightness", "synthetic", tmp_path / "cache").directory
    target = folder / ("mean.json" if damage.startswith("weights") else "done.json")
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2] if damage.endswith("truncated") else b"")
    calls = judge_fixture.CALLS["train"]
    code, out = _bench(*args)
    assert code == 0, out
    assert "Traceback" not in out and "Aborted" not in out
    lines = [line for line in out.splitlines() if "is damaged" in line]
    assert len(lines) == 1 and str(folder) in lines[0] and "trained again" in lines[0], out
    assert judge_fixture.CALLS["train"] == calls + 1
    again = store.trained_judge("test-brightness", "synthetic", tmp_path / "cache")
    assert again is not None and again.directory == folder
    assert store.folder_sha256(folder) == again.record["weights_sha256"]


@pytest.mark.parametrize("name", ["frames.mp4", "audio.npy", "landmarks.npy"])
def test_damaged_prepared_entry_is_reported_removed_and_prepared_again(prepared, tmp_path,
                                                                        capfd, name):
    refs, shared = prepared
    cache = tmp_path / "prepared"
    shutil.copytree(shared, cache)
    ref = refs[0]
    entry = prep.entry_path(cache, prep.cache_key(ref))
    expected = prep.load_prepared(ref, cache)
    target = entry / name
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 3])
    capfd.readouterr()
    report = prep.prepare_all(refs[:2], cache, workers=1, progress=False)
    err = capfd.readouterr().err
    assert len(report.prepared) == 2 and report.reused == 1  # not "2/2 from cache"
    lines = [line for line in err.splitlines() if "is damaged" in line]
    assert len(lines) == 1 and ref.clip_id in lines[0] and name in lines[0], err
    clip = prep.load_prepared(ref, cache)
    assert np.array_equal(clip.frames, expected.frames)
    assert np.array_equal(clip.audio, expected.audio)


def test_damage_found_only_when_loading_is_healed_too(prepared, tmp_path, capfd):
    """Same size, other bytes (sizes cannot show it): loading finds it, heals it."""
    refs, shared = prepared
    cache = tmp_path / "prepared"
    shutil.copytree(shared, cache)
    ref = refs[1]
    entry = prep.entry_path(cache, prep.cache_key(ref))
    target = entry / "frames.mp4"
    target.write_bytes(b"\0" * target.stat().st_size)
    clip = prep.load_prepared(ref, cache)
    assert clip.num_frames > 0
    assert "damaged" in capfd.readouterr().err


# ----------------------------------------------------------------------------- item 4
def test_zero_byte_test_video_stays_in_the_count(synth_crema_root, tmp_path):
    from bench.stages.workspace import RunConfig, Workspace

    root = tmp_path / "crema"
    shutil.copytree(synth_crema_root, root)
    victim = sorted((root / "VideoFlash").glob("1015_*.flv"))[0]  # vougioukas2019 test actor
    victim.write_bytes(b"")
    ws = Workspace(RunConfig(dataset="crema-d", root=root, budget="smoke", seed=0,
                             cache_dir=tmp_path / "cache", runs_dir=tmp_path / "runs",
                             progress=False, workers=1, metrics=["psnr"]), echo=lambda _: None)
    test_ids = [r.clip_id for r in ws.parts["test"]]
    assert victim.stem in test_ids and len(test_ids) == 4
    prepared = ws.prepare("test")
    assert victim.stem not in {r.clip_id for r in prepared}
    assert "0 bytes" in ws.failed[victim.stem]


# ----------------------------------------------------------------------------- item 6
_PREPARE_THEN_HANG = """
import sys, time
from pathlib import Path
from bench.data import preprocess as prep
from bench.data.datasets import open_dataset

def hang(ref, cache_root, params, retry_failed=False):
    import os
    Path(sys.argv[2], f"worker-{os.getpid()}").write_text("")
    time.sleep(120)
    return True, None, False

prep._prepare_task = hang
if __name__ == "__main__":
    refs = open_dataset("synthetic", sys.argv[1]).scan().clips
    prep.prepare_all(refs[:2], sys.argv[3], workers=2, progress=False)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process checks")
def test_preprocessing_workers_die_with_a_killed_parent(synth_native_root, tmp_path):
    script = tmp_path / "hang_prep.py"
    script.write_text(_PREPARE_THEN_HANG)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    parent = subprocess.Popen([sys.executable, str(script), str(synth_native_root), str(marks),
                               str(tmp_path / "cache")], env=env, cwd=tmp_path)
    try:
        deadline = time.time() + 120
        while len(list(marks.iterdir())) < 2 and time.time() < deadline:
            time.sleep(0.2)
        workers = [int(p.name.split("-")[1]) for p in marks.iterdir()]
        assert len(workers) == 2
        parent.kill()  # kill -9: no finally, no atexit in the parent
        parent.wait()
        deadline = time.time() + 10
        while any(_alive(pid) for pid in workers) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
    finally:
        parent.kill()
        for path in marks.iterdir():
            try:
                os.kill(int(path.name.split("-")[1]), 9)
            except (ProcessLookupError, ValueError):
                pass


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_judge_temp_folders_are_swept(tmp_path):
    base = store.judge_dir("test-brightness", "synthetic", tmp_path)
    dead = _dead_pid()
    stale = [base / f".k1-tmp-{dead}-0123abcd", base / f".k1-old-{dead}-89abcdef",
             base.parent / f".synthetic-tmp-{dead}"]  # the old one-folder-per-dataset layout
    live = base / f".k1-tmp-{os.getpid()}-00000000"
    for folder in [*stale, live]:
        folder.mkdir(parents=True)
        (folder / "weights").write_text("partial")

    def train(out_dir, **_):
        (Path(out_dir) / "w.txt").write_text("w")
        return {}

    store.store_trained("test-brightness", "synthetic", train, record={}, cache_dir=tmp_path,
                        key="k1")
    assert not any(p.exists() for p in stale) and live.exists()
    assert (base / "k1" / "w.txt").read_text() == "w"


_TRAIN_SAME_JUDGE = """
import os, sys, time
from pathlib import Path
from bench.judges import store

def train(out_dir, **_):
    time.sleep(1.0)
    (Path(out_dir) / "weights.bin").write_bytes(os.urandom(4096))
    time.sleep(0.5)
    return {"pid": os.getpid()}

store.store_trained("conc", "d", train, record={"n_train": 1}, cache_dir=Path(sys.argv[1]),
                    key="k")
print("ok")
"""


def test_two_processes_training_one_judge_end_consistent(tmp_path):
    script = tmp_path / "train_same.py"
    script.write_text(textwrap.dedent(_TRAIN_SAME_JUDGE))
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "cache")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    base = store.judge_dir("conc", "d", tmp_path / "cache")
    assert sorted(p.name for p in base.iterdir()) == ["k"]  # no temp or old folder left
    record = json.loads((base / "k" / "done.json").read_text())
    assert record["weights_sha256"] == store.folder_sha256(base / "k")
    assert record["log"]["pid"] in {p.pid for p in procs}
