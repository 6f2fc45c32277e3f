"""The runner (SPEC 7): prepare, train, generate, score, summarise, write leaderboards.

Every stage is cached per record and resumable; a run killed at any point and started again
finishes the same leaderboard without redoing finished work:

- preprocessing: one cache entry per clip, keyed by a content hash (``bench.data.preprocess``);
- training: ``checkpoint/`` with ``done.json`` holding the training key (adapter config, budget,
  split, the cache keys of the training clips); a changed key retrains;
- generation: ``generated/<clip>.npz`` holds the frames and the generation key (training key +
  clip cache key + emotion), written atomically; ``videos/<clip>.mp4`` is for people to watch;
- scoring: ``scores/<clip>.json`` holds every metric's per-clip values with the metric's
  version and the generation key, so adding a metric never regenerates video.

Layout: ``runs/<dataset>/<split>/<model>/`` and ``runs/<dataset>/<split>/ground-truth/``.
The identity image of a test clip is its first aligned frame; the requested emotion is the
clip's own label.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import EMOTIONS
from bench.adapters import BUDGETS, Adapter, adapter_class, model_names
from bench.adapters.base import check_generated
from bench.data.clip import Clip, ClipRef
from bench.data.datasets import open_dataset
from bench.fileio import atomic_save_npz, atomic_write_json
from bench.leaderboard import write_leaderboard
from bench.provenance import device_name, git_commit, package_versions, stable_hash
from bench.scoring import is_cached, score_sample, summarise_records, write_table

Echo = Callable[[str], None]


def default_cache_dir() -> Path:
    """``$TALKBENCH_CACHE`` or ``~/.cache/talkbench``."""
    return Path(os.environ.get("TALKBENCH_CACHE", Path.home() / ".cache" / "talkbench"))


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class RunConfig:
    """Everything a run depends on."""

    dataset: str = "synthetic"
    root: Path | None = None  # None for ``synthetic``: the embedded corpus is built in the cache
    split: str | None = None  # None: the dataset's default split
    models: Sequence[str] = ("all",)  # registered names or ``module:Class``
    budget: str = "demo"
    metrics: Sequence[str] | None = None  # None: every registered metric
    seed: int = 0
    runs_dir: Path = Path("runs")
    cache_dir: Path = field(default_factory=default_cache_dir)
    leaderboard_dir: Path = Path("leaderboards")
    device: str | None = None
    workers: int | None = None
    max_test_clips: int | None = None  # score only the first N test clips (quick looks)
    progress: bool = True


class LazyClips(Sequence[Clip]):
    """Prepared clips loaded from the cache on access (what ``Adapter.fit`` receives)."""

    def __init__(self, refs: Sequence[ClipRef], loader: Callable[[ClipRef], Clip]) -> None:
        self.refs = list(refs)
        self._loader = loader

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return LazyClips(self.refs[index], self._loader)
        return self._loader(self.refs[index])


@dataclass
class RunResult:
    dataset: str
    split: str
    summaries: dict[str, dict]
    leaderboard_md: Path
    leaderboard_csv: Path
    problems: list[str]


def resolve_models(names: Sequence[str]) -> list[type[Adapter]]:
    """``all`` expands to every registered model; other names are looked up (or imported)."""
    out: list[type[Adapter]] = []
    for name in names:
        expanded = model_names() if name == "all" else [name]
        for item in expanded:
            cls = adapter_class(item)
            if cls not in out:
                out.append(cls)
    return out


def resolve_root(cfg: RunConfig, echo: Echo) -> Path:
    """The dataset root; for ``synthetic`` without ``--root``, the embedded default corpus."""
    if cfg.root is not None:
        return Path(cfg.root)
    if cfg.dataset != "synthetic":
        raise ValueError(f"--root is required for dataset {cfg.dataset!r} (the folder where "
                         f"its release is unpacked)")
    from bench.data.synth import build_corpus

    root = Path(cfg.cache_dir) / "corpus" / f"synthetic-seed{cfg.seed}"
    if not (root / "corpus.json").exists():
        echo(f"building the embedded synthetic corpus in {root} (seed {cfg.seed})")
    build_corpus(root, layout="native", seed=cfg.seed, workers=cfg.workers,
                 progress=cfg.progress)
    return root


def _progress(items, desc: str, enabled: bool):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="clip", leave=False)


class Runner:
    """Runs one configuration end to end; see the module docstring for the stages."""

    def __init__(self, cfg: RunConfig, echo: Echo = print) -> None:
        if cfg.budget not in BUDGETS:
            raise ValueError(f"unknown budget {cfg.budget!r}; choose one of {', '.join(BUDGETS)}")
        self.cfg = cfg
        self.echo = echo
        self.device = cfg.device or default_device()
        self.problems: list[str] = []

    # ----------------------------------------------------------------------------- data
    def load_data(self) -> None:
        from bench.data.preprocess import PrepParams
        from bench.data.splits import get_split

        cfg = self.cfg
        self.root = resolve_root(cfg, self.echo)
        dataset = open_dataset(cfg.dataset, self.root)
        scan = dataset.scan()
        for line in scan.problems:
            self.echo(f"warning: {line}")
        self.problems += scan.problems
        if not scan.clips:
            raise ValueError(f"{cfg.dataset}: no clips found under {self.root}")
        self.split = get_split(cfg.dataset, cfg.split or dataset.default_split)
        self.parts = self.split.apply(scan.clips)
        if cfg.max_test_clips is not None:
            self.parts["test"] = self.parts["test"][: cfg.max_test_clips]
        if not self.parts["test"]:
            raise ValueError(f"split {self.split.name} has no test clips under {self.root}")
        self.dataset_hash = stable_hash(sorted(
            (c.clip_id, _size(c.video), _size(c.audio)) for c in scan.clips))
        self.params = PrepParams()
        self.prep_dir = Path(cfg.cache_dir) / "prepared"
        self.run_dir = Path(cfg.runs_dir) / cfg.dataset / self.split.name
        self.prepared: dict[str, list[ClipRef]] = {}
        self.failed: dict[str, str] = {}

    def prepare(self, part: str) -> list[ClipRef]:
        """Preprocess one split part (cached); failures are reported and skipped."""
        if part in self.prepared:
            return self.prepared[part]
        from bench.data.preprocess import prepare_all

        refs = self.parts[part]
        report = prepare_all(refs, self.prep_dir, self.params, workers=self.cfg.workers,
                             progress=self.cfg.progress)
        for reason in report.failed.values():
            self.echo(f"skipped: {reason}")
        self.failed.update(report.failed)
        done = {r.clip_id for r in report.prepared}
        self.prepared[part] = [r for r in refs if r.clip_id in done]
        return self.prepared[part]

    def load_clip(self, ref: ClipRef) -> Clip:
        from bench.data.preprocess import load_prepared

        return load_prepared(ref, self.prep_dir, self.params)

    def clip_key(self, ref: ClipRef) -> str:
        from bench.data.preprocess import cache_key

        return cache_key(ref, self.params)

    # ----------------------------------------------------------------------------- metrics
    def metric_names(self) -> list[str]:
        from bench.metrics import METRICS

        return list(self.cfg.metrics) if self.cfg.metrics else METRICS.names()

    def make_metrics(self, ground_truth: bool) -> list:
        from bench.metrics import MetricContext, get_metric

        context = MetricContext(dataset=self.cfg.dataset, cache_dir=Path(self.cfg.cache_dir))
        metrics = [get_metric(name, device=self.device, context=context)
                   for name in self.metric_names()]
        return [m for m in metrics if m.on_ground_truth or not ground_truth]

    def emotion_sweep(self) -> bool:
        """Whether test clips are generated once per emotion (EmoAcc protocol of seed 002:
        the requested emotion is the label), i.e. EmoAcc is scored and clips carry labels."""
        return "emoacc" in self.metric_names() and any(r.emotion for r in self.parts["test"])

    # ----------------------------------------------------------------------------- judges
    def train_judge(self, name: str):
        """Train judge ``name`` on the split's train part and cache it for the dataset."""
        from bench.judges.store import judge_module, store_trained

        module = judge_module(name)
        train, val = self.prepare("train"), self.prepare("val")
        if not train:
            raise ValueError(f"no prepared training clips to train the {name} judge on")
        record = {"split": self.split.name, "split_version": self.split.version,
                  "budget": self.cfg.budget, "seed": self.cfg.seed, "n_train": len(train),
                  "n_val": len(val), "device": device_name(self.device),
                  "train_key": stable_hash([self.clip_key(r) for r in train])}
        self.echo(f"judge {name}: training on {self.cfg.dataset}/{self.split.name} train "
                  f"({len(train)} clips, {self.cfg.budget} budget)")
        return store_trained(
            name, self.cfg.dataset, module.train, record=record, cache_dir=self.cfg.cache_dir,
            train=LazyClips(train, self.load_clip),
            val=LazyClips(val, self.load_clip) if val else None, budget=self.cfg.budget,
            device=self.device, seed=self.cfg.seed, progress=self.cfg.progress)

    def ensure_judges(self) -> None:
        """Train the judges the chosen metrics need and lack (SPEC 5: without official
        weights, the harness trains its own on the train split). A failure is reported and
        the metrics that needed the judge say they are unavailable."""
        done: set[str] = set()
        for metric in self.make_metrics(ground_truth=False):
            name = metric.judge_name
            if name is None or name in done:
                continue
            done.add(name)
            try:
                if metric.needs_trained_judge():
                    self.train_judge(name)
            except Exception as err:  # noqa: BLE001 - a judge failing must not stop the run
                self.echo(f"error: judge {name}: training failed: {err}")
                self.problems.append(f"judge {name}: training failed: {err}")

    def report_judges(self, names: Sequence[str] | None = None) -> dict[str, dict]:
        """Each trained judge's provenance and its own quality on the real test clips, written
        to ``runs/<dataset>/<split>/judges.json`` (leaderboard footnotes read it). Cached by
        the judge's weights hash and the test clips."""
        from bench.judges.store import JUDGES, judge_module, trained_judge

        test = self.prepare("test")
        path = self.run_dir / "judges.json"
        try:
            old = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, json.JSONDecodeError):
            old = {}
        report: dict[str, dict] = {}
        for name in names or JUDGES.names():
            judge = trained_judge(name, self.cfg.dataset, self.cfg.cache_dir)
            if judge is None:
                continue
            key = stable_hash([judge.record.get("weights_sha256"),
                               [self.clip_key(r) for r in test]])
            if old.get(name, {}).get("key") == key:
                report[name] = old[name]
                continue
            module = judge_module(name)
            model = judge.load(self.device)
            quality = module.evaluate(model, LazyClips(test, self.load_clip), device=self.device)
            report[name] = {"key": key, "judge": judge.describe(), "n_test": len(test),
                            "test": quality, "train_log": judge.record.get("log", {})}
        atomic_write_json(path, report)
        return report

    # ----------------------------------------------------------------------------- stages
    def fit_or_load(self, cls: type[Adapter], model_dir: Path) -> tuple[Adapter, str, dict]:
        adapter = cls(seed=self.cfg.seed, device=self.device)
        train_refs = self.prepare("train") if cls.trainable else []
        val_refs = self.prepare("val") if cls.trainable else []
        train_key = stable_hash({
            "adapter": adapter.config(), "budget": self.cfg.budget,
            "split": [self.split.name, self.split.version],
            "train": [self.clip_key(r) for r in train_refs],
        })
        ckpt = model_dir / "checkpoint"
        done = ckpt / "done.json"
        if done.exists() and json.loads(done.read_text()).get("train_key") == train_key:
            adapter.load(ckpt)
            return adapter, train_key, json.loads(done.read_text()).get("log", {})
        if cls.trainable and not train_refs:
            raise ValueError("no prepared training clips")
        self.echo(f"{cls.name}: training ({self.cfg.budget} budget, {len(train_refs)} clips)")
        start = time.perf_counter()
        log = adapter.fit(LazyClips(train_refs, self.load_clip),
                          LazyClips(val_refs, self.load_clip) if val_refs else None,
                          self.cfg.budget) or {}
        log = {**log, "wall_s": round(time.perf_counter() - start, 3)}
        tmp = model_dir / ".checkpoint-tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        adapter.save(tmp)
        atomic_write_json(tmp / "done.json", {"train_key": train_key, "log": log})
        shutil.rmtree(ckpt, ignore_errors=True)
        os.replace(tmp, ckpt)
        return adapter, train_key, log

    def generate(self, adapter: Adapter, train_key: str, model_dir: Path,
                 refs: list[ClipRef]) -> tuple[dict[str, str], dict[str, str]]:
        """Generate every test clip once; returns gen keys and per-clip failures."""
        keys: dict[str, str] = {}
        failures: dict[str, str] = {}
        for ref in _progress(refs, f"{adapter.name}: generate", self.cfg.progress):
            gen_key = stable_hash([train_key, self.clip_key(ref), ref.emotion])
            out = model_dir / "generated" / f"{ref.clip_id}.npz"
            if _npz_key(out) == gen_key:
                keys[ref.clip_id] = gen_key
                continue
            clip = self.load_clip(ref)
            identity = clip.frames[0]
            try:
                frames = adapter.generate(identity, clip.audio, clip.emotion)
                check_generated(frames, identity, clip.audio)
            except Exception as err:  # noqa: BLE001 - one model's failure on one clip
                failures[ref.clip_id] = f"{ref.clip_id}: generation failed ({err})"
                self.echo(f"skipped: {failures[ref.clip_id]}")
                continue
            atomic_save_npz(out, frames=frames, key=np.array(gen_key))
            from bench.data.media import write_video

            write_video(model_dir / "videos" / f"{ref.clip_id}.mp4", frames, clip.audio)
            keys[ref.clip_id] = gen_key
        if self.emotion_sweep() and adapter.needs_emotion:
            for ref in _progress([r for r in refs if r.clip_id in keys and r.emotion],
                                 f"{adapter.name}: generate per emotion", self.cfg.progress):
                try:
                    self.generate_other_emotions(adapter, train_key, model_dir, ref)
                except Exception as err:  # noqa: BLE001 - one model's failure on one clip
                    failures[ref.clip_id] = f"{ref.clip_id}: generation failed ({err})"
                    self.echo(f"skipped: {failures[ref.clip_id]}")
                    keys.pop(ref.clip_id)
        return keys, failures

    def generate_other_emotions(self, adapter: Adapter, train_key: str, model_dir: Path,
                                ref: ClipRef) -> None:
        """The clip generated with each emotion other than its own (for EmoAcc), cached as
        ``generated/<clip>@<EMOTION>.npz``; only for adapters that use the emotion."""
        clip = None
        for emotion in EMOTIONS:
            if emotion == ref.emotion:
                continue
            gen_key = stable_hash([train_key, self.clip_key(ref), emotion])
            out = model_dir / "generated" / f"{ref.clip_id}@{emotion}.npz"
            if _npz_key(out) == gen_key:
                continue
            clip = clip or self.load_clip(ref)
            frames = adapter.generate(clip.frames[0], clip.audio, emotion)
            check_generated(frames, clip.frames[0], clip.audio)
            atomic_save_npz(out, frames=frames, key=np.array(gen_key))

    def by_emotion(self, model_dir: Path, ref: ClipRef, pred: np.ndarray,
                   needs_emotion: bool) -> dict[str, np.ndarray]:
        """Requested emotion -> generated frames of one clip (EmoAcc). A model that ignores
        the emotion made the same video for every request, so its one video stands for all."""
        out = {ref.emotion: pred}
        for emotion in EMOTIONS:
            if emotion != ref.emotion:
                if needs_emotion:
                    with np.load(model_dir / "generated" / f"{ref.clip_id}@{emotion}.npz") as data:
                        out[emotion] = data["frames"]
                else:
                    out[emotion] = pred
        return out

    def score(self, name: str, out_dir: Path, refs: list[ClipRef],
              keys: dict[str, str] | None, needs_emotion: bool = False) -> dict[str, dict]:
        """Score every clip with every metric, reusing cached per-clip values.

        Per-clip metrics store their values in ``scores/<clip>.json``; dataset-level metrics
        (FID) store the clip's state in ``states/<metric>/<clip>.npz`` and an entry saying so.
        """
        from bench.metrics.base import Sample

        metrics = self.make_metrics(ground_truth=keys is None)
        records: dict[str, dict] = {}
        for ref in _progress(refs, f"{name}: score", self.cfg.progress):
            gen_key = keys[ref.clip_id] if keys is not None else self.clip_key(ref)
            path = out_dir / "scores" / f"{ref.clip_id}.json"
            record = {"gen_key": gen_key, "emotion": ref.emotion, "metrics": {}}
            if path.exists():
                try:
                    old = json.loads(path.read_text())
                    if old.get("gen_key") == gen_key:
                        record = old
                except (OSError, json.JSONDecodeError):
                    pass
            todo = [m for m in metrics
                    if not is_cached(record, m, out_dir / "states", ref.clip_id)]
            if todo:
                clip = self.load_clip(ref)
                pred = clip.frames
                if keys is not None:
                    with np.load(out_dir / "generated" / f"{ref.clip_id}.npz") as data:
                        pred = data["frames"]
                sample = Sample(clip_id=ref.clip_id, pred=pred, gt=clip.frames,
                                audio=clip.audio, identity=clip.frames[0], emotion=clip.emotion)
                if keys is not None and clip.emotion and self.emotion_sweep():
                    sample.shared["by_emotion"] = self.by_emotion(out_dir, ref, pred,
                                                                  needs_emotion)
                record["metrics"].update(score_sample(todo, sample, out_dir / "states"))
                atomic_write_json(path, record)
            records[ref.clip_id] = record
        return records

    def summarise(self, name: str, kind: str, out_dir: Path, records: dict[str, dict],
                  n_test: int, skipped: dict[str, str], extra: dict) -> dict:
        metrics = self.make_metrics(ground_truth=kind == "ground-truth")
        columns, aggregate, provenance_metrics = summarise_records(
            metrics, records, out_dir / "states", self.cfg.seed)
        write_table(out_dir / "scores.csv", records, list(columns))
        summary = {
            "model": name, "kind": kind, "dataset": self.cfg.dataset,
            "split": self.split.name, "budget": self.cfg.budget if kind == "model" else None,
            "n_test": n_test, "n_scored": len(records), "skipped": skipped,
            "columns": columns, "aggregate": aggregate,
            "provenance": {
                "git_commit": git_commit(), "packages": package_versions(),
                "dataset_root": str(self.root), "dataset_hash": self.dataset_hash,
                "split_version": self.split.version, "split_rule": self.split.description,
                "preprocess": self.params.digest(), "seed": self.cfg.seed,
                "device": device_name(self.device), "metrics": provenance_metrics, **extra,
            },
        }
        atomic_write_json(out_dir / "summary.json", summary)
        return summary

    # ----------------------------------------------------------------------------- main
    def run(self) -> RunResult:
        cfg = self.cfg
        models = resolve_models(cfg.models)
        self.load_data()
        test_all = self.parts["test"]
        self.echo(f"{cfg.dataset} / {self.split.name}: " + ", ".join(
            f"{k} {len(v)} clips" for k, v in self.parts.items()))
        test = self.prepare("test")
        skipped_prep = {r.clip_id: self.failed[r.clip_id] for r in test_all
                        if r.clip_id in self.failed}
        self.ensure_judges()
        judges = {m.judge_name for m in self.make_metrics(ground_truth=False)} - {None}
        if judges:
            try:
                self.report_judges(sorted(judges))
            except Exception as err:  # noqa: BLE001 - the report is a footnote, not a stage
                self.echo(f"warning: judges report failed: {err}")
        summaries: dict[str, dict] = {}

        gt_dir = self.run_dir / "ground-truth"
        start = time.perf_counter()
        records = self.score("ground truth", gt_dir, test, None)
        summaries["ground-truth"] = self.summarise(
            "ground-truth", "ground-truth", gt_dir, records, len(test_all), skipped_prep,
            {"wall_s": round(time.perf_counter() - start, 3)})

        for cls in models:
            model_dir = self.run_dir / cls.name
            start = time.perf_counter()
            try:
                adapter, train_key, log = self.fit_or_load(cls, model_dir)
            except Exception as err:  # noqa: BLE001 - one model failing must not stop the run
                self.echo(f"error: {cls.name}: training failed: {err}")
                self.problems.append(f"{cls.name}: training failed: {err}")
                continue
            keys, gen_failed = self.generate(adapter, train_key, model_dir, test)
            ok = [r for r in test if r.clip_id in keys]
            records = self.score(cls.name, model_dir, ok, keys, cls.needs_emotion)
            summaries[cls.name] = self.summarise(
                cls.name, "model", model_dir, records, len(test_all),
                {**skipped_prep, **gen_failed},
                {"adapter": adapter.config(), "paper": cls.paper, "budget": cfg.budget,
                 "train_key": train_key, "train_log": log,
                 "wall_s": round(time.perf_counter() - start, 3)})
            self.write_strip(model_dir, ok[:2], cls.needs_emotion)
        csv_path, md_path = write_leaderboard(cfg.dataset, Path(cfg.runs_dir),
                                              Path(cfg.leaderboard_dir))
        return RunResult(cfg.dataset, self.split.name, summaries, md_path, csv_path,
                         self.problems)

    def write_strip(self, model_dir: Path, refs: list[ClipRef], needs_emotion: bool = False
                    ) -> None:
        """PNG strips in the model's run folder: ``strip_<clip>.png``, generated frames (top)
        over ground-truth frames, every 5th frame; for a model that uses the emotion,
        ``strip_<clip>_emotions.png`` too: one row per requested emotion (``bench.EMOTIONS``
        order), the ground truth last. Each row is labelled on its left."""
        for ref in refs:
            with np.load(model_dir / "generated" / f"{ref.clip_id}.npz") as data:
                pred = data["frames"]
            gt = self.load_clip(ref).frames
            idx = np.arange(0, min(len(pred), len(gt)), 5)[:12]
            _save_png(model_dir / f"strip_{ref.clip_id}.png",
                      _strip([pred, gt], idx, ["generated", "real"]))
            if needs_emotion and self.emotion_sweep() and ref.emotion:
                rows = self.by_emotion(model_dir, ref, pred, True)
                _save_png(model_dir / f"strip_{ref.clip_id}_emotions.png",
                          _strip([rows[e] for e in EMOTIONS] + [gt], idx,
                                 [f"as {e}" for e in EMOTIONS] + [f"real ({ref.emotion})"]))


STRIP_LABEL_WIDTH = 84
"""Pixels of the white band on the left of a strip that names each row."""


def _strip(videos: list[np.ndarray], idx: np.ndarray, labels: list[str]) -> np.ndarray:
    """Frames ``idx`` of each video side by side, one video per row, each row named by its
    label on a white band on the left."""
    from PIL import Image, ImageDraw

    rows = []
    for video, label in zip(videos, labels, strict=True):
        row = np.concatenate(list(video[idx]), axis=1)
        band = Image.new("RGB", (STRIP_LABEL_WIDTH, row.shape[0]), "white")
        ImageDraw.Draw(band).text((4, row.shape[0] // 2 - 6), label, fill="black")
        rows.append(np.concatenate([np.asarray(band), row], axis=1))
    return np.concatenate(rows, axis=0)


def _save_png(path: Path, image: np.ndarray) -> None:
    """Write a PNG atomically (a temporary file renamed into place)."""
    from PIL import Image

    tmp = path.with_name(".tmp-" + path.name)
    Image.fromarray(image).save(tmp, format="PNG")
    os.replace(tmp, path)


def _npz_key(path: Path) -> str | None:
    """The ``key`` stored in a generated ``.npz``; None when missing or unreadable."""
    if not path.exists():
        return None
    try:
        with np.load(path) as data:
            return str(data["key"])
    except (OSError, ValueError, KeyError):
        return None  # unreadable: regenerate


def _size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path is not None else -1
    except OSError:
        return -1


def run(cfg: RunConfig, echo: Echo = print) -> RunResult:
    """Run ``cfg`` end to end and regenerate the dataset's leaderboard."""
    return Runner(cfg, echo).run()
