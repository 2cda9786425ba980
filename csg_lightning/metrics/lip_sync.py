"""LipSync: a lip-motion proxy, the correlation of mouth opening with the audio loudness envelope.

Definition, per window: mouth opening per frame = distance in pixels between the inner-lip points
(storage 24+62 upper, 24+66 lower); loudness per frame = RMS of its 640 audio samples (16 kHz at
25 fps); both smoothed with a Gaussian of ``smooth_sigma`` frames (default 1.0). The window's score
is the Pearson correlation of the two series over the frames where both lip points are confident
(score > 0.7); a constant series (a frozen mouth, silence) or fewer than 3 usable frames gives 0.
LipSync = mean over windows, in [-1, 1]; higher is better.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from csg_lightning.metrics.running_mean import RunningMean
from csg_lightning.metrics.skeleton_inputs import check_audio, check_skeleton
from csg_lightning.skeleton.layout import SkeletonLayout
from csg_lightning.skeleton.local import CONFIDENCE_THRESHOLD

_UP, _LOW = SkeletonLayout.UPPER_INNER_LIP, SkeletonLayout.LOWER_INNER_LIP


def loudness_envelope(audio: np.ndarray, num_frames: int, samples_per_frame: int = 640) -> np.ndarray:
    """audio [N >= T * spf] -> RMS per frame [T]."""
    a = np.asarray(audio[: num_frames * samples_per_frame], dtype=np.float64).reshape(
        num_frames, samples_per_frame
    )
    return np.sqrt((a**2).mean(1))


def window_correlation(
    opening: np.ndarray, loudness: np.ndarray, valid: np.ndarray, smooth_sigma: float
) -> float:
    """Pearson correlation of two [T] series over ``valid`` frames (0 when undefined)."""
    if smooth_sigma > 0:
        opening, loudness = (gaussian_filter1d(x, smooth_sigma, mode="nearest") for x in (opening, loudness))
    x, y = opening[valid], loudness[valid]
    if x.size < 3 or any(np.ptp(v) <= 1e-9 * max(1.0, np.abs(v).max()) for v in (x, y)):
        return 0.0  # a constant series: no correlation defined
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / np.sqrt((x**2).sum() * (y**2).sum()))


class LipSync(RunningMean):
    """Mean per-window correlation of mouth opening and loudness; ``update(keypoints, scores, audio)``."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, fps: int = 25, sample_rate: int = 16000, smooth_sigma: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.samples_per_frame, self.smooth_sigma = sample_rate // fps, smooth_sigma

    def update(self, keypoints: torch.Tensor, scores: torch.Tensor, audio: torch.Tensor) -> None:
        """keypoints [B, T, 134, 2] pixels, scores [B, T, 134], audio [B, N >= T * 640]."""
        check_skeleton(keypoints, scores, "LipSync")
        check_audio(audio, keypoints, "LipSync", self.samples_per_frame)
        t = keypoints.shape[1]
        kp, sc = keypoints.detach().cpu().double().numpy(), scores.detach().cpu().numpy()
        for b, au in enumerate(audio.detach().cpu().numpy()):
            opening = np.linalg.norm(kp[b, :, _UP] - kp[b, :, _LOW], axis=-1)
            valid = (sc[b, :, _UP] > CONFIDENCE_THRESHOLD) & (sc[b, :, _LOW] > CONFIDENCE_THRESHOLD)
            valid &= np.isfinite(opening)
            opening = np.where(valid, opening, 0.0)
            loud = loudness_envelope(au, t, self.samples_per_frame)
            self.total += window_correlation(opening, loud, valid, self.smooth_sigma)
            self.count += 1
