"""WER / CER: how well a lip reader reads the generated lips (SPEC 5).

Seed 003 (Vougioukas et al.) Sect. 5 transcribes the generated GRID videos with LipNet
(Assael et al. 2016) and reports the word error rate against the spoken sentence. Here the
reader is :mod:`bench.judges.lipnet`, trained by the harness on the split's train speakers, so
its numbers are not those of the paper's LipNet (the leaderboard marks the column). Per clip:

    WER = (S + D + I) / N over words,  CER = the same over characters

with ``jiwer`` (``jiwer.wer`` / ``jiwer.cer``: Levenshtein alignment of the reference and the
hypothesis; S, D, I substitutions, deletions, insertions, N the reference's length) between
the clip's reference transcript and LipNet's transcript of the generated frames (mouth crops
from the shared dlib landmark pass). Reported in %, lower is better; the test-set value is the
mean over clips (for GRID's fixed six-word sentences the same as pooling the errors).

The transcript is LipNet's greedy CTC decoding; ``WER(grammar=True)`` decodes constrained to
GRID's grammar instead (the provenance says which). On the ground-truth row the metric is the
judge's own WER on the real test clips (seed 003: 21.76 % with its LipNet).

The reference transcript: ``sample.transcript`` when the sample carries one, else the
sentence a GRID clip id encodes (``s2_bbaf2n`` -> "bin blue at f two now"); a clip with
neither is unavailable, with the reason.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from bench.metrics.base import Column, Metric, MetricUnavailable, Sample, check_frames

VERSION = "1"
TRAINED_ON = frozenset({"grid"})
"""Datasets whose runs train LipNet when it is missing (GRID and its synthetic layout)."""
_GRID_ID = re.compile(r"^s\d{1,2}_([a-z0-9]{6})$")


def error_rates(reference: str, hypothesis: str) -> dict[str, float]:
    """``{"wer_lipnet", "cer_lipnet"}`` in % of ``hypothesis`` against ``reference``
    (``jiwer``, texts normalised as the judge's symbols: lower case, a-z and spaces)."""
    import jiwer

    from bench.judges.lipnet import normalise_text

    ref, hyp = normalise_text(reference), normalise_text(hypothesis)
    if not ref:
        raise MetricUnavailable("the reference transcript is empty")
    return {"wer_lipnet": 100.0 * jiwer.wer(ref, hyp), "cer_lipnet": 100.0 * jiwer.cer(ref, hyp)}


def reference_transcript(sample: Sample) -> str:
    """The clip's reference transcript (module docstring), or MetricUnavailable."""
    text = getattr(sample, "transcript", None)
    if text:
        return str(text)
    match = _GRID_ID.match(sample.clip_id)
    if match:
        from bench.data.grid import transcript_from_name

        try:
            return transcript_from_name(match.group(1))
        except ValueError:
            pass
    raise MetricUnavailable("no transcript for this clip: WER needs the spoken sentence "
                            "(GRID, or a dataset with transcripts)")


class WER(Metric):
    """WER and CER of the harness-trained LipNet's transcript of the generated video."""

    name = "wer"
    columns = (Column("wer_lipnet", "WER % (LipNet)", higher_is_better=False, fmt=".2f"),
               Column("cer_lipnet", "CER % (LipNet)", higher_is_better=False, fmt=".2f",
                      detail=True))
    on_ground_truth = True
    judge_name = "lipnet"

    def __init__(self, device: Any = None, grammar: bool = False) -> None:
        super().__init__(device)
        self.grammar = grammar
        self._loaded: tuple[str, Any] | None = None  # (weights sha256, reader)

    # -- the judge ---------------------------------------------------------------------------
    def _found(self):
        return self.context.trained_judge(self.judge_name)

    @property
    def version(self) -> str:  # type: ignore[override]
        """Changes with the reader's weights and decoding, so cached values are recomputed."""
        found = self._found()
        sha = found.record.get("weights_sha256", "?")[:12] if found is not None else "none"
        return f"{VERSION}{'g' if self.grammar else ''}+{sha}"

    def reader(self) -> Any:
        """The loaded LipNet (cached while its weights do not change), or MetricUnavailable
        saying how to train one."""
        found = self._found()
        if found is None:
            dataset = self.context.dataset
            if dataset is None:
                raise MetricUnavailable(
                    "no dataset given, so no LipNet: WER uses the lip reader trained on a "
                    "dataset (`bench judges train lipnet --dataset <dataset>`, then score "
                    "with --dataset <dataset>)")
            raise MetricUnavailable(f"no LipNet trained for {dataset}: run "
                                    f"`bench judges train lipnet --dataset {dataset}`")
        sha = str(found.record.get("weights_sha256", ""))
        if self._loaded is None or self._loaded[0] != sha:
            self._loaded = (sha, found.load(self.device))
        return self._loaded[1]

    def needs_trained_judge(self) -> bool:
        """Only GRID runs train LipNet on their own (:data:`TRAINED_ON`); elsewhere the
        metric uses a LipNet trained by hand (``bench judges train lipnet``) or says none is
        there, so runs on datasets without sentences to read train nothing for it."""
        return self.context.dataset in TRAINED_ON and super().needs_trained_judge()

    # -- scoring -----------------------------------------------------------------------------
    def transcript_of(self, sample: Sample) -> str:
        """LipNet's transcript of the generated frames (mouth crops from the shared landmarks)."""
        from bench.judges.lipnet import transcribe
        from bench.metrics.shared import sample_landmarks

        frames = check_frames(sample.pred, "generated video")
        reader = self.reader()
        landmarks = sample_landmarks(sample, "pred")
        try:
            return transcribe(reader, frames, np.asarray(landmarks), grammar=self.grammar)
        except ValueError as err:
            raise MetricUnavailable(str(err)) from err

    def score(self, sample: Sample) -> dict[str, float]:
        reference = reference_transcript(sample)
        return error_rates(reference, self.transcript_of(sample))

    def provenance(self) -> dict[str, str]:
        from bench.judges.lipnet import ARCHITECTURE

        found = self._found()
        net = found.record.get("log", {}).get("net") if found is not None else None
        shape = (f" ({net['width']}x{net['height']} mouth crops, filters "
                 f"{'-'.join(str(f) for f in net['filters'])}, BiGRU {net['gru']})"
                 if isinstance(net, dict) else "")
        return {
            **super().provenance(),
            "judge": found.describe() if found is not None else "none trained",
            "reader": f"{ARCHITECTURE}{shape}; decoding: "
                      f"{'GRID grammar (Viterbi)' if self.grammar else 'greedy CTC'}",
            "definition": "word / character error rate (jiwer) of LipNet's transcript of the "
                          "generated video against the clip's transcript, in %, mean over "
                          "clips (seed 003 Sect. 5); on the ground-truth row, LipNet's own "
                          "error on the real test clips",
        }
