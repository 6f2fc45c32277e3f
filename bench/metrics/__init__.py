"""Metrics, registered by name (SPEC section 5). A new metric is one file plus one line here.

Modules are imported only when their metric is used, so heavy judges cost nothing unless chosen.
"""

from __future__ import annotations

import torch

from bench.metrics.base import (
    Aggregation,
    ClipShared,
    Column,
    Metric,
    MetricContext,
    MetricUnavailable,
    Sample,
)
from bench.registry import Registry

METRICS = Registry("metric")
METRICS.add("psnr", "bench.metrics.psnr:PSNR")
METRICS.add("ssim", "bench.metrics.ssim:SSIM")
METRICS.add("cpbd", "bench.metrics.cpbd:CPBD")
METRICS.add("lse", "bench.metrics.lse:LSE")
METRICS.add("fid", "bench.metrics.fid:FID")
METRICS.add("blinks", "bench.metrics.blinks:Blinks")
METRICS.add("acd", "bench.metrics.acd:ACD")
METRICS.add("au", "bench.metrics.au:AU")
METRICS.add("emoacc", "bench.metrics.emoacc:EmoAcc")
METRICS.add("lmd", "bench.metrics.lmd:LMD")
METRICS.add("lpips", "bench.metrics.lpips:LPIPS")
METRICS.add("fvd", "bench.metrics.fvd:FVD")
METRICS.add("wer", "bench.metrics.wer:WER")


def get_metric(name: str, device: str | torch.device | None = None,
               context: MetricContext | None = None) -> Metric:
    """A fresh instance of the metric registered as ``name`` (device None: cuda if available),
    scoring within ``context`` (which dataset's trained judges to use).

    An unknown name raises `bench.registry.UnknownName` with a "did you mean" hint.
    """
    metric = METRICS.get(name)(device=device)
    if context is not None:
        metric.context = context
    return metric


__all__ = ["METRICS", "Aggregation", "ClipShared", "Column", "Metric", "MetricContext",
           "MetricUnavailable", "Sample", "get_metric"]
