"""talkbench: evaluation and reproduction harness for speech-driven talking-face generation.

Importing ``bench`` is cheap: the Python API below is loaded on first use.

- ``bench.score_folders(pred_dir, gt_dir, metrics=..., ...) -> pandas.DataFrame``: score a
  folder of generated videos against the real ones (`bench.folder_scoring.score_folders`).
"""

__version__ = "0.1.0"

EMOTIONS: tuple[str, ...] = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
"""The six CREMA-D emotion codes, the label set used across the harness."""

VIDEO_FPS = 25
AUDIO_RATE = 16_000
SAMPLES_PER_FRAME = AUDIO_RATE // VIDEO_FPS  # 640


def __getattr__(name: str):
    """The Python API, imported on first use (module ``__getattr__``, PEP 562)."""
    if name == "score_folders":
        from bench.folder_scoring import score_folders

        return score_folders
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
