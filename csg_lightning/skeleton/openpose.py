"""Re-ordering to the OpenPose-18-first layout that DWPose / MimicMotion drawing uses.

OpenPose-18 body order: 0 nose, 1 neck, 2 R-shoulder, 3 R-elbow, 4 R-wrist, 5 L-shoulder,
6 L-elbow, 7 L-wrist, 8 R-hip, 9 R-knee, 10 R-ankle, 11 L-hip, 12 L-knee, 13 L-ankle, 14 R-eye,
15 L-eye, 16 R-ear, 17 L-ear. The rest follows in storage order: feet (6), face (68), left hand
(21), right hand (21) - 134 points in all.
"""

from __future__ import annotations

import numpy as np

# OPENPOSE_FROM_STORAGE[i] = storage index of OpenPose-layout point i.
_BODY18_FROM_STORAGE = (0, 17, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)
OPENPOSE_FROM_STORAGE = np.array(_BODY18_FROM_STORAGE + tuple(range(18, 134)))
STORAGE_FROM_OPENPOSE = np.argsort(OPENPOSE_FROM_STORAGE)

# OpenPose-18 limbs (0-based, in OpenPose order) and their standard colours (RGB).
OPENPOSE_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)  # fmt: skip
OPENPOSE_COLORS = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85),
)  # fmt: skip


def to_openpose_order(points: np.ndarray, axis: int = -2) -> np.ndarray:
    """Storage order -> OpenPose-18-first order along ``axis`` (134 long)."""
    return np.take(points, OPENPOSE_FROM_STORAGE, axis=axis)


def from_openpose_order(points: np.ndarray, axis: int = -2) -> np.ndarray:
    """OpenPose-18-first order -> storage order along ``axis`` (exact inverse)."""
    return np.take(points, STORAGE_FROM_OPENPOSE, axis=axis)
