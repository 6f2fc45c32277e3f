"""Metrics, registered by name (SPEC section 5). A new metric is one file plus one line here.

Modules are imported only when their metric is used, so heavy judges cost nothing unless chosen.
"""

from __future__ import annotations

import torch

from bench.metrics.base import Column, Metric, MetricUnavailable, Sample
from bench.registry import Registry

METRICS = Registry("metric")
METRICS.add("psnr", "bench.metrics.psnr:PSNR")
METRICS.add("ssim", "bench.metrics.ssim:SSIM")


def get_metric(name: str, device: str | torch.device | None = None) -> Metric:
    """A fresh instance of the metric registered as ``name`` (device None: cuda if available).

    An unknown name raises `bench.registry.UnknownName` with a "did you mean" hint.
    """
    return METRICS.get(name)(device=device)


__all__ = ["METRICS", "Column", "Metric", "MetricUnavailable", "Sample", "get_metric"]
