"""LPIPS: learned perceptual image patch similarity (Zhang et al. 2018), AlexNet, v0.1.

Definition (Zhang et al. 2018, Eq. 1), as the ``lpips`` package computes it with its defaults
(``lpips.LPIPS(net="alex", version="0.1")``; the network and its weights are in
:mod:`bench.judges.lpips_net`)::

    LPIPS(x, y) = sum_l mean_{h,w} || w_l * (f_l(x) - f_l(y)) ||^2

with ``f_l`` the channel-normalised ReLU outputs of the five AlexNet conv layers and ``w_l``
the learnt per-channel weights. ``tests/test_metric_lpips.py`` checks talkbench against the
``lpips`` package on the same weights to 1e-5.

Per clip: the mean over frames of ``LPIPS(generated frame t, ground-truth frame t)``; the two
videos must have the same number of frames and the same size (a full-reference metric, as PSNR
and SSIM), else the clip is unavailable with the reason. The frames go in at the crop
resolution, without resizing (as the ``lpips`` package takes them). Lower is better; the real
video against itself scores 0, so there is no ground-truth row.

Weights: the user's AlexNet and lin-layer files (``--lpips-weights DIR`` /
``$TALKBENCH_LPIPS_WEIGHTS``; see :mod:`bench.judges.lpips_net`). Without them every clip is
unavailable with a reason that names the files; nothing else is computed under LPIPS's name.
"""

from __future__ import annotations

import torch

from bench.judges.lpips_net import (
    JUDGE_NAME,
    LPIPSAlex,
    LPIPSWeightsMissing,
    load_lpips,
    lpips_frames,
)
from bench.metrics.base import (
    Column,
    Metric,
    MetricUnavailable,
    Sample,
    check_pair,
    to_device_frames,
)

BATCH_SIZE = 16
"""Frame pairs per forward pass."""


class LPIPS(Metric):
    """Mean LPIPS over a clip's frame pairs (needs ``gt`` of the same shape).

    ``weights``: the folder with the two files (else ``$TALKBENCH_LPIPS_WEIGHTS``, else
    ``<weights dir>/lpips``); ``verify``: refuse unofficial files (None: unless
    ``$TALKBENCH_LPIPS_UNVERIFIED=1``). The network loads on the first clip; when it cannot,
    the reason is kept and every clip is unavailable with it (no further file access).
    """

    name = "lpips"
    columns = (Column("lpips", "LPIPS", higher_is_better=False, fmt=".4f"),)
    needs = frozenset({"gt"})
    on_ground_truth = False  # the real video against itself: 0
    version = "1"

    def __init__(self, device: str | torch.device | None = None, weights: str | None = None,
                 verify: bool | None = None, batch_size: int = BATCH_SIZE) -> None:
        super().__init__(device)
        self.weights = weights
        self.verify = verify
        self.batch_size = batch_size
        self._net: LPIPSAlex | None = None
        self._failure: str | None = None
        self._judge_provenance: dict[str, str] = {}

    def network(self) -> LPIPSAlex:
        """The LPIPS network, loaded on first use; MetricUnavailable (the reason) otherwise."""
        if self._failure is not None:
            raise MetricUnavailable(self._failure)
        if self._net is None:
            try:
                self._net, self._judge_provenance = load_lpips(self.weights, self.device,
                                                               self.verify)
            except LPIPSWeightsMissing as err:
                self._failure = str(err)
            except ValueError as err:
                self._failure = f"LPIPS weights refused: {err}"
            if self._failure is not None:
                raise MetricUnavailable(self._failure)
        return self._net

    def score(self, sample: Sample) -> dict[str, float]:
        check_pair(sample)  # same number of frames and size, else unavailable
        net = self.network()
        pred = to_device_frames(sample, "pred", self.device, dtype=torch.uint8)
        gt = to_device_frames(sample, "gt", self.device, dtype=torch.uint8)
        per_frame = lpips_frames(net, pred, gt, self.batch_size)
        return {"lpips": float(per_frame.to(torch.float64).mean())}

    def provenance(self) -> dict[str, str]:
        judge = self._judge_provenance or {"judge": f"{JUDGE_NAME}: weights not loaded"}
        return {
            **super().provenance(),
            "reference": "lpips 0.1.4, LPIPS(net='alex', version='0.1'), same weights, "
                         "matched to 1e-5",
            "settings": "uint8 RGB / 127.5 - 1, no resize; clip value = mean over frame "
                        "pairs; dataset value = mean over clips",
            **judge,
        }
