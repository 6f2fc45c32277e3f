"""Generator adapters: the registry, entry points and ``module:Class`` loading (SPEC 6).

Add a model: write ``bench/adapters/<name>.py`` with an ``Adapter`` subclass and one line
below. Outside packages register through the ``bench.adapters`` entry-point group
(``name = "package.module:Class"``); ``--adapter package.module:Class`` loads one directly.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from bench.adapters.base import BUDGETS, Adapter
from bench.registry import Registry, import_object

ADAPTERS = Registry("model")
ADAPTERS.add("still-image", "bench.adapters.still_image:StillImage")
ADAPTERS.add("eskimez-emotion", "bench.adapters.eskimez_emotion:EskimezEmotion")
ADAPTERS.add("deformable-emotion", "bench.adapters.deformable_emotion:DeformableEmotion")
ADAPTERS.add("vougioukas", "bench.adapters.vougioukas:Vougioukas")
ADAPTERS.add("static-gan", "bench.adapters.static_gan:StaticGAN")
ADAPTERS.add("speech2vid", "bench.adapters.speech2vid:Speech2Vid")
ADAPTERS.add("wav2lip", "bench.adapters.wav2lip:Wav2Lip")
ADAPTERS.add("emotion-wav2lip", "bench.adapters.emotion_wav2lip:EmotionWav2Lip")
ADAPTERS.add("ventriloquist", "bench.adapters.ventriloquist:Ventriloquist")
ADAPTERS.add("au-tcsan", "bench.adapters.au_tcsan:AUTCSAN")

_ENTRY_POINTS_LOADED = False


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for ep in entry_points(group="bench.adapters"):
        if ep.name not in ADAPTERS:
            ADAPTERS.add(ep.name, ep.value)


def model_names() -> list[str]:
    """Every registered model name, entry points included."""
    _load_entry_points()
    return ADAPTERS.names()


def adapter_class(name_or_target: str) -> type[Adapter]:
    """The adapter class for a registered name or a ``module:Class`` string."""
    _load_entry_points()
    if ":" in name_or_target and name_or_target not in ADAPTERS:
        cls = import_object(name_or_target)
    else:
        cls = ADAPTERS.get(name_or_target)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise TypeError(f"{name_or_target} is not a bench.adapters.Adapter subclass")
    if not cls.name:
        cls.name = name_or_target.rsplit(":", 1)[-1]
    return cls


__all__ = ["ADAPTERS", "BUDGETS", "Adapter", "adapter_class", "model_names"]
