"""FVD: Frechet video distance (Unterthiner et al. 2018), as StyleGAN-V and LatentSync compute it.

Definition (Unterthiner et al. 2018, Sect. 3, Eq. 2). Embed every 16-frame clip with I3D's
Kinetics-400 logits (:mod:`bench.judges.i3d`: 400-d, frames resized to 224x224 and scaled to
[-1, 1]); fit a Gaussian to the generated clips' features, ``N(mu_1, C_1)``, and one to the
ground-truth clips', ``N(mu_2, C_2)``; then, as FID::

    FVD = ||mu_1 - mu_2||^2 + Tr(C_1 + C_2 - 2 (C_1 C_2)^(1/2))

Math: reused from :mod:`bench.metrics.fid` (:class:`~bench.metrics.fid.FrechetStats`, the
mergeable running sums, and :func:`~bench.metrics.fid.fid_from_stats` /
:func:`~bench.metrics.fid.frechet_distance`): float64, ``mu`` the mean, ``C`` the unbiased
(``N - 1``) covariance, ``scipy.linalg.sqrtm``. Differences from the references, all below
the printed precision for well-conditioned sets:

* LatentSync's ``eval/fvd.py`` uses ``np.cov`` (unbiased, as here); StyleGAN-V's
  ``FeatureStats.get_mean_cov`` divides by ``N``, which scales both covariances by
  ``(N - 1) / N``;
* both references keep the real part of ``sqrtm`` silently; talkbench, as pytorch-fid, retries
  a non-finite root with ``1e-6`` on the diagonals and reports the distance unavailable (with
  the reason) when the root's diagonal has an imaginary part beyond ``1e-3``.

Clip protocol (talkbench fixes it; the papers do not agree). Each video is cut into
consecutive, non-overlapping 16-frame windows from its first frame (``T // 16`` windows; the
rest is left out): StyleGAN-V takes 16 consecutive frames per video, LatentSync frames 20-35
of each video (one window). FVD of a model on a test set = the Frechet distance between the
windows of every generated clip and those of the same clips' ground-truth videos, both at the
crop resolution (a clip's two videos must have the same shape, frame count and size, so that
both sides have the same windows; the network resizes both to 224x224).
A video shorter than 16 frames is unavailable with the reason. With fewer windows than the
400 feature dimensions the covariances are singular and the number is biased (StyleGAN-V uses
2048 clips per side); the window counts are in the provenance.

FVD is a set-level number: :meth:`FVD.update` returns ``{}`` and :meth:`FVD.compute`
``{"fvd": value}``. Lower is better; the real videos against themselves score 0, so there is no
ground-truth row. Without the user's I3D weights every clip is unavailable with the reason
(:mod:`bench.judges.i3d`); nothing else is computed under FVD's name.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.judges.i3d import (
    CLIP_FRAMES,
    FEATURE_DIM,
    I3D,
    JUDGE_NAME,
    I3DWeightsMissing,
    i3d_features,
    load_i3d,
)
from bench.metrics.base import (
    Aggregation,
    Column,
    Metric,
    MetricUnavailable,
    Sample,
    check_pair,
    to_device_frames,
)
from bench.metrics.fid import FrechetStats, fid_from_stats

BATCH_SIZE = 4
"""16-frame windows per forward pass."""


def fvd_from_stats(generated: FrechetStats, real: FrechetStats) -> float:
    """FVD between two sets of window statistics; MetricUnavailable with the reason."""
    if generated.n < 2 or real.n < 2:
        raise MetricUnavailable(f"FVD needs at least 2 generated and 2 ground-truth "
                                f"{CLIP_FRAMES}-frame windows; got {generated.n} and {real.n}")
    return fid_from_stats(generated, real, what="FVD")


class FVD(Metric):
    """FVD between the 16-frame windows of all generated and all ground-truth clips.

    ``weights``: the I3D state-dict file (else ``$TALKBENCH_FVD_WEIGHTS``, else
    ``<weights dir>/i3d_pretrained_400.pt``). The network is loaded on the first clip; when it
    cannot be, the reason is kept and every clip is unavailable with it.

    State: one pair of :class:`~bench.metrics.fid.FrechetStats` (generated, ground truth),
    mergeable across clips and shards (:meth:`merge`).
    """

    name = "fvd"
    columns = (Column("fvd", "FVD", higher_is_better=False, fmt=".2f",
                      aggregation=Aggregation.SET_LEVEL),)
    needs = frozenset({"gt"})
    on_ground_truth = False  # the real videos against themselves: 0
    version = "1"

    def __init__(self, device: str | torch.device | None = None, weights: str | None = None,
                 batch_size: int = BATCH_SIZE) -> None:
        super().__init__(device)
        self.weights = weights
        self.batch_size = batch_size
        self._net: I3D | None = None
        self._failure: str | None = None
        self._judge_provenance: dict[str, str] = {}
        self._generated = FrechetStats(FEATURE_DIM)
        self._real = FrechetStats(FEATURE_DIM)

    # -- the network -------------------------------------------------------------------------
    def network(self) -> I3D:
        """The I3D network, loaded on first use; MetricUnavailable (the reason) otherwise."""
        if self._failure is not None:
            raise MetricUnavailable(self._failure)
        if self._net is None:
            try:
                self._net, self._judge_provenance = load_i3d(self.weights, self.device)
            except I3DWeightsMissing as err:
                self._failure = str(err)
            except ValueError as err:
                self._failure = f"FVD weights unusable: {err}"
            if self._failure is not None:
                raise MetricUnavailable(self._failure)
        return self._net

    def features(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        """Features ``(T // 16, 400)`` float32 of a video's windows: a numpy array
        ``(T, H, W, 3)`` or a tensor ``(T, 3, H, W)``, uint8 RGB."""
        return i3d_features(self.network(), frames, self.batch_size).cpu().numpy()

    # -- the lifecycle -----------------------------------------------------------------------
    def _clip_features(self, sample: Sample) -> tuple[torch.Tensor, torch.Tensor]:
        pred, gt = check_pair(sample)  # same frame count and size: the same windows
        if pred.shape[0] < CLIP_FRAMES:
            raise MetricUnavailable(f"FVD needs videos of at least {CLIP_FRAMES} frames; "
                                    f"this clip has {pred.shape[0]}")
        net = self.network()
        pred_t = to_device_frames(sample, "pred", self.device, dtype=torch.uint8)
        gt_t = to_device_frames(sample, "gt", self.device, dtype=torch.uint8)
        return (i3d_features(net, pred_t, self.batch_size),
                i3d_features(net, gt_t, self.batch_size))

    def clip_state(self, sample: Sample) -> dict[str, np.ndarray]:
        """Features of the clip's generated and ground-truth windows (what the runner caches
        per clip): ``{"pred": (K, 400), "gt": (K, 400)}`` float32."""
        pred, gt = self._clip_features(sample)
        return {"pred": pred.cpu().numpy(), "gt": gt.cpu().numpy()}

    def compute_from_states(self, states: list[tuple[dict[str, np.ndarray], str | None]]
                            ) -> dict[str, float | MetricUnavailable]:
        """FVD over the windows of every clip (:meth:`compute`)."""
        self.reset()
        for state, _emotion in states:
            self.add_features(state["pred"], state["gt"])
        return dict(self.compute())

    def update(self, sample: Sample) -> dict[str, float]:
        """Add the clip's windows to the statistics; returns ``{}`` (no per-clip value)."""
        self.add_features(*self._clip_features(sample))
        return {}

    def add_features(self, pred_features: np.ndarray | torch.Tensor,
                     gt_features: np.ndarray | torch.Tensor) -> None:
        """Add one clip's window features (generated, ground truth)."""
        self._generated.add(pred_features)
        self._real.add(gt_features)

    def merge(self, other: FVD) -> FVD:
        """Add another shard's statistics to these (in place); returns ``self``."""
        self._generated.merge(other._generated)
        self._real.merge(other._real)
        return self

    def stats(self) -> tuple[FrechetStats, FrechetStats]:
        """(generated, ground truth) statistics of every window added since the last reset."""
        return self._generated, self._real

    def compute(self) -> dict[str, float]:
        """``{"fvd": FVD over all windows}``; MetricUnavailable with the reason otherwise."""
        return {"fvd": fvd_from_stats(self._generated, self._real)}

    def reset(self) -> None:
        """Forget every clip."""
        self._generated = FrechetStats(FEATURE_DIM)
        self._real = FrechetStats(FEATURE_DIM)

    @property
    def n_updates(self) -> int:
        """Generated windows added since the last reset."""
        return self._generated.n

    def provenance(self) -> dict[str, str]:
        judge = self._judge_provenance or {"judge": f"{JUDGE_NAME}: weights not loaded"}
        generated, real = self.stats()
        return {
            **super().provenance(),
            "reference": "StyleGAN-V / LatentSync FVD (I3D return_features, Frechet distance); "
                         "matched to an independent computation on the same weights to 1e-6",
            "settings": f"non-overlapping {CLIP_FRAMES}-frame windows from frame 0; bilinear "
                        "224x224, 2x/255-1; float64 mean and unbiased covariance; scipy sqrtm "
                        "with pytorch-fid's 1e-6 retry",
            "windows": f"{generated.n} generated, {real.n} ground truth"
                       + (" (fewer than 400: FVD is biased)"
                          if min(generated.n, real.n) < FEATURE_DIM else ""),
            **judge,
        }
