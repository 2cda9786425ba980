"""Pixel ranges of Stage 2: uint8 images <-> the model's float range [-1, 1]."""

from __future__ import annotations

import torch


def to_model_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (or float 0..255) images -> float32 in [-1, 1], same shape."""
    return pixels.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float images in [-1, 1] -> uint8 (clamped), same shape."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
