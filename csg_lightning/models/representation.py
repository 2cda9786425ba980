"""What the Stage-1 model regresses: z-scored local features (paper) or normalised absolute points.

``local``: the 246 features of ``csg_lightning.skeleton.local`` z-scored with the dataset
mean/std; the absolute position comes from the reference skeleton's neck at decoding time.
``absolute`` (ablation "no local representation"): the same 123 points in absolute pixel
coordinates, centred on the frame centre and divided by a quarter of the frame size (so a
512 x 512 frame maps to [-2, 2]); no per-feature statistics. Both decode to [..., 134, 2] pixels,
taking the 10 leg/foot points from the reference (the model does not generate them).
"""

from __future__ import annotations

import torch

from csg_lightning.skeleton.layout import NUM_KEYPOINTS, SkeletonLayout
from csg_lightning.skeleton.local import (
    CONFIDENCE_THRESHOLD,
    LOCAL_INDICES,
    NUM_LOCAL_POINTS,
    from_local,
    local_confidence,
    to_local,
)

_LOCAL_INDEX = torch.as_tensor(LOCAL_INDICES, dtype=torch.long)


def normalize(features: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """[..., 246] -> z-scores."""
    return (features - mean) / std


def denormalize(features: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`normalize`."""
    return features * std + mean


def encode_keypoints(
    keypoints: torch.Tensor, local: bool, mean: torch.Tensor, std: torch.Tensor, frame_size: float
) -> torch.Tensor:
    """[..., 134, 2] pixels -> [..., 246] model features."""
    if local:
        feats = to_local(keypoints).reshape(*keypoints.shape[:-2], 2 * NUM_LOCAL_POINTS)
        return normalize(feats, mean, std)
    points = keypoints[..., _LOCAL_INDEX.to(keypoints.device), :]
    return ((points - frame_size / 2) / (frame_size / 4)).reshape(*keypoints.shape[:-2], 2 * NUM_LOCAL_POINTS)


def encode_mask(scores: torch.Tensor, local: bool) -> torch.Tensor:
    """[..., 134] scores -> [..., 123] float mask of confident model points (> 0.7)."""
    point_scores = local_confidence(scores) if local else scores[..., _LOCAL_INDEX.to(scores.device)]
    return (point_scores > CONFIDENCE_THRESHOLD).to(torch.float32)


def decode_features(
    features: torch.Tensor,
    reference_keypoints: torch.Tensor,
    local: bool,
    mean: torch.Tensor,
    std: torch.Tensor,
    frame_size: float,
) -> torch.Tensor:
    """[B, T, 246] model features + reference [B, 134, 2] -> [B, T, 134, 2] pixels."""
    b, t, _ = features.shape
    legs = reference_keypoints[:, None, SkeletonLayout.LEGS].expand(b, t, -1, -1)
    if local:
        points = denormalize(features.float(), mean, std).reshape(b, t, NUM_LOCAL_POINTS, 2)
        neck = reference_keypoints[:, None, SkeletonLayout.NECK].expand(b, t, -1)
        return from_local(points, neck, legs)
    points = features.float().reshape(b, t, NUM_LOCAL_POINTS, 2) * (frame_size / 4) + frame_size / 2
    out = torch.full((b, t, NUM_KEYPOINTS, 2), float("nan"), dtype=points.dtype, device=points.device)
    out[:, :, _LOCAL_INDEX.to(points.device)] = points
    shoulders = out[:, :, [SkeletonLayout.LEFT_SHOULDER, SkeletonLayout.RIGHT_SHOULDER]]
    out[:, :, SkeletonLayout.NECK] = shoulders.mean(dim=2)
    out[:, :, SkeletonLayout.LEGS] = legs
    return out


def generated_scores(reference_scores: torch.Tensor, num_frames: int) -> torch.Tensor:
    """[B, 134] reference scores -> [B, T, 134]: 1.0 for generated points and the neck, the
    reference scores for the leg/foot points copied from the reference."""
    b = reference_scores.shape[0]
    scores = torch.ones(b, num_frames, NUM_KEYPOINTS, dtype=torch.float32, device=reference_scores.device)
    scores[:, :, SkeletonLayout.LEGS] = reference_scores[:, None, SkeletonLayout.LEGS].float()
    return scores
