"""Stage 4: every test clip generated from (identity image, audio, emotion).

``generated/<clip>.npz`` holds the frames that are scored, keyed by the training key, the
clip's cache key, the requested emotion and the identity rule; ``videos/<clip>.mp4`` is the
same video with its sound, for people to watch. Under the EmoAcc protocol of seed 002 (the
emotion sweep) a model that uses the emotion also generates each clip once per other emotion,
``generated/<clip>@<EMOTION>.npz``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import EMOTIONS, SAMPLES_PER_FRAME
from bench.adapters.base import check_generated
from bench.core import cache
from bench.data.clip import Clip, ClipRef
from bench.protocols import Protocol
from bench.provenance import stable_hash
from bench.stages.train import Trained
from bench.stages.workspace import Workspace, progress


@dataclass
class Generated:
    """The generation keys of the clips that were generated, and why the others were not."""

    keys: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def generated_path(model_dir: Path, clip_id: str, emotion: str | None = None) -> Path:
    """Where a generated clip is cached (``emotion``: one of the sweep's other emotions)."""
    name = clip_id if emotion is None else f"{clip_id}@{emotion}"
    return Path(model_dir) / "generated" / f"{name}.npz"


def generation_key(ws: Workspace, trained: Trained, ref: ClipRef, emotion: str | None) -> str:
    """Everything a generated clip depends on."""
    return stable_hash([trained.key, ws.clip_key(ref), emotion, ws.protocol.identity_rule])


def identity_image(protocol: Protocol, clip: Clip) -> np.ndarray:
    """The identity image ``protocol`` gives the generator (and ACD) for a test clip."""
    return clip.frames[protocol.identity_index(len(clip.frames))]


def generate_clips(ws: Workspace, trained: Trained, model_dir: Path,
                   refs: list[ClipRef]) -> Generated:
    """Generate every clip of ``refs`` once (cached), then the emotion sweep when it applies.
    A clip the model fails on is reported and left out; the others go on."""
    adapter = trained.adapter
    out = Generated()
    for ref in progress(refs, f"{adapter.name}: generate", ws.cfg.progress):
        key = generation_key(ws, trained, ref, ref.emotion)
        path = generated_path(model_dir, ref.clip_id)
        if cache.npz_key(path, ws.echo) == key:
            out.keys[ref.clip_id] = key
            continue
        clip = ws.load_clip(ref)
        identity = identity_image(ws.protocol, clip)
        try:
            frames = adapter.generate(identity, clip.audio, clip.emotion)
            check_generated(frames, identity, clip.audio)
        except Exception as err:  # noqa: BLE001 - one model's failure on one clip
            out.failures[ref.clip_id] = f"{ref.clip_id}: generation failed ({err})"
            ws.echo(f"skipped: {out.failures[ref.clip_id]}")
            continue
        cache.write_npz(path, key, frames=frames)
        from bench.data.media import write_video

        write_video(model_dir / "videos" / f"{ref.clip_id}.mp4", frames, clip.audio)
        out.keys[ref.clip_id] = key
    if ws.emotion_sweep() and adapter.needs_emotion:
        swept = [r for r in refs if r.clip_id in out.keys and r.emotion]
        for ref in progress(swept, f"{adapter.name}: generate per emotion", ws.cfg.progress):
            try:
                generate_other_emotions(ws, trained, model_dir, ref)
            except Exception as err:  # noqa: BLE001 - one model's failure on one clip
                out.failures[ref.clip_id] = f"{ref.clip_id}: generation failed ({err})"
                ws.echo(f"skipped: {out.failures[ref.clip_id]}")
                out.keys.pop(ref.clip_id)
    return out


def generate_other_emotions(ws: Workspace, trained: Trained, model_dir: Path,
                            ref: ClipRef) -> None:
    """The clip generated with each emotion other than its own (for EmoAcc)."""
    clip = None
    for emotion in EMOTIONS:
        if emotion == ref.emotion:
            continue
        key = generation_key(ws, trained, ref, emotion)
        path = generated_path(model_dir, ref.clip_id, emotion)
        if cache.npz_key(path, ws.echo) == key:
            continue
        clip = clip or ws.load_clip(ref)
        identity = identity_image(ws.protocol, clip)
        frames = trained.adapter.generate(identity, clip.audio, emotion)
        check_generated(frames, identity, clip.audio)
        cache.write_npz(path, key, frames=frames)


def load_generated(model_dir: Path, clip_id: str, emotion: str | None = None) -> np.ndarray:
    """The generated frames of a clip (that the stage above made)."""
    with np.load(generated_path(model_dir, clip_id, emotion)) as data:
        return data["frames"]


def frames_by_emotion(model_dir: Path, ref: ClipRef, pred: np.ndarray, needs_emotion: bool
                      ) -> dict[str, np.ndarray]:
    """Requested emotion -> generated frames of one clip (EmoAcc). A model that ignores the
    emotion made the same video for every request, so its one video stands for all."""
    out = {ref.emotion: pred}
    for emotion in EMOTIONS:
        if emotion != ref.emotion:
            out[emotion] = (load_generated(model_dir, ref.clip_id, emotion) if needs_emotion
                            else pred)
    return out


# ---------------------------------------------------------------------------------------------
# `bench generate`: one photo and one speech file, checked as the runner checks its clips


def identity_from_photo(path: Path, params=None) -> np.ndarray:
    """The face of a photo aligned exactly as the runner aligns test clips (the crop the models
    were trained on); ValueError with one line when the file is not an image or holds no face."""
    from PIL import Image, UnidentifiedImageError

    from bench.data.preprocess import PrepError, PrepParams, align_clip

    try:
        with Image.open(path) as image:
            picture = np.asarray(image.convert("RGB"))
    except (OSError, UnidentifiedImageError) as err:
        raise ValueError(f"{path}: not an image ({err})") from None
    height, width = picture.shape[:2]
    if min(height, width) < MIN_PHOTO_SIDE:
        raise ValueError(f"{path}: {width}x{height} pixels is too small to hold a face "
                         f"(at least {MIN_PHOTO_SIDE} pixels a side)")
    still = Clip(speaker="photo", clip_id=Path(path).name, frames=picture[None],
                 audio=np.zeros(SAMPLES_PER_FRAME, np.float32))
    try:
        return align_clip(still, params or PrepParams()).frames[0]
    except PrepError:
        raise ValueError(f"{path}: no face found in the image") from None


MIN_PHOTO_SIDE = 32
"""Smallest photo side (pixels) in which the face detector can find a face."""


def speech_from_file(path: Path) -> np.ndarray:
    """Mono 16 kHz speech from an audio (or video) file, checked as `bench prepare` checks a
    clip's audio: unreadable, truncated, missing or silent audio is a ValueError in one line."""
    from bench.core.audio import silence_reason
    from bench.data.media import MediaError, read_media

    try:
        speech = read_media(path, video=False).audio
    except MediaError as err:
        raise ValueError(str(err)) from None
    if speech is None or speech.size == 0:
        raise ValueError(f"{path}: no audio track")
    if (silent := silence_reason(speech)) is not None:
        raise ValueError(f"{path}: {silent}")
    return speech
