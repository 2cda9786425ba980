"""Cutting aligned keypoint/audio windows out of a clip.

A window is ``length = num_prefix + window`` frames starting at frame ``start``; its audio is the
samples ``[start * 640, (start + length) * 640)``, so frame f of the window <-> samples
``[f * 640, (f + 1) * 640)`` of the window's audio.

Clips shorter than ``length`` are padded at the end: keypoints repeat the last real frame with
score 0 (so their confidence mask is 0 and losses ignore them), audio is padded with silence.
"""

from __future__ import annotations

import numpy as np

from csg_lightning.io.audio import to_float
from csg_lightning.timing import SAMPLES_PER_FRAME


def choose_start(num_frames: int, length: int, rng: np.random.Generator | None) -> int:
    """Uniform start in [0, num_frames - length]; 0 when the clip is too short.

    ``rng=None`` picks the middle of the clip (a fixed window without randomness).
    """
    last = num_frames - length
    if last <= 0:
        return 0
    if rng is None:
        return last // 2
    return int(rng.integers(0, last + 1))


def cut_window(
    keypoints: np.ndarray,
    scores: np.ndarray,
    audio: np.ndarray,
    start: int,
    length: int,
    samples_per_frame: int = SAMPLES_PER_FRAME,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut ``length`` frames from ``start``.

    keypoints [T, 134, 2], scores [T, 134], audio int16 or float [N >= T * spf] ->
    (keypoints float32 [length, 134, 2], scores float32 [length, 134], audio float32 [length * spf]
    in [-1, 1]). Always returns fresh arrays (inputs may be read-only memory maps).
    """
    num_frames = keypoints.shape[0]
    if not 0 <= start < num_frames:
        raise ValueError(f"window start {start} outside a clip of {num_frames} frames")
    stop = min(start + length, num_frames)
    kp = np.array(keypoints[start:stop], dtype=np.float32)
    sc = np.array(scores[start:stop], dtype=np.float32)
    pad = length - (stop - start)
    if pad:
        kp = np.concatenate([kp, np.repeat(kp[-1:], pad, axis=0)])
        sc = np.concatenate([sc, np.zeros((pad, sc.shape[1]), dtype=np.float32)])
    a0, a1 = start * samples_per_frame, (start + length) * samples_per_frame
    wav = to_float(np.asarray(audio[a0:a1]))
    wav = np.array(wav, dtype=np.float32)  # own copy (to_float may return a view)
    if wav.shape[0] < a1 - a0:
        wav = np.concatenate([wav, np.zeros(a1 - a0 - wav.shape[0], dtype=np.float32)])
    return kp, sc, wav
