"""The ``default`` protocol: exactly what ``bench run`` does without one.

Every registered dataset with its default split (``Dataset.default_split``), every registered
metric, every registered model, the first aligned frame of each test clip as the identity
image, the clip's own emotion, the per-emotion sweep when ``emoacc`` is among the metrics and
the test clips carry labels, and every reported row of the dataset (``reported_for``).
"""

from bench.protocols.base import Generation, Protocol, ReportedRows

PROTOCOL = Protocol(
    name="default",
    version=1,
    description=("the harness' own run: every metric and model on the dataset's default split, "
                 "beside every reported number for the dataset"),
    generation=Generation(
        identity="first-frame",
        identity_source="the harness' rule for every dataset",
        emotion_sweep=True),
    baselines=(),
    reported=ReportedRows(),
)
