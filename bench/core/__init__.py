"""Low-level pieces every layer above may share. ``bench.core`` imports nothing of bench but
the package's constants (``bench.EMOTIONS``, ``bench.SAMPLES_PER_FRAME``, ...) and the other
core modules (``bench.fileio``, ``bench.stats``, ``bench.provenance``, ``bench.registry``,
``bench.results``); ``tests/test_import_layers.py`` holds the whole layer table.

One concern per module:

- :mod:`~bench.core.audio`: MFCCs as python_speech_features computes them;
- :mod:`~bench.core.sync_windows`: SyncNet's lip and MFCC windows (LSE and its judge);
- :mod:`~bench.core.face_template`: the canonical face and similarity transforms onto it;
- :mod:`~bench.core.landmarks`: 68-point landmarks of a video (dlib, detect then track);
- :mod:`~bench.core.dlib_models`: dlib and its model files, loaded lazily;
- :mod:`~bench.core.weights`: where user-supplied weights files live, their sha256;
- :mod:`~bench.core.devices`: which torch device;
- :mod:`~bench.core.training`: the step loop, learning-rate schedules and budget lookup that
  generators and judges share;
- :mod:`~bench.core.cache`: the content-addressed cache of run stages.
"""
