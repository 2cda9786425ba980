"""Temporal smoothing of keypoint tracks with a Savitzky-Golay filter.

The paper smooths every point with window 11, order 2 (at 25 fps: 0.44 s); the released code smooths
the outer lips with window 7 and the inner lips with 5 so that fast mouth closures survive. Our
default is 11 / 2 for every point; :class:`SmoothingConfig` exposes the lip windows by name.

Low-confidence points (score below ``confidence_threshold``) are not trusted: before filtering, each
point's positions in such frames are replaced by a linear interpolation in time between its nearest
confident frames (held constant before the first / after the last one), so a garbage position
cannot leak into neighbouring good frames through the filter. Their scores are left as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import savgol_filter

from csg_lightning.io.validation import InputError
from csg_lightning.skeleton.layout import NUM_KEYPOINTS

FACE_OFFSET = 24  # storage index of 68-point face landmark 0
OUTER_LIPS = np.arange(FACE_OFFSET + 48, FACE_OFFSET + 60)  # 68-point 48..59 -> storage 72..83
INNER_LIPS = np.arange(FACE_OFFSET + 60, FACE_OFFSET + 68)  # 68-point 60..67 -> storage 84..91


def savgol_smooth(x: np.ndarray, window_length: int = 11, polyorder: int = 2) -> np.ndarray:
    """Savitzky-Golay filter along axis 0 of [T, ...]; shorter sequences use the largest odd window
    that fits (and are returned unchanged when it would not exceed ``polyorder``)."""
    t = x.shape[0]
    w = min(window_length, t if t % 2 else t - 1)
    if w <= polyorder:
        return x
    return savgol_filter(x, w, polyorder, axis=0).astype(x.dtype, copy=False)


@dataclass
class SmoothingConfig:
    """Savitzky-Golay smoothing of the speaker's keypoints (windows in 25 fps frames, odd).

    window: window of every point except the lips (paper: 11); 1 disables smoothing.
    order: polynomial order of the filter (paper: 2); windows <= order leave points unchanged.
    outer_lip_window: window of the outer lips, 68-point 48-59 (release: 7; our default 11).
    inner_lip_window: window of the inner lips, 68-point 60-67 (release: 5; our default 11).
    confidence_threshold: points scored below this are filled by interpolation from confident frames
        before filtering (their scores are kept).
    """

    window: int = 11
    order: int = 2
    outer_lip_window: int = 11
    inner_lip_window: int = 11
    confidence_threshold: float = 0.3

    def __post_init__(self) -> None:
        for name in ("window", "outer_lip_window", "inner_lip_window"):
            value = getattr(self, name)
            if int(value) != value or value < 1 or value % 2 == 0:
                raise InputError(
                    f"smoothing config: field '{name}' must be an odd number of frames >= 1, got {value}"
                )
        if int(self.order) != self.order or self.order < 0:
            raise InputError(f"smoothing config: field 'order' must be an integer >= 0, got {self.order}")
        if not 0.0 <= self.confidence_threshold <= 1.0:
            raise InputError(
                f"smoothing config: field 'confidence_threshold' must be in [0, 1], got {self.confidence_threshold}"
            )

    def windows(self) -> np.ndarray:
        """int [134] window per storage point."""
        w = np.full(NUM_KEYPOINTS, self.window, dtype=np.int64)
        w[OUTER_LIPS] = self.outer_lip_window
        w[INNER_LIPS] = self.inner_lip_window
        return w


def fill_unconfident(keypoints: np.ndarray, confident: np.ndarray) -> np.ndarray:
    """keypoints [T, N, 2], confident bool [T, N] -> a copy whose unconfident entries are linearly
    interpolated in time from the point's confident frames (constant beyond the first / last one).
    Points with no confident frame at all are left as they are."""
    out = np.array(keypoints, dtype=np.float64)
    frames = np.arange(len(out))
    for j in np.flatnonzero(~confident.all(0) & confident.any(0)):
        good = confident[:, j]
        for c in range(2):
            out[~good, j, c] = np.interp(frames[~good], frames[good], out[good, j, c])
    return out


def smooth_skeleton(
    keypoints: np.ndarray,
    scores: np.ndarray,
    cfg: SmoothingConfig | None = None,
    confidence_threshold: float | None = None,
) -> np.ndarray:
    """keypoints [T, 134, 2] pixels, scores [T, 134] -> smoothed keypoints [T, 134, 2] (same dtype).

    Each point's track is filtered with its window (:meth:`SmoothingConfig.windows`) after its
    unconfident frames (score < ``confidence_threshold``, default ``cfg.confidence_threshold``) were
    filled by :func:`fill_unconfident`; those frames come back with the filled, smoothed positions.
    """
    cfg = cfg or SmoothingConfig()
    threshold = cfg.confidence_threshold if confidence_threshold is None else confidence_threshold
    keypoints, scores = np.asarray(keypoints), np.asarray(scores)
    if (
        keypoints.ndim != 3
        or keypoints.shape[1:] != (NUM_KEYPOINTS, 2)
        or scores.shape != keypoints.shape[:2]
    ):
        raise ValueError(
            f"smooth_skeleton expects keypoints [T, 134, 2] and scores [T, 134], got {keypoints.shape} and {scores.shape}"
        )
    filled = fill_unconfident(keypoints, scores >= threshold)
    out = savgol_smooth_parts(filled, cfg.windows(), cfg.order)
    return out.astype(keypoints.dtype if keypoints.dtype.kind == "f" else np.float32)


def savgol_smooth_parts(keypoints: np.ndarray, windows: np.ndarray, polyorder: int = 2) -> np.ndarray:
    """[T, N, ...] with a window per point (int [N]) -> each point's track filtered with its window
    (:func:`savgol_smooth`; the release: outer lips 7, inner lips 5, the rest 11)."""
    windows = np.asarray(windows)
    if windows.shape != (keypoints.shape[1],):
        raise ValueError(f"savgol_smooth_parts: {windows.shape} windows for {keypoints.shape[1]} points")
    out = np.empty_like(keypoints)
    for w in np.unique(windows):
        idx = windows == w
        out[:, idx] = savgol_smooth(keypoints[:, idx], int(w), polyorder)
    return out
