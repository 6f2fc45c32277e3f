"""The dlib model files shipped by ``face-recognition-models`` and lazily loaded dlib objects.

``face_recognition_models`` is never imported (its ``__init__`` needs ``pkg_resources``);
its folder is located with ``importlib.util.find_spec``. dlib itself is imported only when a
model is first asked for, and each process builds its own objects (they cannot be pickled).
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any


class ModelMissing(RuntimeError):
    """A dlib model or dlib itself is not installed; the message says what to install."""


_INSTALL_HINT = "pip install dlib-bin face-recognition-models"


def models_dir() -> Path:
    """Folder holding the ``.dat`` files of the ``face-recognition-models`` package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(f"the face-recognition-models package is not installed "
                           f"({_INSTALL_HINT})")
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    if not folder.is_dir():
        raise ModelMissing(f"face-recognition-models has no models folder at {folder}")
    return folder


def _model_path(name: str) -> Path:
    path = models_dir() / name
    if not path.is_file():
        raise ModelMissing(f"dlib model file {name} is missing from {path.parent}")
    return path


def shape_predictor_68_path() -> Path:
    """68-point landmark model (iBUG 300-W layout)."""
    return _model_path("shape_predictor_68_face_landmarks.dat")


def shape_predictor_5_path() -> Path:
    """5-point landmark model (eye corners and nose base)."""
    return _model_path("shape_predictor_5_face_landmarks.dat")


def face_recognition_path() -> Path:
    """ResNet face-embedding model (128-d descriptors), for identity metrics such as ACD."""
    return _model_path("dlib_face_recognition_resnet_model_v1.dat")


def cnn_face_detector_path() -> Path:
    """MMOD CNN face detector (slow on CPU; the HOG detector is the default)."""
    return _model_path("mmod_human_face_detector.dat")


def import_dlib() -> Any:
    """Import dlib, with an install hint when it is absent."""
    try:
        import dlib
    except ImportError as err:
        raise ModelMissing(f"dlib is not installed ({_INSTALL_HINT})") from err
    return dlib


@functools.cache
def frontal_face_detector() -> Any:
    """dlib's HOG + linear SVM frontal face detector (one per process)."""
    return import_dlib().get_frontal_face_detector()


@functools.cache
def shape_predictor_68() -> Any:
    """dlib's 68-point shape predictor (one per process)."""
    path = shape_predictor_68_path()
    return import_dlib().shape_predictor(str(path))


@functools.cache
def face_recognition_model() -> Any:
    """dlib's face-recognition ResNet (one per process)."""
    path = face_recognition_path()
    return import_dlib().face_recognition_model_v1(str(path))
