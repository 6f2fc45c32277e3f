"""EmoAcc: how often a video emotion classifier recognises the requested emotion (SPEC 5).

Seed 002 (Goyal et al., "Emotionally Enhanced Talking Face Generation", supplementary, Sect.
6.1): "the higher the emotion classification accuracy (EmoAcc) of the video-based emotion
classifier, the better the emotion incorporation ability of the model. As we are using
arbitrary emotions to generate our videos, those arbitrary emotions can be exploited as ground
truth labels for the classifier". Each test clip is generated once per emotion (the runner's
emotion sweep), and

    EmoAcc = (1 / (N * |E|)) * sum over clips n and requested emotions e of
             [argmax_k p_k(video generated for clip n with emotion e) == e]

with ``p`` the classifier's clip-level probabilities (:mod:`bench.judges.emotion_classifier`:
seed 002's emotion-discriminator architecture trained by the harness on the dataset's train
split; clip prediction = softmax of the mean logits of its 5-frame windows). Reported as a
fraction in [0, 1]; higher is better.

Per clip: with ``sample.by_emotion`` (requested emotion -> generated frames, set by the runner
for the sweep) the value is the fraction of those versions classified as their
requested emotion, so the dataset mean over clips is the formula above. Without it, the one
``sample.pred`` is classified against ``sample.emotion`` (value 0 or 1). On the ground-truth
row (``pred`` = the real clip) this is the classifier's own accuracy on the real test clips,
which the paper reports beside EmoAcc (">90% on the CREMA-D test set").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench import EMOTIONS
from bench.metrics.base import Column, Metric, MetricUnavailable, Sample, check_frames

VERSION = "1"


class EmoAcc(Metric):
    """EmoAcc with the harness-trained emotion classifier of the context's dataset."""

    name = "emoacc"
    columns = (Column("emoacc", "EmoAcc", higher_is_better=True, fmt=".3f"),)
    needs = frozenset({"emotion"})
    on_ground_truth = True
    judge_name = "emotion"

    def __init__(self, device: Any = None) -> None:
        super().__init__(device)
        self._loaded: tuple[str, Any] | None = None  # (weights sha256, classifier)

    # -- the judge ---------------------------------------------------------------------------
    def _found(self):
        return self.context.trained_judge(self.judge_name)

    @property
    def version(self) -> str:  # type: ignore[override]
        """Changes with the classifier's weights, so cached per-clip values of an older
        classifier are recomputed."""
        found = self._found()
        sha = found.record.get("weights_sha256", "?")[:12] if found is not None else "none"
        return f"{VERSION}+{sha}"

    def classifier(self) -> Any:
        """The loaded classifier (cached while its weights do not change), or
        MetricUnavailable saying how to train one."""
        found = self._found()
        if found is None:
            dataset = self.context.dataset
            if dataset is None:
                raise MetricUnavailable(
                    "no dataset given, so no emotion classifier: EmoAcc uses the classifier "
                    "trained on a dataset (`bench judges train emotion --dataset <dataset>`, "
                    "then score with --dataset <dataset>)")
            raise MetricUnavailable(
                f"no emotion classifier trained for {dataset}: run "
                f"`bench judges train emotion --dataset {dataset}`")
        sha = str(found.record.get("weights_sha256", ""))
        if self._loaded is None or self._loaded[0] != sha:
            self._loaded = (sha, found.load(self.device))
        return self._loaded[1]

    # -- scoring -----------------------------------------------------------------------------
    def requests(self, sample: Sample) -> dict[str, np.ndarray]:
        """Requested emotion -> generated frames of this clip (the sweep, or the one video)."""
        by_emotion = sample.by_emotion
        if by_emotion:
            unknown = sorted(str(e) for e in by_emotion if e not in EMOTIONS)
            if unknown:
                raise MetricUnavailable(f"requested emotions {', '.join(unknown)} are not "
                                        f"among {' '.join(EMOTIONS)}")
            return {e: check_frames(v, f"video generated for {e}")
                    for e, v in by_emotion.items()}
        if sample.emotion is None:
            raise MetricUnavailable("no emotion label for this clip: EmoAcc needs the "
                                    "requested emotion")
        if sample.emotion not in EMOTIONS:
            raise MetricUnavailable(f"emotion label {sample.emotion!r} is not one of "
                                    f"{' '.join(EMOTIONS)}")
        return {sample.emotion: check_frames(sample.pred, "generated video")}

    def score(self, sample: Sample) -> dict[str, float]:
        from bench.judges.emotion_classifier import classify_videos

        requests = self.requests(sample)
        judge = self.classifier()
        labels = list(requests)
        try:
            probs = classify_videos(judge, [requests[e] for e in labels])
        except ValueError as err:
            raise MetricUnavailable(str(err)) from err
        predicted = probs.argmax(axis=1)
        hits = np.array([EMOTIONS[k] == e for k, e in zip(predicted, labels, strict=True)],
                        dtype=np.float64)
        return {"emoacc": float(hits.mean())}

    def provenance(self) -> dict[str, str]:
        from bench.judges.emotion_classifier import ARCHITECTURE, WINDOW

        found = self._found()
        net = found.record.get("log", {}).get("net") if found is not None else None
        shape = (f" ({net['size']}x{net['size']} input, conv widths "
                 f"{'-'.join(str(w) for w in net['widths'])}, LSTM {net['embed']})"
                 if isinstance(net, dict) else "")
        return {
            **super().provenance(),
            "judge": found.describe() if found is not None else "none trained",
            "classifier": f"{ARCHITECTURE}{shape}; clip = softmax of mean logits over "
                          f"{WINDOW}-frame windows",
            "definition": "fraction of generated videos classified as their requested emotion "
                          "(seed 002 Sect. 6.1); one video per requested emotion when the "
                          "runner's emotion sweep provides them; on the ground-truth row, the "
                          "classifier's accuracy on the real test clips",
        }
