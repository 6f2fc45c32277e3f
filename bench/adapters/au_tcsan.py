"""``au-tcsan``: Chen, Liu, Liu, Wang 2022, talking heads driven by speech-related AUs and audio
through a temporal convolutional self-attention network (seed 004;
:mod:`bench.generators.au_tcsan`, :mod:`bench.generators.au_tcsan_training`).

AU labels for training (Sect. 4.1 labels every training frame with OpenFace; issue 15): the
harness's labeller. With ``--openface DIR`` (``bench run``, ``bench train``; the adapter option
``openface``) a clip is labelled by ``DIR/<clip_id>.csv``, the OpenFace 2.x FeatureExtraction
CSV of its real video (the ``AUxx_c`` presence columns, :mod:`bench.core.openface`; frames
where OpenFace failed carry no label). Clips without a CSV, and every clip without
``--openface``, are labelled by talkbench's landmark rules (:mod:`bench.core.au_rules`, the
rules the AU metric falls back to and its AU judge is trained on) on their 68 landmarks. A CSV
that does not read as OpenFace output, or whose frame count is more than
`MAX_FRAME_DIFFERENCE` (2) away from the clip's, is not used: one line names the file and the
rules label that clip instead, as if it had no CSV (one labeller per clip, and no clip lost to
a bad file); within two frames the common first frames are labelled. ``au_label_sources`` in
the training log and the ``au_labels`` note (both in the leaderboard provenance) count the
clips of each labeller, ``au_label_problems`` keeps the lines. The checkpoint key holds a
sha256 over the CSVs of the training clips (:meth:`AUTCSAN.data_key`), so a model trained on
rule labels is never reused as one trained on OpenFace labels, nor on other CSVs. Clips
without landmarks, or with too few faces for the rules' rest reference, carry no labels
(their frames still train L_rec, L_id and L_per). The generator's own AU classifier inside the
loss is trained here from these labels and shares no weights with the metric's AU judge.

Which labels the Audio2AU heads can learn (demo budget, the synthetic held-out corpus of 16
speakers x 3 clips, 12 speakers trained, 4 unseen scored against their synthesised truth;
four folds of held-out speakers x seeds 0/1; ``tests/test_gen_au_tcsan.py``'s slow test):
trained on the truth written as OpenFace CSVs, all five heads beat chance on unseen speakers
(AU10 F1 0.37-0.66 vs an all-positive 0.30-0.33, AU14 0.26-0.70 vs 0.26, by 0.1 or more in 6
and 7 of 8 runs; AU20, AU25, AU26 in every run). Trained on the landmark rules, AU20, AU25
and AU26 beat chance too, but the rules cannot see AU14 (dimpler) in 68 landmarks (its head
stays at chance against the truth, F1 0.00-0.20) and their AU10 is a threshold on the rest
face (F1 0.31-0.44 vs 0.29-0.33). On the synthetic corpus AU10 and AU14 belong to the
disgust and anger expressions; an audio model hears them through the emotion's voice quality
(corpus code version 2; with version 1 they were in half the runs at chance even on right
labels). Right labels are what these two heads need: pass ``--openface`` when you have them.

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
  CPU (Audio2AU 20 s, AU classifier 8 s, full model 34 s); on held-out speakers the
  Audio2AU heads beat chance as above (all five on OpenFace labels);
- ``smoke``: 32x32, a few steps (tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.adapters.torch_base import TorchAdapter
from bench.core.au_rules import AUS, au_rules
from bench.core.au_rules import describe as describe_rules
from bench.core.openface import OpenFaceError, csv_digest, read_openface_csv
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


LABEL_SOURCES: tuple[str, ...] = ("openface", "landmark-rules", "none")
"""Who labelled a training clip: its OpenFace CSV, the landmark rules, or nobody."""

MAX_FRAME_DIFFERENCE = 2
"""An OpenFace CSV whose frame count differs from its clip's by at most this many frames
labels their common first frames (a video's last frame or two are often lost or added in
decoding; frames past the common part carry no label); a larger difference means another
video or another frame rate (talkbench's clips are 25 fps), and the CSV is not used."""


@dataclass
class ClipLabels:
    """One clip's AU labels: ``occurrence`` ``(T, 5)`` bool (AU10, 14, 20, 25, 26), ``valid``
    ``(T,)`` bool (the labelled frames), ``source`` (one of `LABEL_SOURCES`) and ``problem``,
    one line on what went wrong ("" when nothing did): why the clip's CSV was not used, or
    why the clip has no labels."""

    occurrence: np.ndarray
    valid: np.ndarray
    source: str
    problem: str = ""


def openface_csv(folder: str | Path, clip_id: str) -> Path:
    """Where a clip's OpenFace CSV is: ``folder/<clip_id>.csv``."""
    return Path(folder) / f"{clip_id}.csv"


def rule_labels(clip: Clip) -> ClipLabels:
    """The landmark rules (:mod:`bench.core.au_rules`) on the clip's 68 landmarks; no labels
    when the clip has no landmarks or too few faces for the rules' rest reference."""
    n = clip.num_frames
    none = np.zeros((n, N_AUS), dtype=bool), np.zeros(n, dtype=bool)
    if clip.landmarks is None:
        return ClipLabels(*none, "none", f"{clip.clip_id}: no landmarks, no AU labels")
    try:
        labels = au_rules(np.asarray(clip.landmarks, dtype=np.float64))
    except ValueError as err:
        return ClipLabels(*none, "none", f"{clip.clip_id}: {err}, no AU labels")
    return ClipLabels(labels.occurrence, labels.valid, "landmark-rules")


def openface_labels(clip: Clip, path: Path) -> ClipLabels | str:
    """The clip's labels from its OpenFace CSV (``AUxx_c`` presence; frames where OpenFace
    failed carry no label), or one line on why the CSV cannot be used (unreadable, or a frame
    count more than `MAX_FRAME_DIFFERENCE` away from the clip's)."""
    try:
        labels = read_openface_csv(path)
    except OpenFaceError as err:
        return str(err)
    n, m = clip.num_frames, len(labels)
    if abs(n - m) > MAX_FRAME_DIFFERENCE:
        return (f"{path}: {m} frames, but clip {clip.clip_id} has {n} at 25 fps (more than "
                f"{MAX_FRAME_DIFFERENCE} apart: another video, or OpenFace run at another "
                "frame rate)")
    k = min(n, m)
    occurrence = np.zeros((n, N_AUS), dtype=bool)
    valid = np.zeros(n, dtype=bool)
    occurrence[:k] = labels.occurrence[:k]
    valid[:k] = labels.valid[:k]
    return ClipLabels(occurrence, valid, "openface")


def clip_au_labels(clip: Clip, openface: str | Path | None = None) -> ClipLabels:
    """The clip's AU labels from the harness's labeller (issue 15; seed 004 Sect. 4.1 labels
    with OpenFace): its CSV in the ``openface`` folder when there is one, else the landmark
    rules. A CSV that cannot be used is reported in ``problem`` and the rules label the clip
    instead (as a clip without a CSV)."""
    if openface is not None:
        path = openface_csv(openface, clip.clip_id)
        if path.is_file():
            labels = openface_labels(clip, path)
            if isinstance(labels, ClipLabels):
                return labels
            fallback = rule_labels(clip)
            fallback.problem = "; ".join(
                [f"{labels}; clip {clip.clip_id} labelled by the landmark rules instead"]
                + ([fallback.problem] if fallback.problem else []))
            return fallback
    return rule_labels(clip)


@dataclass
class LabelledClips:
    """Clips read once: frames and audio at the model's size (a :class:`ClipBank`) and each
    clip's :class:`ClipLabels`, in the same order."""

    bank: ClipBank
    labels: list[ClipLabels]

    def sources(self) -> dict[str, int]:
        """Clips labelled by each source of `LABEL_SOURCES`."""
        return {name: sum(lab.source == name for lab in self.labels) for name in LABEL_SOURCES}

    def problems(self) -> list[str]:
        """One line per clip whose CSV was not used or that has no labels."""
        return [lab.problem for lab in self.labels if lab.problem]

    def training_data(self, cfg: AUTCSANConfig) -> AUTrainingData:
        """MFCC windows, labels and masks of every clip (:func:`make_training_data`)."""
        return make_training_data(self.bank, [lab.occurrence for lab in self.labels],
                                  [lab.valid for lab in self.labels], cfg)


def load_labelled(clips: Sequence[Clip], size: int, limit: int | None = None,
                  openface: str | Path | None = None) -> LabelledClips:
    """Read each clip once (the first ``limit`` when given): frames at ``size`` and its AU
    labels (:func:`clip_au_labels`)."""
    bank = ClipBank(frames=[], audio=[], emotions=[], clip_ids=[])
    labels = []
    n = len(clips) if limit is None else min(limit, len(clips))
    for i in range(n):
        clip = clips[i]
        one = load_bank([clip], size)
        bank.frames += one.frames
        bank.audio += one.audio
        bank.emotions += one.emotions
        bank.clip_ids += one.clip_ids
        labels.append(clip_au_labels(clip, openface))
    return LabelledClips(bank, labels)


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
    run_options = frozenset({"openface"})

    @property
    def openface_dir(self) -> Path | None:
        """The folder of OpenFace CSVs the AU labels come from (option ``openface``, from
        ``--openface``), or None: the landmark rules."""
        value = self.options.get("openface")
        if value is None:
            return None
        if not Path(value).is_dir():
            raise ValueError(f"openface: {value} is not a folder (expected OpenFace CSVs of "
                             "the dataset's videos, <clip_id>.csv)")
        return Path(value)

    def data_key(self, clip_ids: Sequence[str]) -> dict[str, Any]:
        """With OpenFace labels: how many of the clips have a CSV and a sha256 over those
        CSVs, so a checkpoint trained on other labels (the rules, other CSVs) is not
        reused."""
        folder = self.openface_dir
        if folder is None:
            return {}
        known: dict[tuple[str, ...], dict[str, Any]] = self.__dict__.setdefault("_csv_keys", {})
        ids = (str(folder), *clip_ids)
        if ids not in known:  # read once per run, not once per use
            paths = [p for p in (openface_csv(folder, c) for c in clip_ids) if p.is_file()]
            known[ids] = {"au_labels": {"openface_csvs": len(paths),
                                        "sha256": csv_digest(paths)}}
        return known[ids]

    def describe_labels(self, labelled: LabelledClips) -> str:
        """The ``au_labels`` note: which labeller labelled how many training clips."""
        n = labelled.sources()
        total = len(labelled.labels)
        rules = f"the landmark rules on the clip's landmarks (bench.core.au_rules: " \
                f"{describe_rules()})"
        folder = self.openface_dir
        if folder is None:
            return (f"{', '.join(AUS)} per training frame from {rules} for "
                    f"{n['landmark-rules']} of {total} clips; no labels for {n['none']}")
        digest = self.data_key(labelled.bank.clip_ids)["au_labels"]["sha256"]
        return (f"{', '.join(AUS)} per training frame from OpenFace CSVs (AUxx_c presence, "
                f"{folder}/<clip_id>.csv, sha256 {digest[:12]}) for {n['openface']} of "
                f"{total} clips; from {rules} for {n['landmark-rules']}; no labels for "
                f"{n['none']}")

    def profile_options(self, steps: int) -> dict[str, Any]:
        return {"steps": steps, "epochs": None, "a2au_steps": steps, "a2au_epochs": None,
                "auc_steps": steps, "auc_epochs": None}

    def build(self, cfg: AUTCSANConfig) -> nn.ModuleDict:
        return AUTCSANNets(cfg)

    def train_model(self, train: Sequence[Clip], val: Sequence[Clip] | None,
                    cfg: AUTCSANConfig) -> dict[str, Any]:
        labelled = load_labelled(train, cfg.size, openface=self.openface_dir)
        sources = labelled.sources()
        for line in labelled.problems():
            self.echo(f"au-tcsan: {line}")
        if self.openface_dir is not None and labelled.labels and \
                not self.data_key(labelled.bank.clip_ids)["au_labels"]["openface_csvs"]:
            self.echo(f"au-tcsan: warning: no training clip has a CSV in {self.openface_dir} "
                      f"(expected <clip_id>.csv, e.g. {labelled.bank.clip_ids[0]}.csv); "
                      "every clip is labelled by the landmark rules")
        data = labelled.training_data(cfg)
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
        self.notes["au_labels"] = self.describe_labels(labelled)
        self.notes["tcsan_tokens"] = (f"self-attention within each frame over {cfg.tokens} "
                                      f"tokens of {cfg.au_dim} channels of f_k "
                                      f"(f_id {cfg.id_dim // cfg.au_dim}, f_a "
                                      f"{cfg.audio_dim // cfg.au_dim}, f_au {N_AUS})")
        log = train_au_tcsan(self.nets, data, cfg, perceptual, self.torch_device, self.seed)
        log["au_label_sources"] = sources
        if labelled.problems():
            log["au_label_problems"] = labelled.problems()
        log.update(self.validate(list(val or []), cfg))
        return log

    def validate(self, val: Sequence[Clip], cfg: AUTCSANConfig) -> dict[str, Any]:
        """Held-out figures on the first ``val_clips`` validation clips: the Audio2AU heads and
        the AU classifier against the clips' AU labels (from the same labeller as the training
        clips'), and the L1 of generated clips."""
        if not val or cfg.val_clips <= 0:
            return {"val_l1": None}
        labelled = load_labelled(val, cfg.size, cfg.val_clips, self.openface_dir)
        for line in labelled.problems():
            self.echo(f"au-tcsan (validation): {line}")
        data = labelled.training_data(cfg)
        out: dict[str, Any] = {"val_l1": validation_l1(self.nets, labelled.bank, None,
                                                       self.torch_device),
                               "val_au_label_sources": labelled.sources()}
        if data.labelled_frames:
            out["val_audio2au"] = audio2au_scores(self.nets, data, self.torch_device)
            out["val_au_classifier"] = au_classifier_scores(self.nets, data,
                                                            self.torch_device)
        return out

    def synthesize(self, image: torch.Tensor, audio: np.ndarray, emotion: str | None,
                   num_frames: int, generator: torch.Generator) -> torch.Tensor:
        # deterministic: the model has no noise input, so ``generator`` is not needed
        return self.nets.synthesize(image, audio, num_frames)
