"""The local representation the Stage-1 model sees, and its exact inverse.

Body points are taken relative to the neck, face points relative to the nose, and each hand
relative to its body wrist (storage index 9 for the left hand, 10 for the right). The neck (the
origin) and the 10 leg/foot points are dropped, leaving 123 points x 2 = 246 features per frame,
in this order: 13 upper-body points (storage 0..12), 68 face points, 21 left-hand, 21 right-hand.

Works on numpy arrays and torch tensors alike; shapes are ``[..., 134, 2]`` <-> ``[..., 123, 2]``.
"""

from __future__ import annotations

import numpy as np
import torch

from csg_lightning.skeleton.layout import NUM_KEYPOINTS, SkeletonLayout

CONFIDENCE_THRESHOLD = 0.7
NUM_LOCAL_POINTS = 123
NUM_LOCAL_FEATURES = 2 * NUM_LOCAL_POINTS

L = SkeletonLayout
LOCAL_INDICES = np.concatenate([L.UPPER_BODY, L.FACE, L.LEFT_HAND, L.RIGHT_HAND])
ANCHOR_INDICES = np.concatenate(
    [
        np.full(len(L.UPPER_BODY), L.NECK),
        np.full(len(L.FACE), L.NOSE),
        np.full(len(L.LEFT_HAND), L.LEFT_WRIST),
        np.full(len(L.RIGHT_HAND), L.RIGHT_WRIST),
    ]
)
# Slices of the 123 local points.
LOCAL_BODY = slice(0, 13)
LOCAL_FACE = slice(13, 81)
LOCAL_LEFT_HAND = slice(81, 102)
LOCAL_RIGHT_HAND = slice(102, 123)
LOCAL_GROUPS = {"body": LOCAL_BODY, "face": LOCAL_FACE, "hands": slice(81, 123)}

assert len(LOCAL_INDICES) == NUM_LOCAL_POINTS


def _check(x, n: int, name: str, trailing: int = 1) -> None:
    dim = x.shape[-1 - trailing] if trailing else x.shape[-1]
    if dim != n:
        raise ValueError(f"{name}: expected {n} points along dim {-1 - trailing}, got shape {tuple(x.shape)}")


def to_local(keypoints):
    """[..., 134, 2] absolute pixels -> [..., 123, 2] local offsets."""
    _check(keypoints, NUM_KEYPOINTS, "keypoints")
    return keypoints[..., LOCAL_INDICES, :] - keypoints[..., ANCHOR_INDICES, :]


def from_local(local, neck, legs=None):
    """Exact inverse of :func:`to_local`.

    local: [..., 123, 2]; neck: [..., 2] absolute neck position; legs: optional [..., 10, 2]
    absolute positions of ``SkeletonLayout.LEGS`` (knees, ankles, feet). Without ``legs`` those
    10 points are NaN: give them a zero score or fill them from a reference skeleton.
    Returns [..., 134, 2].
    """
    _check(local, NUM_LOCAL_POINTS, "local")
    is_torch = isinstance(local, torch.Tensor)
    shape = (*local.shape[:-2], NUM_KEYPOINTS, 2)
    out = torch.full(shape, float("nan"), dtype=local.dtype, device=local.device) if is_torch else (
        np.full(shape, np.nan, dtype=local.dtype)
    )
    body = local[..., LOCAL_BODY, :] + neck[..., None, :]
    out[..., L.UPPER_BODY, :] = body
    out[..., L.NECK, :] = neck
    out[..., L.FACE, :] = local[..., LOCAL_FACE, :] + body[..., L.NOSE : L.NOSE + 1, :]
    out[..., L.LEFT_HAND, :] = local[..., LOCAL_LEFT_HAND, :] + body[..., L.LEFT_WRIST : L.LEFT_WRIST + 1, :]
    out[..., L.RIGHT_HAND, :] = local[..., LOCAL_RIGHT_HAND, :] + body[..., L.RIGHT_WRIST : L.RIGHT_WRIST + 1, :]
    if legs is not None:
        _check(legs, len(L.LEGS), "legs")
        out[..., L.LEGS, :] = legs
    return out


def confidence_mask(scores, threshold: float = CONFIDENCE_THRESHOLD):
    """Boolean mask of confident points: score > threshold (scores <= threshold are masked)."""
    return scores > threshold


def local_confidence(scores):
    """[..., 134] scores -> [..., 123] scores of the local points.

    A local offset is only as reliable as both of its ends, so each local point gets the smaller
    of its own score and its anchor's score.
    """
    _check(scores, NUM_KEYPOINTS, "scores", trailing=0)
    own, anchor = scores[..., LOCAL_INDICES], scores[..., ANCHOR_INDICES]
    if isinstance(scores, torch.Tensor):
        return torch.minimum(own, anchor)
    return np.minimum(own, anchor)
