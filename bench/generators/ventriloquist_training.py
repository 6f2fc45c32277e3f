"""Training of Ventriloquist-Net (seed 001, Sect. 2.1-2.3 and 3.1;
:mod:`bench.generators.ventriloquist` has the networks, losses and every choice).

Three stages, each a :func:`~bench.core.training.run_steps` loop of its own step count:

1. ``ventriloquist: emotion nets`` (Sect. 2.1, 3.1): Sp2Emo with cross entropy on the
   emotion labels of random 1 s windows; from step ``exp2emo_start`` on, Exp2Emo with the
   cosine embedding loss between its probabilities on the window's real landmark deformations
   and Sp2Emo's (detached) probabilities on its speech (the code's order: Sp2Emo's step first,
   then Exp2Emo's). Step decays of both learning rates. Clips without an emotion label are
   left out; with none at all the stage is skipped (and ``L_emotion`` with it) and the log
   says so. Afterwards both are frozen, and the neutral emotion embedding (mean ``q_emo`` of
   the neutral training windows) is stored in the generator.
2. ``ventriloquist: landmark GAN`` (Sect. 2.2-2.3): per step one G update with
   ``0.5 L_adv + 0.5 L_emotion + 10 L_mouth + 10 L_energy``, then one D update on the real
   and the (detached) generated deformations (code's order).
3. ``ventriloquist: renderer``: :func:`bench.generators.landmark_renderer.train_renderer` on
   the train split's frames and landmarks.

Validation (``val_clips`` held-out clips): Sp2Emo's clip accuracy on the speech, Exp2Emo's on
the real landmarks (:func:`emotion_accuracy`), and the mouth-landmark distance of the
generated landmarks and of the mean face to the real ones (:func:`mouth_distance`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from bench import EMOTIONS
from bench.core.training import run_steps, set_learning_rate
from bench.generators.images import resize
from bench.generators.landmark_renderer import RenderBank, scale_points, train_renderer
from bench.generators.ventriloquist import (
    N_COORDS,
    SequenceDiscriminator,
    VentriloquistConfig,
    VentriloquistNets,
    cosine_loss,
    d_loss,
    energy_loss,
    feature_statistics,
    g_adv_loss,
    mouth_loss,
    normalise_landmarks,
    speech_features,
)

MOUTH_LIPS = slice(48, 68)


@dataclass
class ClipData:
    """One training clip: raw MFCC ``(4 T, n_mfcc)`` and log-mel ``(4 T, n_mels)``, the
    standardised landmarks ``(T, 136)``, its per-axis std ``(2,)``, the emotion index (-1:
    none). Clips shorter than a window are padded to one (silence, last frame repeated)."""

    mfcc: np.ndarray
    mel: np.ndarray
    points: np.ndarray
    scale: np.ndarray
    label: int
    speaker: str = ""

    @property
    def num_frames(self) -> int:
        return int(self.points.shape[0])


def clip_data(clip: Any, cfg: VentriloquistConfig) -> ClipData:
    """Features and normalised landmarks of a prepared clip (``Clip.landmarks`` needed)."""
    length = max(clip.num_frames, cfg.window)
    mfcc, mel = speech_features(clip.audio, length, cfg)
    norm, _, std = normalise_landmarks(clip.landmarks)
    points = norm.reshape(clip.num_frames, N_COORDS)
    if length > clip.num_frames:
        points = np.concatenate([points, np.repeat(points[-1:], length - clip.num_frames, 0)])
    label = EMOTIONS.index(clip.emotion) if clip.emotion in EMOTIONS else -1
    return ClipData(mfcc=mfcc, mel=mel, points=points.astype(np.float32), scale=std,
                    label=label, speaker=str(clip.speaker))


@dataclass
class WindowData:
    """Training clips and the window sampler."""

    clips: list[ClipData]
    mean_face: np.ndarray
    cfg: VentriloquistConfig

    def sample(self, batch: int, rng: np.random.Generator, device: torch.device,
               pool: Sequence[int] | None = None) -> tuple[torch.Tensor, ...]:
        """``batch`` random 1 s windows of random clips (from ``pool`` when given): MFCC
        ``(B, n_mfcc, 4 W)``, mel ``(B, n_mels, 4 W)``, deformations ``(B, W, 136)``,
        labels ``(B,)``."""
        cfg, f = self.cfg, self.cfg.feat_per_frame
        chosen = (rng.integers(len(self.clips), size=batch) if pool is None
                  else np.asarray(pool)[rng.integers(len(pool), size=batch)])
        mfcc, mel, dk, labels = [], [], [], []
        for c in chosen:
            clip = self.clips[c]
            s = int(rng.integers(clip.num_frames - cfg.window + 1))
            mfcc.append(clip.mfcc[f * s:f * (s + cfg.window)].T)
            mel.append(clip.mel[f * s:f * (s + cfg.window)].T)
            dk.append(clip.points[s:s + cfg.window] - self.mean_face)
            labels.append(clip.label)

        def tensor(xs: list[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.stack(xs)).to(device)

        return (tensor(mfcc), tensor(mel), tensor(dk),
                torch.tensor(labels, dtype=torch.long, device=device))


def remove_speaker_shapes(clips: Sequence[ClipData], mean_face: np.ndarray) -> None:
    """Replace each speaker's mean standardised shape (over all its clips' frames) by
    ``mean_face``, in place: what is left is the speech- and emotion-driven deformation, not
    the speaker's face shape, which G cannot know for a new speaker (ours; module doc)."""
    by_speaker: dict[str, list[ClipData]] = {}
    for c in clips:
        by_speaker.setdefault(c.speaker, []).append(c)
    for group in by_speaker.values():
        shift = mean_face - np.concatenate([c.points for c in group]).mean(0)
        for c in group:
            c.points = (c.points + shift).astype(np.float32)


def load_window_data(clips: Sequence[ClipData], cfg: VentriloquistConfig) -> WindowData:
    """The training clips' data and the mean face (Sect. 2.2), the speakers' shapes removed
    when ``cfg.speaker_normalise``."""
    if not clips:
        raise ValueError("ventriloquist: no training clip with landmarks")
    mean_face = np.concatenate([d.points for d in clips]).mean(0).astype(np.float32)
    if cfg.speaker_normalise:
        remove_speaker_shapes(clips, mean_face)
    return WindowData(clips=list(clips), mean_face=mean_face, cfg=cfg)


def freeze(module: nn.Module) -> None:
    """No gradients for the weights, BatchNorm and dropout in eval mode; LSTMs stay in train
    mode (they have no dropout, so it is the same function; cuDNN can only backpropagate
    through an LSTM in train mode, and G's gradient passes through frozen Exp2Emo)."""
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()
    for m in module.modules():
        if isinstance(m, nn.LSTM):
            m.train()


def _decayed(lr: float, factor: float, every: int, steps_done: int) -> float:
    return lr * factor ** (max(0, steps_done) // max(1, every))


# ---------------------------------------------------------------------------------------------
# Stage 1: emotion networks


def train_emotion_nets(nets: VentriloquistNets, data: WindowData, cfg: VentriloquistConfig,
                       rng: np.random.Generator, device: torch.device) -> dict[str, Any]:
    """Sect. 2.1 / 3.1 pre-training of Sp2Emo and Exp2Emo (module docstring)."""
    sp2emo, exp2emo = nets["sp2emo"], nets["exp2emo"]
    labelled = [i for i, c in enumerate(data.clips) if c.label >= 0]
    if not labelled:
        return {"skipped": "no emotion labels in the training clips: Sp2Emo and Exp2Emo "
                           "untrained, L_emotion off"}
    op_sp = torch.optim.Adam(sp2emo.parameters(), lr=cfg.sp2emo_lr, betas=cfg.betas)
    op_ex = torch.optim.Adam(exp2emo.parameters(), lr=cfg.exp2emo_lr, betas=cfg.betas)
    ce = nn.CrossEntropyLoss()

    def step(i: int) -> dict[str, float]:
        set_learning_rate(op_sp, _decayed(cfg.sp2emo_lr, cfg.sp2emo_decay,
                                          cfg.sp2emo_decay_steps, i - 1))
        mfcc, _, dk, labels = data.sample(cfg.emo_batch, rng, device, labelled)
        logits, _ = sp2emo(mfcc)
        loss = ce(logits, labels)
        op_sp.zero_grad(set_to_none=True)
        loss.backward()
        op_sp.step()
        out = {"sp2emo_ce": loss.item(),
               "sp2emo_acc": float((logits.argmax(1) == labels).float().mean())}
        if i > cfg.exp2emo_start:
            set_learning_rate(op_ex, _decayed(cfg.exp2emo_lr, cfg.exp2emo_decay,
                                              cfg.exp2emo_decay_steps,
                                              i - cfg.exp2emo_start - 1))
            cross = exp2emo(dk)
            loss_x = cosine_loss(cross, logits.detach())
            op_ex.zero_grad(set_to_none=True)
            loss_x.backward()
            op_ex.step()
            out["exp2emo_cos"] = loss_x.item()
            out["exp2emo_acc"] = float((cross.argmax(1) == labels).float().mean())
        return out

    sp2emo.train()
    exp2emo.train()
    log = run_steps(step, cfg.emo_steps, desc="ventriloquist: emotion nets").as_dict()
    log["labelled_clips"] = len(labelled)
    return log


@torch.no_grad()
def neutral_embedding(nets: VentriloquistNets, audio: Sequence[np.ndarray],
                      data: WindowData) -> tuple[torch.Tensor, str]:
    """Mean ``q_emo`` over every window of the neutral training clips (of all clips when none
    is labelled NEU; ``audio``: each clip's audio), and which clips it came from."""
    neutral = [i for i, c in enumerate(data.clips) if c.label == EMOTIONS.index("NEU")]
    which = "NEU training clips"
    if not neutral:
        neutral, which = list(range(len(data.clips))), "all training clips (no NEU label)"
    total, count = None, 0
    for i in neutral:
        mfcc, _, _, _ = nets.clip_features(audio[i], data.clips[i].num_frames)
        _, q = nets["sp2emo"](mfcc)
        s = q.sum(dim=(0, 2))
        total = s if total is None else total + s
        count += q.shape[0] * q.shape[2]
    return total / count, f"mean Sp2Emo embedding of {len(neutral)} {which}"


# ---------------------------------------------------------------------------------------------
# Stage 2: landmark GAN


def generator_loss(nets: VentriloquistNets, disc: SequenceDiscriminator, mfcc: torch.Tensor,
                   mel: torch.Tensor, dk: torch.Tensor, cfg: VentriloquistConfig,
                   use_emotion: bool) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """Sect. 2.3: ``w_adv L_adv + w_emo L_emotion + w_mouth L_mouth + w_energy L_energy`` of
    one batch (``L_emotion`` only when ``use_emotion``); returns (loss, the generated
    deformations ``dk_hat``, the terms' values)."""
    gen = nets["generator"]
    with torch.no_grad():
        l_emo, q_emo = nets["sp2emo"](mfcc)
    fake, _ = gen(mel, q_emo)
    adv = g_adv_loss(disc(fake))
    mouth = mouth_loss(fake, dk, gen.wt_mouth)
    energy = energy_loss(dk, fake)
    loss = cfg.w_adv * adv + cfg.w_mouth * mouth + cfg.w_energy * energy
    out = {"adv": adv.item(), "mouth": mouth.item(), "energy": energy.item()}
    if use_emotion and cfg.w_emo > 0:
        emo = cosine_loss(nets["exp2emo"](fake), l_emo)
        loss = loss + cfg.w_emo * emo
        out["emotion"] = emo.item()
    out["g"] = loss.item()
    return loss, fake, out


def gan_step(nets: VentriloquistNets, disc: SequenceDiscriminator,
             op_g: torch.optim.Optimizer, op_d: torch.optim.Optimizer,
             batch: tuple[torch.Tensor, ...], cfg: VentriloquistConfig,
             use_emotion: bool) -> dict[str, float]:
    """One G update (:func:`generator_loss`), then one D update on the real and the
    (detached) generated deformations (code's order); the losses' values."""
    mfcc, mel, dk = batch[:3]
    loss, fake, out = generator_loss(nets, disc, mfcc, mel, dk, cfg, use_emotion)
    op_g.zero_grad(set_to_none=True)
    loss.backward()
    op_g.step()
    loss_d = d_loss(disc(dk), disc(fake.detach()))
    op_d.zero_grad(set_to_none=True)
    loss_d.backward()
    op_d.step()
    out["d"] = loss_d.item()
    return out


def train_landmark_gan(nets: VentriloquistNets, disc: SequenceDiscriminator,
                       data: WindowData, cfg: VentriloquistConfig, rng: np.random.Generator,
                       device: torch.device, use_emotion: bool) -> dict[str, Any]:
    """Sect. 2.2-2.3: G and D adversarially, Sp2Emo and Exp2Emo frozen."""
    gen = nets["generator"]
    freeze(nets["sp2emo"])
    freeze(nets["exp2emo"])
    op_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr_g, betas=cfg.betas)
    op_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr_d, betas=cfg.betas)

    def step(_: int) -> dict[str, float]:
        return gan_step(nets, disc, op_g, op_d, data.sample(cfg.batch, rng, device), cfg,
                        use_emotion)

    gen.train()
    disc.train()
    log = run_steps(step, cfg.gan_steps, desc="ventriloquist: landmark GAN").as_dict()
    gen.eval()
    return log


# ---------------------------------------------------------------------------------------------
# Stage 3: renderer and the whole fit


def set_statistics(nets: VentriloquistNets, data: WindowData) -> None:
    """Feature standardisation and the mean face into the networks' buffers."""
    mfcc_mean, mfcc_std = feature_statistics([c.mfcc for c in data.clips])
    mel_mean, mel_std = feature_statistics([c.mel for c in data.clips])
    sp2emo, gen = nets["sp2emo"], nets["generator"]
    device = gen.mel_mean.device
    sp2emo.mfcc_mean.copy_(torch.from_numpy(mfcc_mean).to(device))
    sp2emo.mfcc_std.copy_(torch.from_numpy(mfcc_std).to(device))
    gen.mel_mean.copy_(torch.from_numpy(mel_mean).to(device))
    gen.mel_std.copy_(torch.from_numpy(mel_std).to(device))
    gen.mean_face.copy_(torch.from_numpy(data.mean_face).to(device))


def train_ventriloquist(nets: VentriloquistNets, train: Sequence[Any],
                        cfg: VentriloquistConfig, device: torch.device, seed: int,
                        perceptual: nn.Module | None) -> dict[str, Any]:
    """All three stages on ``train`` (prepared clips with landmarks, each read once; clips
    with frames without landmarks are left out and counted); returns the log."""
    rng = np.random.default_rng(seed)
    clips, audio, frames, points = [], [], [], []
    skipped = 0
    for i in range(len(train)):
        clip = train[i]
        if clip.landmarks is None or np.isnan(clip.landmarks).any():
            skipped += 1
            continue
        clips.append(clip_data(clip, cfg))
        audio.append(np.asarray(clip.audio, dtype=np.float32))
        x = torch.from_numpy(np.ascontiguousarray(clip.frames)).permute(0, 3, 1, 2)
        if x.shape[-1] != cfg.size:
            x = resize(x.float(), cfg.size).round_().clamp_(0, 255).to(torch.uint8)
        frames.append(x.contiguous())
        points.append(scale_points(np.asarray(clip.landmarks, np.float32),
                                   clip.frames.shape[1], cfg.size))
    data = load_window_data(clips, cfg)
    set_statistics(nets, data)
    emotion = train_emotion_nets(nets, data, cfg, rng, device)
    use_emotion = "skipped" not in emotion
    nets["sp2emo"].eval()
    neutral, source = neutral_embedding(nets, audio, data)
    nets["generator"].neutral_emotion.copy_(neutral)
    disc = SequenceDiscriminator(cfg).to(device)
    gan = train_landmark_gan(nets, disc, data, cfg, rng, device, use_emotion)
    bank = RenderBank(frames=frames, points=[torch.from_numpy(p).float() for p in points])
    renderer_log = train_renderer(nets["renderer"], bank, cfg.renderer_config(), perceptual,
                                  device, rng, desc="ventriloquist: renderer")
    nets.eval()
    stages = {"emotion": emotion, "gan": gan, "renderer": renderer_log}
    return {"steps": int(sum(s.get("steps", 0) for s in stages.values())),
            "stages": stages, "neutral_emotion": source, "clips": len(clips),
            "clips_without_landmarks": skipped,
            "frames": int(sum(c.num_frames for c in clips))}


# ---------------------------------------------------------------------------------------------
# Held-out checks


@torch.no_grad()
def emotion_accuracy(nets: VentriloquistNets, clips: Sequence[Any]) -> dict[str, Any]:
    """Clip-level accuracy of Sp2Emo (speech; mean logits over the clip's windows) and of
    Exp2Emo (the clip's real landmarks, standardised per clip, each speaker's shape removed
    over the given clips as in training, minus the mean face) on the labelled ``clips``;
    chance is 1/6."""
    nets.eval()
    cfg = nets.cfg
    mean_face = nets["generator"].mean_face
    labelled = [c for c in clips if c.emotion in EMOTIONS and c.landmarks is not None
                and not np.isnan(c.landmarks).any()]
    data = [clip_data(c, cfg) for c in labelled]
    if cfg.speaker_normalise:
        remove_speaker_shapes(data, mean_face.cpu().numpy())
    hits_sp, hits_ex, n = 0, 0, 0
    for clip, d in zip(labelled, data, strict=True):
        label = EMOTIONS.index(clip.emotion)
        hits_sp += int(nets.emotion_logits(clip.audio, clip.num_frames).argmax()) == label
        dk = torch.from_numpy(d.points).to(mean_face.device) - mean_face
        wins = torch.stack([dk[s:s + cfg.window] for s in nets.window_starts(d.num_frames)])
        hits_ex += int(nets["exp2emo"](wins).mean(0).argmax()) == label
        n += 1
    if n == 0:
        return {"n": 0}
    return {"n": n, "sp2emo": hits_sp / n, "exp2emo": hits_ex / n, "chance": 1 / len(EMOTIONS)}


def _lip_distance(points: np.ndarray, real: np.ndarray, scale: np.ndarray) -> float:
    """Mean Euclidean distance of the lip points, standardised units times ``scale``."""
    diff = (points[:, MOUTH_LIPS] - real[:, MOUTH_LIPS]) * scale
    return float(np.linalg.norm(diff, axis=-1).mean())


@torch.no_grad()
def mouth_distance(nets: VentriloquistNets, clips: Sequence[Any]) -> dict[str, Any]:
    """Mean distance (pixels of the prepared crop) between the lip points (48-67) of the real
    landmarks and (a) the generated ``k_hat(t) = k_bar + dk_hat(t)``, (b) the mean face
    ``k_bar``, in the real clip's normalisation (undone with its per-axis scale).

    ``generated_px`` / ``mean_face_px``: the real landmarks with each speaker's mean shape
    (over the given clips) replaced by ``k_bar``, as the training targets are (when
    ``cfg.speaker_normalise``): what G is asked to predict from the speech, the motion. At
    generation the speaker's shape comes from the identity image instead (module docstring
    of :mod:`bench.generators.ventriloquist`, "Rendering"). ``raw_generated_px`` /
    ``raw_mean_face_px``: the same against the real landmarks as they are."""
    nets.eval()
    cfg = nets.cfg
    mean_face = nets["generator"].mean_face.cpu().numpy()
    usable = [c for c in clips if c.landmarks is not None and not np.isnan(c.landmarks).any()]
    if not usable:
        return {"n": 0}
    raw = [clip_data(c, cfg) for c in usable]
    shaped = [clip_data(c, cfg) for c in usable]
    if cfg.speaker_normalise:
        remove_speaker_shapes(shaped, mean_face)
    face = mean_face.reshape(1, -1, 2)
    dist: dict[str, list[float]] = {"generated_px": [], "mean_face_px": [],
                                    "raw_generated_px": [], "raw_mean_face_px": []}
    for clip, r, sh in zip(usable, raw, shaped, strict=True):
        t = clip.num_frames
        dk, _ = nets.deformations(clip.audio, t)
        fake = face + dk.cpu().numpy().reshape(t, -1, 2)
        for prefix, d in (("", sh), ("raw_", r)):
            real = d.points[:t].reshape(t, -1, 2)
            dist[prefix + "generated_px"].append(_lip_distance(fake, real, d.scale))
            dist[prefix + "mean_face_px"].append(
                _lip_distance(np.broadcast_to(face, real.shape), real, d.scale))
    return {"n": len(usable), **{k: float(np.mean(v)) for k, v in dist.items()}}
