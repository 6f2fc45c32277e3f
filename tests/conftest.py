"""Shared fixtures: tiny synthetic corpora (SPEC 4.5) built once per test session.

Both corpora use the same parameters (``SYNTH_TINY``): 4 speakers x 2 clips of the three
shortest CREMA-D sentences, seed 0, built in this process. ``synth_native_root`` is the
native layout (``corpus.json``, ``spkNN/*.mp4`` + truth JSON); ``synth_crema_root`` is the
CREMA-D release layout (``VideoFlash/*.flv``, ``AudioWAV/*.wav``, ``synth_truth/*.json``)
with actors 1015, 1020, 1011 and 1001. Treat both as read-only: copy them before changing
anything.

``synth_heldout`` is a second, wider corpus for the default-run checks that a trained judge
learned (issue 17): 16 speakers x 3 clips (every emotion 8 times), seed 1, prepared. Identity
variety is what lets a small judge generalise: on 6 speakers x 6 clips the emotion and AU
judges fitted their speakers and were at chance on unseen ones, on 12 x 3 they were not. The
LipNet check reads its three CREMA-D sentences.

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


SYNTH_HELDOUT: dict = {"seed": 1, "n_speakers": 16, "clips_per_speaker": 3,
                       "sentences": ("IEO", "DFA", "TSI")}
"""Parameters of the held-out corpus (``synth_heldout``)."""


@pytest.fixture(scope="session")
def synth_heldout(tmp_path_factory) -> dict[str, list]:
    """The held-out corpus, native layout, prepared (aligned crops and dlib landmarks),
    built once per session (about 35 s on two cores); read-only. ``train``: the (ref, clip)
    pairs of the first 12 speakers (36 clips); ``test``: those of the last 4 (12 clips, two
    per emotion), speakers no judge trained here has seen."""
    pytest.importorskip("dlib")
    from bench.data.preprocess import PrepParams, load_prepared, prepare_all
    from bench.data.synth import build_corpus
    from bench.data.synthetic import SyntheticDataset

    base = tmp_path_factory.mktemp("synth_heldout")
    root = build_corpus(base / "corpus", layout="native", workers=1, progress=False,
                        **SYNTH_HELDOUT)
    refs = SyntheticDataset(root).scan().clips
    report = prepare_all(refs, base / "prepared", PrepParams(), workers=2, progress=False)
    assert not report.failed
    pairs = [(ref, load_prepared(ref, base / "prepared")) for ref in refs]
    test_speakers = sorted({ref.speaker for ref in refs})[-4:]
    return {"train": [p for p in pairs if p[0].speaker not in test_speakers],
            "test": [p for p in pairs if p[0].speaker in test_speakers]}
