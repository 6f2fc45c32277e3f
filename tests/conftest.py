"""Shared fixtures: tiny synthetic corpora (SPEC 4.5) built once per test session.

Both corpora use the same parameters (``SYNTH_TINY``): 4 speakers x 2 clips of the three
shortest CREMA-D sentences, seed 0, built in this process. ``synth_native_root`` is the
native layout (``corpus.json``, ``spkNN/*.mp4`` + truth JSON); ``synth_crema_root`` is the
CREMA-D release layout (``VideoFlash/*.flv``, ``AudioWAV/*.wav``, ``synth_truth/*.json``)
with actors 1015, 1020, 1011 and 1001. Treat both as read-only: copy them before changing
anything.

Tests marked ``slow`` are skipped unless selected with ``-m slow`` (or an expression naming
it).
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(config, items) -> None:
    """Tests marked ``slow`` run only when ``-m`` names them (as pyproject's marker says)."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


SYNTH_TINY: dict = {"seed": 0, "n_speakers": 4, "clips_per_speaker": 2,
                    "sentences": ("IEO", "DFA", "TSI")}
"""Parameters of the session corpora (pass to ``build_corpus`` with ``layout``)."""


def _build(root: Path, layout: str) -> Path:
    from bench.data.synth import build_corpus

    return build_corpus(root, layout=layout, workers=1, progress=False, **SYNTH_TINY)


@pytest.fixture(scope="session")
def synth_tiny_params() -> dict:
    """The parameters the session corpora were built with."""
    return dict(SYNTH_TINY)


@pytest.fixture(scope="session")
def synth_native_root(tmp_path_factory) -> Path:
    """A tiny synthetic corpus in the native layout (8 clips, 25 fps mp4)."""
    return _build(tmp_path_factory.mktemp("synth_native"), "native")


@pytest.fixture(scope="session")
def synth_crema_root(tmp_path_factory) -> Path:
    """The same tiny corpus in the CREMA-D release layout (8 clips, 30 fps flv + wav)."""
    return _build(tmp_path_factory.mktemp("synth_crema"), "crema-d")
