"""``anchor_start``: a generated skeleton sequence made to start exactly at the reference pose.

Stage 1 continues a prefix of the reference pose, so its first frame should be that pose; a briefly trained
model misses it (the demo's, 5 minutes on CPU: the body 12-22 px and the wrists up to 60 px off at 512 px,
and it keeps that offset). Every point of frame t is moved by ``(reference - frame 0) * exp(-t / frames)``:
frame 0 becomes the reference pose (no jump from the photo to the first frame), and the correction fades
over ``frames`` so that the sequence's own motion is kept.
"""

from __future__ import annotations

import numpy as np


def anchor_start(keypoints: np.ndarray, reference_keypoints: np.ndarray, frames: float) -> np.ndarray:
    """keypoints [T, K, 2], reference [K, 2] (same pixels), ``frames`` > 0 the fade's time constant -> anchored
    copy (float32)."""
    kp = np.asarray(keypoints, dtype=np.float32)
    ref = np.asarray(reference_keypoints, dtype=np.float32)
    if kp.ndim != 3 or ref.shape != kp.shape[1:]:
        raise ValueError(f"anchor_start: expected keypoints [T, K, 2] and reference [K, 2], got {kp.shape}, {ref.shape}")
    if not frames > 0:
        raise ValueError(f"anchor_start: frames must be > 0, got {frames}")
    if len(kp) == 0:
        return kp.copy()
    fade = np.exp(-np.arange(len(kp), dtype=np.float32) / np.float32(frames))[:, None, None]
    return kp + fade * (ref - kp[0])[None]
