"""Turn a clean synthetic pose into what a whole-body pose estimator would report.

Scores are mostly 0.8-1.0 with temporally correlated noise; hips, ears (when the head turns)
and fingertips are less sure; fast hands blur; hands sometimes go through low-confidence
"occluded" episodes where the estimate also wanders; points outside the frame are clamped to the
border with a score near zero. Positions get a small, slightly correlated jitter.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from csg_lightning.data.corpus.motion import Pose, smooth_noise
from csg_lightning.data.corpus.speaker import Speaker
from csg_lightning.skeleton.layout import NUM_KEYPOINTS, SkeletonLayout
from csg_lightning.timing import FPS

L = SkeletonLayout
_FINGERTIPS = np.array([4, 8, 12, 16, 20])


def _base_scores(rng: np.random.Generator, n: int, points: np.ndarray, low: float, high: float) -> np.ndarray:
    """Scores [n, len(points)] fluctuating smoothly inside [low, high]."""
    mid, half = 0.5 * (low + high), 0.5 * (high - low)
    wobble = 0.6 * smooth_noise(rng, n, 6.0, len(points)) + 0.4 * rng.standard_normal((n, len(points)))
    return mid + half * np.tanh(0.8 * wobble)


def observe(
    pose: Pose, speaker: Speaker, rng: np.random.Generator, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Estimator-like keypoints [T, 134, 2] and scores [T, 134] (float64) of ``pose``.

    ``size`` is the (square) frame size in pixels; every returned point lies inside the frame.
    The neck is the mean of the observed shoulders and scores the smaller of their two scores.
    """
    clean = pose.keypoints
    n = len(clean)
    scores = np.zeros((n, NUM_KEYPOINTS))
    scores[:, L.BODY] = _base_scores(rng, n, L.BODY, 0.84, 0.99)
    scores[:, [L.LEFT_HIP, L.RIGHT_HIP]] = _base_scores(rng, n, np.arange(2), 0.62, 0.86)
    scores[:, L.FACE] = _base_scores(rng, n, L.FACE, 0.86, 0.98)
    scores[:, L.FACE[:17]] -= 0.08  # the jaw line is less certain than eyes and mouth
    # Ears fade as the head turns them away from the camera.
    ear_visible = 1.0 / (1.0 + np.exp(-(pose.ear_depth + 0.35) * 12.0))
    scores[:, [3, 4]] *= 0.45 + 0.55 * ear_visible
    scores[:, L.LEGS] = _base_scores(rng, n, L.LEGS, 0.2, 0.5)

    jitter = np.zeros((n, NUM_KEYPOINTS, 2))
    for idx, sigma in ((L.BODY, 0.9), (L.FACE, 0.5), (L.FEET, 2.0)):
        jitter[:, idx] = sigma * gaussian_filter1d(rng.standard_normal((n, len(idx), 2)), 0.7, axis=0)

    for hand, wrist, speed in ((L.LEFT_HAND, L.LEFT_WRIST, pose.hand_speed[:, 0]),
                               (L.RIGHT_HAND, L.RIGHT_WRIST, pose.hand_speed[:, 1])):  # fmt: skip
        hi = min(0.99, speaker.hand_confidence + 0.08)
        sc = _base_scores(rng, n, hand, speaker.hand_confidence - 0.08, hi)
        sc[:, _FINGERTIPS] -= 0.06
        blur = np.clip((speed - 6.0) / 30.0, 0.0, 0.35)  # fast hands blur
        sc -= blur[:, None]
        jit = 1.4 * gaussian_filter1d(rng.standard_normal((n, len(hand), 2)), 0.7, axis=0)
        jit *= 1.0 + 3.0 * blur[:, None, None]
        # Occluded / failed-detection episodes.
        episodes = rng.poisson(speaker.occlusion_rate * n / FPS / 60.0)
        for _ in range(episodes):
            start = int(rng.integers(0, n))
            stop = min(n, start + int(rng.uniform(0.3, 1.5) * FPS))
            sc[start:stop] = rng.uniform(0.1, 0.5) + 0.08 * rng.standard_normal((stop - start, len(hand)))
            jit[start:stop] += rng.normal(0.0, 0.08 * speaker.hand_length, (1, len(hand), 2))
            jit[start:stop] += 3.0 * rng.standard_normal((stop - start, len(hand), 2))
            scores[start:stop, wrist] = np.minimum(scores[start:stop, wrist], rng.uniform(0.45, 0.75))
        scores[:, hand] = sc
        jitter[:, hand] = jit

    keypoints = clean + jitter
    outside = ((keypoints < 0) | (keypoints > size - 1)).any(axis=-1)
    scores[outside] = rng.uniform(0.0, 0.05, int(outside.sum()))
    keypoints = np.clip(keypoints, 0.0, size - 1.0)
    keypoints[:, L.NECK] = 0.5 * (keypoints[:, L.LEFT_SHOULDER] + keypoints[:, L.RIGHT_SHOULDER])
    scores[:, L.NECK] = np.minimum(scores[:, L.LEFT_SHOULDER], scores[:, L.RIGHT_SHOULDER])
    scores = np.clip(scores, 0.0, 1.0)
    return keypoints, scores  # float64: generate.quantize rounds them to their grid
