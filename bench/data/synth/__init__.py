"""The embedded synthetic talking-face corpus (SPEC 4.5).

Real speech (eSpeak NG through ctypes, ``tts``), faces morphed from two photographs that ship
with scikit-image and matplotlib (``faces``), animated by a thin-plate-spline warp of their
own 68 landmarks (``warp``, ``motion``, ``render``), written in the native layout or those of
the CREMA-D, GRID and TCD-TIMIT releases, with the ground truth of what was synthesised beside
each clip (``corpus``).
"""

from bench.data.synth.corpus import LAYOUTS, SENTENCES, build_corpus, plan_clips

__all__ = ["LAYOUTS", "SENTENCES", "build_corpus", "plan_clips"]
