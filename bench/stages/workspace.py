"""Stage 1: what a run works on. `RunConfig` is everything a run depends on; `Workspace`
opens the dataset, applies the split, and prepares (preprocesses) split parts on demand.

Preprocessing is cached per clip by `bench.data.preprocess` (content-hash keys); a clip that
cannot be prepared is reported once and left out, with its reason kept for the summaries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.core import distributed
from bench.core.cache import default_cache_dir
from bench.core.devices import DEFAULT_TRAIN_THREADS, train_threads
from bench.data.clip import Clip, ClipRef
from bench.provenance import stable_hash

Echo = Callable[[str], None]


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class RunConfig:
    """Everything a run depends on."""

    dataset: str = "synthetic"
    root: Path | None = None  # None for ``synthetic``: the embedded corpus is built in the cache
    split: str | None = None  # None: the protocol's split for the dataset
    models: Sequence[str] = ("all",)  # registered names or ``module:Class``
    budget: str = "demo"
    metrics: Sequence[str] | None = None  # None: the protocol's metrics
    protocol: str = "default"  # a registered protocol (`bench protocols`)
    seed: int = 0
    runs_dir: Path = Path("runs")
    cache_dir: Path = field(default_factory=default_cache_dir)
    leaderboard_dir: Path = Path("leaderboards")
    device: str | None = None
    workers: int | None = None  # processes for preprocessing and scoring (None: one per core)
    executor: str = "local"  # where clips are scored: local processes or "ray" (issue 19)
    ray_address: str | None = None  # --executor ray: the cluster (None: a local instance)
    max_test_clips: int | None = None  # score only the first N test clips (quick looks)
    progress: bool = True
    openface: Path | None = None
    """``--openface``: a folder of OpenFace CSVs of the dataset's real videos
    (``<clip_id>.csv``), the AU labels of the models that learn from them (au-tcsan,
    `bench.adapters.au_tcsan`); None: those models label with the landmark rules."""


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


def progress(items, desc: str, enabled: bool, total: int | None = None):
    """``items`` with a progress bar naming the stage and what remains (when enabled);
    ``total``: the number of items when ``items`` has no length (a generator)."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="clip", leave=False, total=total)


def check_config(cfg: RunConfig) -> None:
    """ValueError, in one line, for a configuration no run can start from."""
    from bench.adapters import BUDGETS
    from bench.data.datasets import DATASETS

    if cfg.dataset not in DATASETS.names():
        raise ValueError(f"unknown dataset {cfg.dataset!r}; known: "
                         f"{', '.join(DATASETS.names())}")
    if cfg.budget not in BUDGETS:
        raise ValueError(f"unknown budget {cfg.budget!r}; choose one of {', '.join(BUDGETS)}")
    if cfg.openface is not None and not Path(cfg.openface).is_dir():
        raise ValueError(f"--openface {cfg.openface} is not a folder (expected OpenFace CSVs "
                         "of the dataset's videos, <clip_id>.csv)")
    if cfg.max_test_clips is not None and cfg.max_test_clips < 1:
        raise ValueError(f"--max-test-clips must be a positive number of clips, got "
                         f"{cfg.max_test_clips}")


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


class Workspace:
    """The dataset of a run, its split parts, and their prepared clips."""

    def __init__(self, cfg: RunConfig, echo: Echo = print) -> None:
        from bench.data.datasets import open_dataset
        from bench.data.preprocess import PrepParams
        from bench.data.splits import get_split
        from bench.protocols import get_protocol

        check_config(cfg)
        self.cfg = cfg
        self.echo = echo
        self.device = cfg.device or default_device()
        self.problems: list[str] = []
        self.unavailable_shown: dict[tuple[str, str], int] = {}
        """(metric, reason) -> clips whose line spelt it out, over all rows of the run."""
        self.protocol = get_protocol(cfg.protocol)
        self.protocol.check_dataset(cfg.dataset)
        self.root = resolve_root(cfg, echo)
        dataset = open_dataset(cfg.dataset, self.root)
        scan = dataset.scan()
        for line in scan.problems:
            echo(f"warning: {line}")
        self.problems += scan.problems
        if not scan.clips:
            raise ValueError(f"{cfg.dataset}: no clips found under {self.root}")
        split_name = cfg.split or self.protocol.split_for(cfg.dataset, dataset.default_split)
        self.split = get_split(cfg.dataset, split_name)
        self.parts: dict[str, list[ClipRef]] = self.split.apply(scan.clips)
        if cfg.max_test_clips is not None:
            self.parts["test"] = self.parts["test"][: cfg.max_test_clips]
        if not self.parts["test"]:
            raise ValueError(f"split {self.split.name} has no test clips under {self.root}")
        self.test_set = stable_hash(sorted(r.clip_id for r in self.parts["test"]))
        """Names the exact test clips (a ``--max-test-clips`` limit gives another test set):
        rows of different test sets are never ranked together."""
        self.dataset_hash = stable_hash(sorted(
            (c.clip_id, _size(c.video), _size(c.audio)) for c in scan.clips))
        self.params = PrepParams()
        self.prep_dir = Path(cfg.cache_dir) / "prepared"
        self.run_dir = Path(cfg.runs_dir) / cfg.dataset / self.split.name
        self.prepared: dict[str, list[ClipRef]] = {}
        self.failed: dict[str, str] = {}
        self._clip_keys: dict[str, str] = {}
        self._scoring_pool = None

    # ------------------------------------------------------------------------- workers
    def scoring_pool(self):
        """The run's scoring processes (`bench.stages.workers.ScoringPool`), or Ray actors
        with ``--executor ray``, started on first use and kept until `close`: ``--workers``,
        else one per core (one on a GPU)."""
        if self._scoring_pool is None:
            from bench.stages.executors import make_scoring_pool

            self._scoring_pool = make_scoring_pool(self.cfg.workers, self.device,
                                                   self.cfg.executor, self.cfg.ray_address)
        return self._scoring_pool

    def close(self) -> None:
        """Stop the scoring processes (a later stage starts them again when needed)."""
        if self._scoring_pool is not None:
            self._scoring_pool.close()
            self._scoring_pool = None

    # ------------------------------------------------------------------------- clips
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

    def lazy(self, refs: Sequence[ClipRef]) -> LazyClips:
        return LazyClips(refs, self.load_clip)

    def clip_key(self, ref: ClipRef) -> str:
        """The clip's preprocessing cache key (content hashes of its media), computed once per
        run: every stage keys its records by it, several times per clip."""
        from bench.data.preprocess import cache_key

        if ref.clip_id not in self._clip_keys:
            self._clip_keys[ref.clip_id] = cache_key(ref, self.params)
        return self._clip_keys[ref.clip_id]

    # ------------------------------------------------------------------------- metrics
    def metric_names(self) -> list[str]:
        """``--metrics`` when given, else the protocol's metrics that exist."""
        if self.cfg.metrics:
            return list(self.cfg.metrics)
        return self.protocol.available_metrics()

    def make_metrics(self, ground_truth: bool) -> list:
        """The run's metric objects (on the ground-truth row, those that apply to real video)."""
        from bench.metrics import MetricContext, get_metric

        context = MetricContext(dataset=self.cfg.dataset, cache_dir=Path(self.cfg.cache_dir))
        metrics = [get_metric(name, device=self.device, context=context)
                   for name in self.metric_names()]
        if any(m.judge_name for m in metrics):  # the judges trained for this run, and on whom
            keyed = MetricContext(dataset=self.cfg.dataset, cache_dir=Path(self.cfg.cache_dir),
                                  judge_identity=self.judge_identity(),
                                  judge_budget=self.cfg.budget,
                                  test_speakers=frozenset(r.speaker for r in self.parts["test"]))
            for metric in metrics:
                metric.context = keyed
        return [m for m in metrics if m.on_ground_truth or not ground_truth]

    # ------------------------------------------------------------------------- judges
    def judge_identity(self) -> str:
        """What a judge trained for this run depends on (`bench.judges.store.train_identity`):
        dataset, root hash, split and version, budget, seed, the train and validation clips'
        cache keys (a clip whose media cannot be read counts by its id); under torchrun also
        the world size, and the training thread count when it is not the default."""
        if getattr(self, "_judge_identity", None) is None:
            from bench.judges.store import train_identity

            self._judge_identity = train_identity(
                dataset=self.cfg.dataset, root_hash=self.dataset_hash, split=self.split.name,
                split_version=self.split.version, budget=self.cfg.budget, seed=self.cfg.seed,
                train_keys=[self._key_or_id(r) for r in self.parts["train"]],
                val_keys=[self._key_or_id(r) for r in self.parts.get("val", [])])
            facts = self.training_facts()
            if facts:  # judges trained by N ranks or on other threads are other judges
                self._judge_identity = stable_hash([self._judge_identity, facts])
        return self._judge_identity

    def training_facts(self) -> dict[str, int]:
        """What else a trained model or judge depends on, when it is not the default: the
        torchrun world size, the training thread count (`bench.core.devices.train_threads`).
        Empty for a single process on the default threads, so those keys stay as they were."""
        world = distributed.current(self.device)
        threads = train_threads()
        return {**({"world_size": world.size} if world.distributed else {}),
                **({"train_threads": threads} if threads != DEFAULT_TRAIN_THREADS else {})}

    def _key_or_id(self, ref: ClipRef) -> str:
        from bench.data.preprocess import PrepError

        try:
            return self.clip_key(ref)
        except PrepError:
            return f"unreadable:{ref.clip_id}"

    def emotion_sweep(self) -> bool:
        """Whether test clips are generated once per emotion (the EmoAcc protocol of seed 002:
        the requested emotion is the label): the protocol asks for it, EmoAcc is scored and the
        test clips carry labels."""
        return (self.protocol.emotion_sweep_enabled(self.metric_names())
                and any(r.emotion for r in self.parts["test"]))


def _size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path is not None else -1
    except OSError:
        return -1


def open_workspace(cfg: RunConfig, echo: Echo, parts: Sequence[str] | None = None
                   ) -> tuple[Workspace, distributed.World]:
    """The run's workspace and this process's torchrun world (`bench.core.distributed`).
    Under torchrun rank 0 builds the corpus and prepares ``parts`` (None: every part of the
    split) first, the other ranks then find them cached and print nothing; each rank works on
    its own GPU when the run is on CUDA. In a single process this is ``Workspace(cfg, echo)``
    (its stages prepare what they need)."""
    from dataclasses import replace

    world = distributed.current(cfg.device)
    cfg = replace(cfg, device=distributed.device_for(world, cfg.device))
    with distributed.rank_zero_first(world):
        ws = Workspace(cfg, echo if world.is_main else _silent)
        if world.distributed:
            for part in ws.parts if parts is None else parts:
                if part in ws.parts:
                    ws.prepare(part)
    return ws, world


def _silent(line: str) -> None:
    """The echo of ranks other than 0 (rank 0 speaks for the run)."""
