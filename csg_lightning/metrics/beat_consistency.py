"""BC: beat consistency between speech onsets and motion beats.

Definition, per window (keypoints [T, 134, 2] pixels at ``fps``, audio [N] at ``sample_rate``):

- audio beats: ``librosa.onset.onset_detect`` on the window's audio (hop 10 ms, times in seconds);
- motion speed: per frame, the mean over upper-body (storage 0-12) and hand (92-133) points of the
  central-difference speed in pixels per frame, using only points confident (score > 0.7) in the
  neighbouring frames; smoothed with a Gaussian of ``smooth_sigma`` frames (default 1.0 = 40 ms);
- motion beats: local minima of the smoothed speed (the pauses that end a stroke) with a
  prominence of at least ``min_prominence`` pixels per frame (default 0.1, so numerical jitter of a
  still skeleton is no beat), at time frame / fps;
- score: for every audio beat, exp(-d^2 / (2 sigma^2)) with d the time to the nearest motion beat
  (0 when the window has no motion beat); ``sigma`` = 0.1 s by default.

BC = sum of the scores over all audio beats of all windows / number of audio beats (so higher is
better, in [0, 1]). Windows without audio onsets do not count. ``window_scores`` keeps the mean per
window (for the report's distribution plot).

How this differs from the two BC implementations most papers copy (both read from their public code):

- **EMAGE** (``emage_evaltools`` ``alignment``): a beat score per joint (its upper-body joints), each joint's
  own speed curve, minima by ``argrelextrema(order=...)``, and a **speed gate**: a minimum counts only where
  that joint's normalised speed is above a threshold (0.3). A complete stop (speed ~0, the clearest
  "full stop" of a gesture) is therefore dropped, and a still skeleton gets no beats at all. Audio onsets use
  hop 512 (32 ms at 16 kHz). Ours: one speed curve pooled over the upper-body and hand points, minima by
  prominence (a full stop is a beat; numerical jitter is not), 10 ms onset hop.
- **DiffGesture** (``test_ted.py``): the motion signal is the frame-to-frame change of four arm angles
  (15 fps, 34-frame windows); a beat is a strict 1-frame local minimum with a one-sided drop >= 0.03, and a
  window **without any motion beat is skipped**, so a model that rarely pauses is scored only on its lucky
  windows. Ours counts such windows with score 0 for each of their audio beats. The per-beat score
  exp(-d^2 / 2 sigma^2), sigma = 0.1 s, and the pooling over audio beats are the same as ours.
"""

from __future__ import annotations

import hashlib

import librosa
import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from csg_lightning.metrics.skeleton_inputs import BEAT_POINTS, check_audio, check_skeleton
from csg_lightning.skeleton.local import CONFIDENCE_THRESHOLD

_ONSETS: dict[bytes, np.ndarray] = {}  # audio digest -> onsets: every row of a report scores the same audio
_ONSETS_MAX = 4096


def audio_onsets(audio: np.ndarray, sample_rate: int = 16000, hop_seconds: float = 0.01) -> np.ndarray:
    """Onset times in seconds of mono audio [N] (librosa onset detection; remembered per audio content)."""
    audio = np.ascontiguousarray(audio, dtype=np.float32)
    if audio.size == 0 or not np.any(audio):
        return np.zeros(0)
    key = hashlib.blake2b(audio.tobytes(), digest_size=16, person=f"{sample_rate}:{hop_seconds}".encode()[:16])
    key = key.digest()
    if key not in _ONSETS:
        hop = max(1, round(hop_seconds * sample_rate))
        if len(_ONSETS) >= _ONSETS_MAX:
            _ONSETS.clear()
        _ONSETS[key] = librosa.onset.onset_detect(y=audio, sr=sample_rate, hop_length=hop, units="time")
    return _ONSETS[key].copy()


def motion_speed(keypoints: np.ndarray, scores: np.ndarray, smooth_sigma: float = 1.0) -> np.ndarray:
    """keypoints [T, 134, 2], scores [T, 134] -> smoothed upper-body + hand speed [T] (pixels / frame)."""
    kp = np.asarray(keypoints, dtype=np.float64)[:, BEAT_POINTS.numpy()]
    ok = np.asarray(scores)[:, BEAT_POINTS.numpy()] > CONFIDENCE_THRESHOLD
    ok &= np.isfinite(kp).all(-1)
    if kp.shape[0] < 3:
        return np.zeros(kp.shape[0])
    kp = np.where(ok[..., None], kp, 0.0)
    velocity = np.gradient(kp, axis=0)  # central differences
    valid = ok.copy()
    valid[1:-1] = ok[:-2] & ok[2:]
    valid[0], valid[-1] = ok[0] & ok[1], ok[-2] & ok[-1]
    speed = np.linalg.norm(velocity, axis=-1)
    count = valid.sum(1)
    speed = np.where(count > 0, (speed * valid).sum(1) / np.maximum(count, 1), 0.0)
    return gaussian_filter1d(speed, smooth_sigma, mode="nearest") if smooth_sigma > 0 else speed


def motion_beats(speed: np.ndarray, min_prominence: float = 0.1) -> np.ndarray:
    """Frame indices of the local minima of a speed curve [T] with at least ``min_prominence``."""
    peaks, _ = find_peaks(-np.asarray(speed, dtype=np.float64), prominence=min_prominence)
    return peaks


def beat_scores(audio_beats: np.ndarray, motion_beat_times: np.ndarray, sigma: float = 0.1) -> np.ndarray:
    """Per audio beat (seconds) exp(-d^2 / 2 sigma^2), d = distance to the nearest motion beat (seconds)."""
    audio_beats = np.asarray(audio_beats, dtype=np.float64)
    if motion_beat_times.size == 0:
        return np.zeros(audio_beats.size)
    d = np.abs(audio_beats[:, None] - np.asarray(motion_beat_times, dtype=np.float64)[None]).min(1)
    return np.exp(-(d**2) / (2 * sigma**2))


class BeatConsistency(Metric):
    """Beat consistency score (see the module docstring); ``update(keypoints, scores, audio)``."""

    full_state_update = False
    higher_is_better = True

    def __init__(
        self,
        fps: int = 25,
        sample_rate: int = 16000,
        sigma: float = 0.1,
        smooth_sigma: float = 1.0,
        min_prominence: float = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.fps, self.sample_rate, self.sigma = fps, sample_rate, sigma
        self.smooth_sigma, self.min_prominence = smooth_sigma, min_prominence
        self.add_state("score_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_beats", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("window_scores", [], dist_reduce_fx="cat")

    def update(self, keypoints: torch.Tensor, scores: torch.Tensor, audio: torch.Tensor) -> None:
        """keypoints [B, T, 134, 2] pixels, scores [B, T, 134], audio [B, N] (frame f <-> its samples)."""
        check_skeleton(keypoints, scores, "BeatConsistency")
        spf = self.sample_rate // self.fps
        check_audio(audio, keypoints, "BeatConsistency", spf)
        t = keypoints.shape[1]
        per_window = []
        for kp, sc, au in zip(keypoints.detach().cpu().numpy(), scores.detach().cpu().numpy(),
                              audio.detach().cpu().numpy(), strict=True):  # fmt: skip
            onsets = audio_onsets(au[: t * spf], self.sample_rate)
            if onsets.size == 0:
                continue
            beats = motion_beats(motion_speed(kp, sc, self.smooth_sigma), self.min_prominence) / self.fps
            s = beat_scores(onsets, beats, self.sigma)
            self.score_sum += float(s.sum())
            self.num_beats += float(s.size)
            per_window.append(float(s.mean()))
        self.window_scores.append(torch.tensor(per_window, dtype=torch.float64, device=self.device))

    def compute(self) -> torch.Tensor:
        if self.num_beats == 0:
            return torch.tensor(float("nan"), dtype=torch.float64)
        return self.score_sum / self.num_beats

    def per_window(self) -> torch.Tensor:
        """Mean score of each window with audio onsets [num_windows], gathered from all DDP ranks."""
        with self.sync_context(should_sync=True, should_unsync=True):
            scores = self.window_scores
            if isinstance(scores, torch.Tensor):
                return scores.clone()
            return dim_zero_cat(scores).clone() if scores else torch.zeros(0, dtype=torch.float64)
