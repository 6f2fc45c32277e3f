"""talkbench: evaluation and reproduction harness for speech-driven talking-face generation."""

__version__ = "0.1.0"

EMOTIONS: tuple[str, ...] = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
"""The six CREMA-D emotion codes, the label set used across the harness."""

VIDEO_FPS = 25
AUDIO_RATE = 16_000
SAMPLES_PER_FRAME = AUDIO_RATE // VIDEO_FPS  # 640
