"""Frames as the generators hold them: float tensors ``(N, 3, H, W)`` in ``[-1, 1]``
(:func:`to_tensor`, :func:`to_uint8`), resized with antialiasing when shrinking
(:func:`resize`)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def to_tensor(frames: np.ndarray | torch.Tensor, size: int | tuple[int, int] | None = None,
              device: str | torch.device | None = "cpu") -> torch.Tensor:
    """``(..., H, W, 3)`` uint8 RGB -> ``(..., 3, h, w)`` float32 in ``[-1, 1]``, resized to
    ``size`` (antialiased bilinear) when given."""
    x = torch.as_tensor(np.ascontiguousarray(frames) if isinstance(frames, np.ndarray)
                        else frames).to(device)
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    if size is not None:
        x = resize(x, size)
    return x.reshape(*lead, *x.shape[1:])


def to_uint8(images: torch.Tensor, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """``(..., 3, h, w)`` float in ``[-1, 1]`` -> ``(..., H, W, 3)`` uint8 RGB (resized to
    ``size`` first when given)."""
    lead = images.shape[:-3]
    x = images.detach().reshape(-1, *images.shape[-3:]).float()
    if size is not None:
        x = resize(x, size)
    x = ((x.clamp(-1, 1) + 1.0) * 127.5).round_().to(torch.uint8)
    return x.permute(0, 2, 3, 1).reshape(*lead, *x.shape[-2:], 3).cpu().numpy()


def resize(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """``(N, C, h, w)`` -> ``(N, C, *size)``, bilinear with antialiasing when shrinking."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) == hw:
        return images
    shrink = hw[0] < images.shape[-2] or hw[1] < images.shape[-1]
    return F.interpolate(images, size=hw, mode="bilinear", align_corners=False,
                         antialias=shrink)
