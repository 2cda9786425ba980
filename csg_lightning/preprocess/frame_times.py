"""Which source frame each 25 fps output frame shows: a player's view of any source rate, CFR or VFR.

Output frame ``k`` is the picture on screen at ``t_k = k / fps``: the last source frame whose
presentation time is ``<= t_k`` (a ``PTS_EPSILON`` tolerance absorbs rounding of times that coincide
exactly, e.g. 30 fps frame 6 and 25 fps frame 5 both at 0.2 s). There are
``T = floor(duration * fps + 1e-6)`` output frames, so every ``t_k`` lies inside the source's span.
"""

from __future__ import annotations

import math

import numpy as np

from csg_lightning.timing import FPS as TARGET_FPS

PTS_EPSILON = 1e-6  # seconds; far below any frame interval, above float rounding of k / fps


def num_target_frames(duration: float, fps: float = TARGET_FPS) -> int:
    """T = floor(duration * fps + 1e-6): output frames of a source lasting ``duration`` seconds."""
    return max(0, math.floor(duration * fps + 1e-6))


def target_source_indices(source_pts: np.ndarray, duration: float, fps: float = TARGET_FPS) -> np.ndarray:
    """int64 [T] index of the source frame shown at each output time ``t_k = k / fps``, k = 0..T-1.

    source_pts: float [N] seconds of each source frame in presentation order (non-decreasing; the
    first normally 0). duration: seconds of the source (T from :func:`num_target_frames`). A ``t_k``
    before the first pts maps to frame 0.
    """
    pts = np.asarray(source_pts, dtype=np.float64)
    if pts.ndim != 1 or len(pts) == 0:
        raise ValueError(f"source_pts must be a non-empty 1-D array of seconds, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("source_pts holds NaN/inf, expected finite seconds")
    if np.any(np.diff(pts) < 0):
        raise ValueError("source_pts must be in presentation order (non-decreasing)")
    if not (fps > 0 and math.isfinite(duration)):
        raise ValueError(f"expected fps > 0 and a finite duration, got fps={fps}, duration={duration}")
    times = np.arange(num_target_frames(duration, fps), dtype=np.float64) / fps
    indices = np.searchsorted(pts, times + PTS_EPSILON, side="right") - 1
    return np.maximum(indices, 0).astype(np.int64)
