"""What an evaluation protocol is (SPEC 7; lm-evaluation-harness's tasks are the model).

A ``Protocol`` is one paper's evaluation setting written down as data: the datasets it is
defined on and the split of each, the metrics the paper reports (with the ones the harness
cannot compute yet named, not dropped), how each test clip is generated (identity image,
emotion), the models the paper compares, and which of the reported numbers
(``bench.reported``) belong beside it. A protocol module holds one ``PROTOCOL`` and no logic;
the logic is here.

Fields left ``None`` mean "whatever the harness has": every registered dataset with its default
split, every registered metric, every registered model, every reported row of the dataset. The
``default`` protocol is made of those, which is what ``bench run`` does without a protocol.

What a runner calls: ``split_for(dataset, default_split)``, ``available_metrics()``,
``emotion_sweep_enabled(metric_names)``, ``identity_rule`` / ``identity_index(n_frames)``,
``run_models(registered_model_names)``, ``reported_for(dataset)`` and ``as_dict(dataset)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.reported import Reported, load_reported

IDENTITY_RULES: dict[str, str] = {
    "first-frame": "the first aligned frame of each test clip",
}
"""Identity-image rules a runner knows how to apply: name -> what it means."""

LOWER_BOUND = "still-image"
"""The harness' lower bound, shown beside every paper's models (SPEC 6)."""


@dataclass(frozen=True)
class Paper:
    """Where a protocol comes from."""

    seed: str  # "seed003": the source id used by ``bench.reported``
    citation: str
    where: str  # the sections and tables the protocol is taken from


@dataclass(frozen=True)
class Missing:
    """A metric (or anything else) the paper uses that the harness does not have yet."""

    name: str
    reason: str


@dataclass(frozen=True)
class Generation:
    """How each test clip is generated.

    ``identity`` names a rule in ``IDENTITY_RULES``; ``identity_source`` says what the paper
    does, or that the paper is silent and the rule is our choice. Each test clip is generated
    with its own emotion label (None where it has none). ``emotion_sweep``: whether each
    labelled test clip is also generated once per other emotion when EmoAcc is scored (the
    seed 002 EmoAcc protocol: the requested emotion is the label); ``emotion_source`` says why.
    """

    identity: str = "first-frame"
    identity_source: str = ""
    emotion_sweep: bool = False
    emotion_source: str = ""

    def identity_index(self, n_frames: int) -> int:
        """Index of the identity image among a test clip's ``n_frames`` aligned frames."""
        if n_frames < 1:
            raise ValueError("a clip without frames has no identity image")
        if self.identity == "first-frame":
            return 0
        raise ValueError(f"unknown identity rule {self.identity!r}")

    def sweeps(self, metric_names: Iterable[str], labelled: bool = True) -> bool:
        """Whether test clips are generated once per emotion, given the metrics scored and
        whether the test clips carry emotion labels."""
        return self.emotion_sweep and labelled and "emoacc" in set(metric_names)

    def describe(self) -> str:
        text = f"identity image: {IDENTITY_RULES[self.identity]}"
        if self.identity_source:
            text += f" ({self.identity_source})"
        sweep = ("yes, when emoacc is scored: every labelled test clip once per emotion"
                 if self.emotion_sweep else "no")
        text += f"; emotion: the clip's own label; emotion sweep: {sweep}"
        if self.emotion_source:
            text += f" ({self.emotion_source})"
        return text


@dataclass(frozen=True)
class ReportedRows:
    """Which reported rows belong beside a protocol: a filter over ``bench.reported``.

    ``source`` None: any paper; ``tables`` None: any table of it. The dataset is the run's.
    """

    source: str | None = None
    tables: tuple[str, ...] | None = None

    def select(self, dataset: str, rows: Iterable[Reported] | None = None) -> list[Reported]:
        rows = load_reported() if rows is None else rows
        return [r for r in rows if r.dataset == dataset
                and (self.source is None or r.source == self.source)
                and (self.tables is None or r.table in self.tables)]

    def describe(self) -> str:
        if self.source is None:
            return "every reported row of the dataset"
        tables = ", ".join(self.tables) if self.tables is not None else "every table"
        return f"{self.source} {tables}"


@dataclass(frozen=True)
class Protocol:
    """One evaluation setting; see the module docstring. ``version`` goes up whenever anything
    that changes a number does (split, metrics, generation rule)."""

    name: str
    version: int
    description: str
    paper: Paper | None = None
    splits: tuple[tuple[str, str], ...] | None = None  # (dataset, split); None: every dataset
    metrics: tuple[str, ...] | None = None  # registered metric names; None: every one
    missing_metrics: tuple[Missing, ...] = ()
    generation: Generation = field(default_factory=Generation)
    models: tuple[str, ...] | None = None  # adapter names, registered or not yet; None: every one
    baselines: tuple[str, ...] = (LOWER_BOUND,)  # harness models run beside the paper's
    reported: ReportedRows = field(default_factory=ReportedRows)
    notes: tuple[str, ...] = ()  # where we differ from the paper, and why

    def __post_init__(self) -> None:
        if self.generation.identity not in IDENTITY_RULES:
            raise ValueError(f"protocol {self.name}: unknown identity rule "
                             f"{self.generation.identity!r} (known: {', '.join(IDENTITY_RULES)})")
        if self.splits is not None:
            datasets = [d for d, _ in self.splits]
            if len(set(datasets)) != len(datasets):
                raise ValueError(f"protocol {self.name}: a dataset is listed twice")
        if self.metrics is not None:
            clash = {m.name for m in self.missing_metrics} & set(self.metrics)
            if clash:
                raise ValueError(f"protocol {self.name}: {sorted(clash)} both scored and missing")

    # ----------------------------------------------------------------------------- datasets
    def datasets(self) -> tuple[str, ...]:
        """The datasets the protocol is defined on."""
        if self.splits is None:
            from bench.data.datasets import DATASETS

            return tuple(DATASETS.names())
        return tuple(d for d, _ in self.splits)

    def check_dataset(self, dataset: str) -> None:
        """ValueError, in one line, when the protocol is not defined on ``dataset``."""
        if dataset not in self.datasets():
            raise ValueError(f"protocol {self.name} is not defined on dataset {dataset!r} "
                             f"(its datasets: {', '.join(self.datasets())})")

    def split_for(self, dataset: str, default_split: str | None = None) -> str:
        """The split name the protocol uses on ``dataset`` (``bench.data.splits``). A protocol
        of every dataset (``splits=None``) uses the dataset's default split: ``default_split``
        when the caller has it, else the registered dataset's."""
        self.check_dataset(dataset)
        if self.splits is None:
            if default_split is not None:
                return default_split
            from bench.data.datasets import DATASETS

            return DATASETS.get(dataset).default_split
        return dict(self.splits)[dataset]

    # ------------------------------------------------------------------------------ metrics
    def available_metrics(self) -> list[str]:
        """The registered metrics the protocol scores, in its order (``metrics=None``: every
        registered metric). ``missing_metrics`` lists what the paper reports beyond them."""
        from bench.metrics import METRICS

        if self.metrics is None:
            return METRICS.names()
        return [m for m in self.metrics if m in METRICS]

    def emotion_sweep_enabled(self, metric_names: Iterable[str] | None = None,
                              labelled: bool = True) -> bool:
        """Whether each labelled test clip is generated once per emotion: the protocol asks
        for it and ``emoacc`` is among ``metric_names`` (default: the protocol's metrics)."""
        names = self.available_metrics() if metric_names is None else metric_names
        return self.generation.sweeps(names, labelled)

    # ----------------------------------------------------------------------------- generation
    @property
    def identity_rule(self) -> str:
        """The identity-image rule's name (``IDENTITY_RULES``), e.g. for generation keys."""
        return self.generation.identity

    def identity_index(self, n_frames: int) -> int:
        """Index of the identity image among a test clip's ``n_frames`` aligned frames."""
        return self.generation.identity_index(n_frames)

    # ------------------------------------------------------------------------------- models
    # The adapter registry sits above this layer: callers pass its names in
    # (``bench.adapters.model_names()``).
    def model_names(self, registered: Iterable[str]) -> list[str]:
        """The models the paper compares, whether the harness has them yet or not (for
        ``models=None``: every one of ``registered``)."""
        if self.models is None:
            return list(registered)
        return list(self.models)

    def available_models(self, registered: Iterable[str]) -> list[str]:
        """The paper's models that are among ``registered``, in the protocol's order."""
        names = list(registered)
        known = set(names)
        return [m for m in self.model_names(names) if m in known]

    def missing_models(self, registered: Iterable[str]) -> list[str]:
        """The paper's models the harness does not have yet."""
        names = list(registered)
        known = set(names)
        return [m for m in self.model_names(names) if m not in known]

    def run_models(self, registered: Iterable[str]) -> list[str]:
        """What a run of the protocol trains and scores: the harness' baselines, then the
        paper's available models (each once)."""
        registered = list(registered)
        out: list[str] = []
        for m in [*self.baselines, *self.available_models(registered)]:
            if m not in out:
                out.append(m)
        return out

    # ----------------------------------------------------------------------------- reported
    def reported_for(self, dataset: str) -> list[Reported]:
        """The reported values that belong beside the protocol's results on ``dataset``."""
        self.check_dataset(dataset)
        return self.reported.select(dataset)

    # ------------------------------------------------------------------------- bookkeeping
    def check(self) -> list[str]:
        """Problems with the protocol against today's registries (empty when none): splits that
        do not exist, metrics that are not registered, missing metrics that now are."""
        from bench.data.splits import get_split
        from bench.metrics import METRICS
        from bench.registry import UnknownName

        problems = []
        for dataset in self.datasets():
            try:
                get_split(dataset, self.split_for(dataset))
            except (UnknownName, ValueError) as err:
                problems.append(f"{self.name}: {err}")
        for metric in self.metrics or ():
            if metric not in METRICS:
                problems.append(f"{self.name}: metric {metric!r} is not registered; list it "
                                f"under missing_metrics with a reason")
        for missing in self.missing_metrics:
            if missing.name in METRICS:
                problems.append(f"{self.name}: metric {missing.name!r} is registered now; move "
                                f"it from missing_metrics to metrics")
        return problems

    def as_dict(self, dataset: str | None = None) -> dict:
        """Everything that defines the protocol, for a run's metadata (on ``dataset``: with
        the split and metrics resolved)."""
        out = {
            "name": self.name, "version": self.version, "description": self.description,
            "paper": None if self.paper is None else {
                "seed": self.paper.seed, "citation": self.paper.citation,
                "where": self.paper.where},
            "splits": None if self.splits is None else dict(self.splits),
            "metrics": None if self.metrics is None else list(self.metrics),
            "missing_metrics": {m.name: m.reason for m in self.missing_metrics},
            "generation": {"identity": self.generation.identity,
                           "identity_source": self.generation.identity_source,
                           "emotion_sweep": self.generation.emotion_sweep,
                           "emotion_source": self.generation.emotion_source},
            "models": None if self.models is None else list(self.models),
            "baselines": list(self.baselines),
            "reported": {"source": self.reported.source,
                         "tables": None if self.reported.tables is None
                         else list(self.reported.tables)},
            "notes": list(self.notes),
        }
        if dataset is not None:
            out["dataset"] = dataset
            out["split"] = self.split_for(dataset)
            out["metric_names"] = self.available_metrics()
        return out

    def describe(self, registered_models: Iterable[str]) -> list[str]:
        """The lines ``bench protocols`` prints for this protocol, given the registered
        model names."""
        registered = list(registered_models)
        lines = [f"{self.name} (v{self.version}): {self.description}"]
        if self.paper is not None:
            lines.append(f"  paper: {self.paper.seed}, {self.paper.citation} "
                         f"({self.paper.where})")
        if self.splits is None:
            splits = ", ".join(f"{d} ({self.split_for(d)})" for d in self.datasets())
            lines.append(f"  datasets: every dataset, its default split: {splits}")
        else:
            lines.append("  datasets: " + ", ".join(f"{d} (split {s})" for d, s in self.splits))
        every = "every registered metric: " if self.metrics is None else ""
        lines.append(f"  metrics: {every}{', '.join(self.available_metrics())}")
        for m in self.missing_metrics:
            lines.append(f"  missing metric: {m.name}: {m.reason}")
        every = "every registered model: " if self.models is None else ""
        available = self.available_models(registered)
        models = f"  models: {every}{', '.join(available) or 'none yet'}"
        extra = [b for b in self.baselines if b not in available]
        if extra:
            models += f" (run beside them: {', '.join(extra)})"
        lines.append(models)
        missing = self.missing_models(registered)
        if missing:
            lines.append(f"  models not yet available: {', '.join(missing)}")
        lines.append(f"  generation: {self.generation.describe()}")
        counts = {d: len(self.reported.select(d)) for d in self.datasets()}
        count_text = ", ".join(f"{d} {n}" for d, n in counts.items() if n) or "none yet"
        lines.append(f"  reported: {self.reported.describe()} (rows: {count_text})")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return lines
