"""Reimplemented generators, one paper per file (plain ``torch.nn.Module`` + losses + step):
:mod:`~bench.generators.vougioukas2019` and its static baseline
:mod:`~bench.generators.static_gan` (seed 003), :mod:`~bench.generators.speech2vid` (Chung et
al. 2017), :mod:`~bench.generators.eskimez2021` and :mod:`~bench.generators.deformable_emotion`
(seed 000).

Pieces more than one of them uses: :mod:`~bench.generators.images` (tensor <-> uint8 frames,
resizing), :mod:`~bench.generators.face_regions` (mouth box, lower half),
:mod:`~bench.generators.audio_frames` (audio and MFCC windows per video frame),
:mod:`~bench.generators.clip_banks` (training clips in memory, samplers),
:mod:`~bench.generators.perceptual` (VGG-19 loss), :mod:`~bench.generators.blocks` and
:mod:`~bench.generators.frame_gan` (seed 003's shared blocks, losses, generation). The step
loop, learning-rate schedules and budget lookup are :mod:`bench.core.training`, shared with the
judges.

Conventions (all generators):

- images are float tensors ``(N, 3, H, W)`` in ``[-1, 1]`` (``images.to_tensor`` /
  ``images.to_uint8``);
- frame ``t`` of a clip covers audio samples ``[640 t, 640 (t + 1))`` (SPEC 4.1); the audio
  window of frame ``t`` is centred on that span (``audio_frames``);
- prepared clips are talkbench's aligned crops (:mod:`bench.data.preprocess`): the canonical
  face sits at the same place in every frame, so the mouth region is a fixed box
  (``face_regions``).
"""
