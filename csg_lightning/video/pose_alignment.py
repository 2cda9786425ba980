"""Aligning a driving skeleton sequence to the reference person's body (scale and offset).

The vertical map ``y' = a * y + b`` is fitted by least squares between the driving frames' body
keypoints and the reference body's same keypoints (only points confident in both). Coordinates here are pixels, so the
horizontal scale equals ``a`` (MimicMotion fits in width/height-normalised coordinates and rescales
``a`` by the aspect ratios, which is the same map); the horizontal offset makes the mean x of the
aligned body equal the reference's. The same map is applied to every point (body, feet, face, hands).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Upper body in storage order (COCO 0-12: face points of the body, shoulders, elbows, wrists, hips) + neck.
BODY_POINTS = np.array(list(range(13)) + [17])


@dataclass(frozen=True)
class Alignment:
    """x' = scale_x * x + offset_x, y' = scale_y * y + offset_y (pixels)."""

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float

    def apply(self, keypoints: np.ndarray) -> np.ndarray:
        """keypoints [..., 134, 2] -> aligned copy (float32)."""
        kp = np.asarray(keypoints, dtype=np.float32)
        scale = np.array([self.scale_x, self.scale_y], dtype=np.float32)
        offset = np.array([self.offset_x, self.offset_y], dtype=np.float32)
        return kp * scale + offset


def fit_alignment(
    reference_keypoints: np.ndarray,
    reference_scores: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    fit_frames: int | None = 25,
    min_score: float = 0.3,
    points: np.ndarray = BODY_POINTS,
) -> Alignment:
    """Fit the driving sequence to the reference body.

    reference_keypoints [134, 2], reference_scores [134]: the reference image's pose (pixels).
    keypoints [T, 134, 2], scores [T, 134]: the driving poses (pixels). ``fit_frames``: use the first
    frames only (None: all). Returns the identity when fewer than two usable points exist.
    """
    ref_kp, ref_sc = np.asarray(reference_keypoints, np.float64), np.asarray(reference_scores, np.float64)
    kp, sc = np.asarray(keypoints, np.float64), np.asarray(scores, np.float64)
    if (
        kp.ndim != 3
        or sc.shape != kp.shape[:2]
        or ref_kp.shape != kp.shape[1:]
        or ref_sc.shape != sc.shape[1:]
    ):
        raise ValueError(
            "fit_alignment: expected reference [134, 2] / [134] and driving [T, 134, 2] / [T, 134], got "
            f"{ref_kp.shape}, {ref_sc.shape}, {kp.shape}, {sc.shape}"
        )
    if fit_frames is not None:
        kp, sc = kp[:fit_frames], sc[:fit_frames]
    use = (sc[:, points] > min_score) & (ref_sc[points] > min_score)[None]  # [T, P]
    drv = kp[:, points][use]  # [n, 2]
    ref = np.broadcast_to(ref_kp[points], kp[:, points].shape)[use]
    if len(drv) < 2 or np.ptp(drv[:, 1]) < 1e-6:
        return Alignment(1.0, 1.0, 0.0, 0.0)
    design = np.stack([drv[:, 1], np.ones(len(drv))], axis=1)
    (scale, offset_y), *_ = np.linalg.lstsq(design, ref[:, 1], rcond=None)
    offset_x = float(np.mean(ref[:, 0] - scale * drv[:, 0]))
    return Alignment(float(scale), float(scale), offset_x, float(offset_y))


def align_poses(
    reference_keypoints: np.ndarray,
    reference_scores: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    **options,
) -> np.ndarray:
    """Driving keypoints [T, 134, 2] mapped onto the reference body (see :func:`fit_alignment`)."""
    return fit_alignment(reference_keypoints, reference_scores, keypoints, scores, **options).apply(keypoints)
