"""Hand-region loss amplification: confident hands -> boxes -> a mask at latent resolution.

A hand (21 points; left 92-112, right 113-133 in storage order) counts when its scores' mean is at
least ``min_mean`` and every score is above ``min_score``. Its box is the keypoint min/max widened by
``margin`` x the box's longer side (at least ``min_margin`` pixels) on every side. The mask marks the
latent cells (``downsample`` x ``downsample`` pixels each) that the box touches; the training loss is
multiplied by ``1 + (amplification - 1) * mask`` (see :mod:`csg_lightning.video.edm_loss`).
"""

from __future__ import annotations

import numpy as np

from csg_lightning.data.latent_grid import LATENT_DOWNSAMPLE
from csg_lightning.skeleton.layout import NUM_KEYPOINTS

HANDS = (slice(92, 113), slice(113, 134))  # left, right (storage order)


def hand_boxes(
    keypoints: np.ndarray,
    scores: np.ndarray,
    min_mean: float = 0.7,
    min_score: float = 0.5,
    margin: float = 0.15,
    min_margin: float = 4.0,
) -> tuple[np.ndarray, np.ndarray]:
    """keypoints [F, 134, 2] pixels, scores [F, 134] -> (boxes float32 [F, 2, 4] as x0, y0, x1, y1;
    valid bool [F, 2]) for the left and right hand of each frame."""
    kp, sc = np.asarray(keypoints, dtype=np.float32), np.asarray(scores, dtype=np.float32)
    if kp.ndim != 3 or kp.shape[1:] != (NUM_KEYPOINTS, 2) or sc.shape != kp.shape[:2]:
        raise ValueError(
            f"hand_boxes: expected keypoints [F, 134, 2] and scores [F, 134], got {kp.shape}, {sc.shape}"
        )
    boxes = np.zeros((kp.shape[0], 2, 4), dtype=np.float32)
    valid = np.zeros((kp.shape[0], 2), dtype=bool)
    for h, part in enumerate(HANDS):
        pts, conf = kp[:, part], sc[:, part]
        ok = (
            (conf.mean(axis=1) >= min_mean)
            & (conf > min_score).all(axis=1)
            & np.isfinite(pts).all(axis=(1, 2))
        )
        lo, hi = pts.min(axis=1), pts.max(axis=1)  # [F, 2]
        pad = np.maximum(margin * (hi - lo).max(axis=1, keepdims=True), min_margin)
        boxes[:, h, :2], boxes[:, h, 2:] = lo - pad, hi + pad
        valid[:, h] = ok
    return boxes, valid


def boxes_to_mask(
    boxes: np.ndarray, valid: np.ndarray, height: int, width: int, downsample: int = LATENT_DOWNSAMPLE
) -> np.ndarray:
    """boxes [F, K, 4] pixels of a ``width`` x ``height`` image, valid [F, K] -> float32 mask
    [F, height // downsample, width // downsample], 1 on latent cells a valid box touches."""
    h, w = height // downsample, width // downsample
    mask = np.zeros((boxes.shape[0], h, w), dtype=np.float32)
    for f, k in zip(*np.nonzero(valid), strict=True):
        x0, y0, x1, y1 = boxes[f, k] / downsample
        c0, r0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
        c1, r1 = min(int(np.ceil(x1)), w), min(int(np.ceil(y1)), h)
        if c0 < c1 and r0 < r1:
            mask[f, r0:r1, c0:c1] = 1.0
    return mask


def hand_mask(
    keypoints: np.ndarray,
    scores: np.ndarray,
    height: int,
    width: int,
    downsample: int = LATENT_DOWNSAMPLE,
    **box_options,
) -> np.ndarray:
    """keypoints [F, 134, 2] (pixels of the ``width`` x ``height`` image), scores [F, 134] ->
    float32 [F, height // downsample, width // downsample]. ``box_options``: see :func:`hand_boxes`."""
    boxes, valid = hand_boxes(keypoints, scores, **box_options)
    return boxes_to_mask(boxes, valid, height, width, downsample)
