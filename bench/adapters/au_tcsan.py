"""``au-tcsan``: Chen, Liu, Liu, Wang 2022, talking heads driven by speech-related AUs and audio
through a temporal convolutional self-attention network (seed 004;
:mod:`bench.generators.au_tcsan`, :mod:`bench.generators.au_tcsan_training`).

AU labels for training (Sect. 4.1 labels every training frame with OpenFace): the harness's
labeller, i.e. talkbench's landmark rules (:mod:`bench.core.au_rules`, the rules the AU metric
falls back to and its AU judge is trained on) on each training clip's 68 landmarks. Clips
without landmarks, or with too few faces for the rules' rest reference, carry no labels (their
frames still train L_rec, L_id and L_per). The generator's own AU classifier inside the loss is
trained here from these labels and shares no weights with the metric's AU judge.

Budgets (same code path, only sizes and step counts change; every stage is a step count):

- ``paper``: 112x112 frames, the sizes of Sect. 3.1 (f_id 512, f_a 512, five 64-d AU
  features, 1344-d TCSAN with 4 heads and k = 3), Eq. 11's weights 1.5 / 1.5 / 0.07 / 0.02,
  Adam 2e-4 (beta1 0.5), fine-tuning rates 1e-6 (Audio2AU) and 1e-7 (AU classifier), 20
  epochs of the full model; 8 sequences x 16 frames a step and 20 pre-training epochs each
  (ours);
- ``demo``: 64x64 frames, narrow layers (f_id 64, f_a 64, five 16-d AU features: 208-d
  TCSAN of 13 tokens, 3 blocks), Adam 1e-3 (a short schedule), perceptual loss on 2 frames a
  step with VGG-19 relu1_2 only; 250 Audio2AU, 600 AU-classifier (Adam 3e-3: at 150 steps
  and 1e-3 it still called AU14-AU26 absent on held-out speakers) and 260 full-model steps.
  On 48 synthetic training clips (8 speakers) a whole fit took about 70 s on a shared 2-core
  CPU (Audio2AU 20 s, AU classifier 8 s, full model 34 s); on the 4 held-out speakers the
  Audio2AU heads of AU20, AU25 and AU26 beat chance, those of AU10 and AU14 do not (see
  ``tests/test_gen_au_tcsan.py``'s slow test);
- ``smoke``: 32x32, a few steps (tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.adapters.torch_base import TorchAdapter
from bench.core.au_rules import AUS, au_rules
from bench.core.au_rules import describe as describe_rules
from bench.data.clip import Clip
from bench.generators.au_tcsan import (
    N_AUS,
    AUTCSANConfig,
    AUTCSANNets,
    AUTrainingData,
    make_training_data,
)
from bench.generators.au_tcsan_training import (
    au_classifier_scores,
    audio2au_scores,
    train_au_tcsan,
    validation_l1,
)
from bench.generators.clip_banks import ClipBank, load_bank
from bench.generators.perceptual import VGGPerceptualLoss

PAPER = AUTCSANConfig()

DEMO = AUTCSANConfig(
    size=64, id_channels=(16, 32, 64, 64), id_dim=64, audio_channels=(16, 32, 32, 64, 64),
    audio_fc=64, audio_dim=64, a2au_channels=8, a2au_hidden=32, a2au_fc=32, au_dim=16,
    tcsan_layers=3, dec_base=64, dec_channels=(64, 64, 32, 32, 16), auc_channels=(8, 8, 16, 16),
    auc_fc=(64, 32), perc_layers=("relu1_2",), perc_frames=2, lr=1e-3, batch=4, seq_len=8,
    epochs=None, steps=260, a2au_lr=3e-3, a2au_batch=128, a2au_epochs=None, a2au_steps=250,
    auc_lr=3e-3, auc_batch=32, auc_epochs=None, auc_steps=600, val_clips=4)

SMOKE = AUTCSANConfig(
    size=32, id_channels=(8, 8, 8, 8), id_dim=8, audio_channels=(4, 4, 8, 8, 8), audio_fc=8,
    audio_dim=8, a2au_channels=4, a2au_hidden=8, a2au_fc=8, au_dim=8, tcsan_layers=2,
    heads=2, dec_base=8, dec_channels=(8, 8, 8, 8, 8), auc_channels=(4, 4, 8, 8),
    auc_fc=(16, 8), perc_layers=("relu1_2",), perc_frames=2, lr=1e-3, batch=2, seq_len=6,
    epochs=None, steps=3, a2au_lr=1e-3, a2au_batch=16, a2au_epochs=None, a2au_steps=3,
    auc_lr=1e-3, auc_batch=8, auc_epochs=None, auc_steps=3, val_clips=2)


def clip_au_labels(clip: Clip) -> tuple[np.ndarray, np.ndarray, str]:
    """Per-frame occurrence ``(T, 5)`` bool (AU10, 14, 20, 25, 26), the mask of labelled
    frames ``(T,)`` and why a clip has none ("" when labelled): the landmark rules on the
    clip's 68 landmarks."""
    n = clip.num_frames
    none = np.zeros((n, N_AUS), dtype=bool), np.zeros(n, dtype=bool)
    if clip.landmarks is None:
        return (*none, "no landmarks")
    try:
        labels = au_rules(np.asarray(clip.landmarks, dtype=np.float64))
    except ValueError as err:
        return (*none, str(err))
    return labels.occurrence, labels.valid, ""


def load_labelled(clips: Sequence[Clip], size: int, limit: int | None = None
                  ) -> tuple[ClipBank, list[np.ndarray], list[np.ndarray], list[str]]:
    """Read each clip once: frames at ``size`` (a :class:`ClipBank`), AU labels, masks, and
    the reasons of the clips without labels."""
    bank = ClipBank(frames=[], audio=[], emotions=[], clip_ids=[])
    labels, valid, problems = [], [], []
    n = len(clips) if limit is None else min(limit, len(clips))
    for i in range(n):
        clip = clips[i]
        one = load_bank([clip], size)
        bank.frames += one.frames
        bank.audio += one.audio
        bank.emotions += one.emotions
        bank.clip_ids += one.clip_ids
        y, v, why = clip_au_labels(clip)
        labels.append(y)
        valid.append(v)
        if why:
            problems.append(f"{clip.clip_id}: {why}")
    return bank, labels, valid, problems


class AUTCSAN(TorchAdapter):
    """Adapter for :mod:`bench.generators.au_tcsan`."""

    name = "au-tcsan"
    paper = ("Chen, Liu, Liu, Wang 2022, Talking head generation driven by speech-related "
             "facial action units and audio based on multimodal representation fusion "
             "(seed 004)")
    needs_emotion = False
    configs = {"smoke": SMOKE, "demo": DEMO, "paper": PAPER}
    paper_parameters: dict[str, int] = {}  # the paper states no parameter counts
    side_stages = ("au-tcsan: Audio2AU", "au-tcsan: AU classifier")

    def profile_options(self, steps: int) -> dict[str, Any]:
        return {"steps": steps, "epochs": None, "a2au_steps": steps, "a2au_epochs": None,
                "auc_steps": steps, "auc_epochs": None}

    def build(self, cfg: AUTCSANConfig) -> nn.ModuleDict:
        return AUTCSANNets(cfg)

    def train_model(self, train: Sequence[Clip], val: Sequence[Clip] | None,
                    cfg: AUTCSANConfig) -> dict[str, Any]:
        bank, labels, valid, problems = load_labelled(train, cfg.size)
        data = make_training_data(bank, labels, valid, cfg)
        perceptual = None
        if cfg.w_perc > 0:
            perceptual = VGGPerceptualLoss(layers=cfg.perc_layers)
            self.notes["perceptual"] = perceptual.source
        else:
            self.notes["perceptual"] = "not used (w_perc = 0)"
        last = cfg.mfcc_first + cfg.mfcc_count - 1
        self.notes["mfcc"] = (f"coefficients {cfg.mfcc_first}..{last} of python_speech_features' "
                              f"13 (0 = log energy), {cfg.mfcc_window} frames at 100 Hz centred "
                              "on each video frame, standardised with training-set statistics")
        self.notes["au_labels"] = (f"{', '.join(AUS)} from the landmark rules on each training "
                                   f"clip's landmarks (bench.core.au_rules: {describe_rules()})")
        self.notes["tcsan_tokens"] = (f"self-attention within each frame over {cfg.tokens} "
                                      f"tokens of {cfg.au_dim} channels of f_k "
                                      f"(f_id {cfg.id_dim // cfg.au_dim}, f_a "
                                      f"{cfg.audio_dim // cfg.au_dim}, f_au {N_AUS})")
        log = train_au_tcsan(self.nets, data, cfg, perceptual, self.torch_device, self.seed)
        if problems:
            log["unlabelled_clips"] = problems
        log.update(self.validate(list(val or []), cfg))
        return log

    def validate(self, val: Sequence[Clip], cfg: AUTCSANConfig) -> dict[str, Any]:
        """Held-out figures on the first ``val_clips`` validation clips: the Audio2AU heads and
        the AU classifier against the clips' AU labels, and the L1 of generated clips."""
        if not val or cfg.val_clips <= 0:
            return {"val_l1": None}
        bank, labels, valid, _ = load_labelled(val, cfg.size, cfg.val_clips)
        data: AUTrainingData = make_training_data(bank, labels, valid, cfg)
        out: dict[str, Any] = {"val_l1": validation_l1(self.nets, bank, None,
                                                       self.torch_device)}
        if data.labelled_frames:
            out["val_audio2au"] = audio2au_scores(self.nets, data, self.torch_device)
            out["val_au_classifier"] = au_classifier_scores(self.nets, data,
                                                            self.torch_device)
        return out

    def synthesize(self, image: torch.Tensor, audio: np.ndarray, emotion: str | None,
                   num_frames: int, generator: torch.Generator) -> torch.Tensor:
        # deterministic: the model has no noise input, so ``generator`` is not needed
        return self.nets.synthesize(image, audio, num_frames)
