"""Align audio feature sequences to the video frame rate (one token per video frame)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from csg_lightning.timing import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME

__all__ = ["FPS", "SAMPLES_PER_FRAME", "SAMPLE_RATE", "interpolate_to_frames", "num_frames_for"]


def num_frames_for(num_samples: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """Video frames covered by ``num_samples`` audio samples: ``round(N * fps / sample_rate)``."""
    return int(round(num_samples * fps / sample_rate))


def interpolate_to_frames(features: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Linearly resample a feature sequence along time.

    features: [B, T_in, C] (any rate, covering the same audio span as the frames)
    returns:  [B, num_frames, C]
    """
    if features.dim() != 3:
        raise ValueError(f"interpolate_to_frames: expected [B, T, C], got shape {tuple(features.shape)}")
    if features.shape[1] == num_frames:
        return features
    x = features.transpose(1, 2)  # [B, C, T_in]
    x = F.interpolate(x.float(), size=num_frames, mode="linear", align_corners=False)
    return x.transpose(1, 2).to(features.dtype)
