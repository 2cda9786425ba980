"""Shape checks and shared views of skeleton metric inputs (keypoints [B, T, 134, 2], scores [B, T, 134])."""

from __future__ import annotations

import torch

from csg_lightning.skeleton.layout import NUM_KEYPOINTS, SkeletonLayout
from csg_lightning.skeleton.local import CONFIDENCE_THRESHOLD, local_confidence, to_local

# Points whose speed defines motion beats: upper body (0-12) and both hands (92-133).
BEAT_POINTS = torch.as_tensor([*SkeletonLayout.UPPER_BODY.tolist(), *SkeletonLayout.HANDS.tolist()])


def check_skeleton(keypoints: torch.Tensor, scores: torch.Tensor, metric: str) -> None:
    """Raise a ValueError naming ``metric`` unless keypoints [B, T, 134, 2] and scores [B, T, 134] agree."""
    if keypoints.ndim != 4 or keypoints.shape[2:] != (NUM_KEYPOINTS, 2):
        raise ValueError(
            f"{metric}: keypoints must be [B, T, {NUM_KEYPOINTS}, 2], got {tuple(keypoints.shape)}"
        )
    if scores.shape != keypoints.shape[:3]:
        raise ValueError(
            f"{metric}: scores must be [B, T, {NUM_KEYPOINTS}] like keypoints, got {tuple(scores.shape)}"
        )


def check_audio(audio: torch.Tensor, keypoints: torch.Tensor, metric: str, samples_per_frame: int) -> None:
    """audio [B, N] with N >= T * samples_per_frame."""
    b, t = keypoints.shape[:2]
    if audio.ndim != 2 or audio.shape[0] != b or audio.shape[1] < t * samples_per_frame:
        raise ValueError(
            f"{metric}: audio must be [B={b}, N >= {t * samples_per_frame}] for {t} frames, got {tuple(audio.shape)}"
        )


def local_points(keypoints: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """-> local points [B, T, 123, 2] (float64 pixels, unconfident set to 0) and their mask [B, T, 123]."""
    local = to_local(keypoints.detach().to(torch.float64))
    mask = (local_confidence(scores.detach()) > CONFIDENCE_THRESHOLD) & torch.isfinite(local).all(-1)
    return torch.where(mask[..., None], local, torch.zeros_like(local)), mask.to(torch.float64)
