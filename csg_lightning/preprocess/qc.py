"""Quality checks of one segment (a shot, or a piece of a long one): keep it iff every check passes.

Each rule compares one measured ``value`` with one named threshold of :class:`QCConfig` and returns
a :class:`CheckResult`. The rules, in report order (:data:`CHECK_NAMES`):

- ``min_length``: segment seconds >= ``min_seconds``.
- ``max_length``: segment seconds <= ``max_seconds`` (long shots are split by :func:`split_segment`
  first, so this only catches what splitting could not).
- ``single_speaker``: fraction of frames with a large (area >= ``second_person_area_ratio`` of the
  speaker's) and confident (box score >= ``second_person_score``) second person
  <= ``second_person_max_fraction``.
- ``person_present``: fraction of frames with a speaker >= ``min_person_fraction``.
- ``body_confidence``: mean score of ``body_points`` over frames with a speaker >= ``min_body_score``.
- ``hand_confidence``: mean score of ``hand_points`` over frames with a speaker >= ``min_hand_score``.
- ``in_frame``: fraction of frames with a speaker whose confident (>= ``in_frame_min_score``)
  ``in_frame_points`` all lie inside the frame shrunk by ``in_frame_margin`` (a frame with none
  confident fails) >= ``min_in_frame_fraction``.
- ``speech_present``: fraction of 40 ms audio frames (640 samples at 16 kHz, the 25 fps video
  frames) whose RMS level ``20 log10(rms)`` dBFS (full scale 1.0: a full-scale sine is -3 dBFS) is
  above ``silence_db`` >= ``min_speech_fraction``. An energy measure, not a voice detector:
  loud music passes it.
- ``av_duration``: |video duration - audio duration| of the source <= ``max_av_offset_seconds``.
- ``lip_sync`` (only when ``lip_sync`` is true): Pearson correlation of the mouth opening (inner
  lips 62-66, where both score >= ``lip_min_score``) with the per-frame RMS, both Gaussian-smoothed
  (sigma 1 frame), >= ``min_lip_sync`` (0 when undefined: fewer than 3 usable frames, a constant series).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from csg_lightning.io.validation import InputError
from csg_lightning.preprocess.crop import point_indices
from csg_lightning.preprocess.segments import SpeakerTrack
from csg_lightning.skeleton.layout import SkeletonLayout
from csg_lightning.timing import (  # 640: one 40 ms audio frame per video frame
    FPS,
    SAMPLES_PER_FRAME,
)

CHECK_NAMES = (
    "min_length", "max_length", "single_speaker", "person_present", "body_confidence",
    "hand_confidence", "in_frame", "speech_present", "av_duration", "lip_sync",
)  # fmt: skip


@dataclass
class QCConfig:
    """Thresholds of the segment checks (module docstring: what each rule measures).

    min_seconds, max_seconds: segment length bounds (clips shorter than a training window are padded,
        so 4 s is enough; 30 s pieces hold three 10 s windows).
    second_person_area_ratio, second_person_score: a second person at least this large relative to
        the speaker and this confident counts as a second speaker in that frame ...
    second_person_max_fraction: ... and more than this fraction of such frames rejects the segment.
    min_person_fraction: fraction of frames that must have a speaker.
    body_points, min_body_score: point groups (crop.POINT_GROUPS) and their minimum mean score.
    hand_points, min_hand_score: the same for the hands.
    in_frame_points, in_frame_min_score: points checked by ``in_frame`` and the score that makes one
        count; in_frame_margin: the margin, a fraction of the frame's shorter side;
        min_in_frame_fraction: fraction of speaker frames that must pass.
    silence_db, min_speech_fraction: a 40 ms frame is speech when its RMS is above silence_db dBFS;
        the fraction of such frames must be at least min_speech_fraction.
    max_av_offset_seconds: largest allowed difference of the source's video and audio durations.
    lip_sync: run the ``lip_sync`` check (off by default); lip_min_score: inner-lip score to use a
        frame; min_lip_sync: smallest accepted correlation.
    """

    min_seconds: float = 4.0
    max_seconds: float = 30.0
    second_person_area_ratio: float = 0.25
    second_person_score: float = 0.5
    second_person_max_fraction: float = 0.1
    min_person_fraction: float = 0.95
    body_points: list[str] = field(default_factory=lambda: ["upper_body", "neck"])
    min_body_score: float = 0.5
    hand_points: list[str] = field(default_factory=lambda: ["hands"])
    min_hand_score: float = 0.3
    in_frame_points: list[str] = field(default_factory=lambda: ["upper_body", "neck", "face", "hands"])
    in_frame_min_score: float = 0.3
    in_frame_margin: float = 0.01
    min_in_frame_fraction: float = 0.9
    silence_db: float = -40.0
    min_speech_fraction: float = 0.3
    max_av_offset_seconds: float = 0.25
    lip_sync: bool = False
    lip_min_score: float = 0.5
    min_lip_sync: float = 0.1

    def __post_init__(self) -> None:
        for name in ("min_seconds", "max_seconds", "max_av_offset_seconds", "in_frame_margin"):
            if not getattr(self, name) >= 0:
                raise InputError(f"qc config: field '{name}' must be >= 0, got {getattr(self, name)}")
        if self.max_seconds < self.min_seconds:
            raise InputError(
                f"qc config: field 'max_seconds' ({self.max_seconds}) must be >= min_seconds ({self.min_seconds})"
            )
        for name in ("second_person_score", "second_person_max_fraction", "min_person_fraction", "min_body_score",
                     "min_hand_score", "in_frame_min_score", "min_in_frame_fraction", "min_speech_fraction",
                     "lip_min_score"):  # fmt: skip
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"qc config: field '{name}' must be in [0, 1], got {getattr(self, name)}")
        if not self.in_frame_margin < 0.5:
            raise InputError(f"qc config: field 'in_frame_margin' must be < 0.5, got {self.in_frame_margin}")
        for name in ("body_points", "hand_points", "in_frame_points"):
            point_indices(getattr(self, name), f"qc config: field '{name}'")


@dataclass
class CheckResult:
    """One rule on one segment: the measured value, the threshold it is compared with, the verdict."""

    name: str
    value: float
    threshold: float
    passed: bool
    detail: str


def split_segment(start: int, stop: int, max_frames: int, min_frames: int = 0) -> list[tuple[int, int]]:
    """[start, stop) -> ceil(length / max_frames) consecutive near-equal pieces (lengths differ by at
    most 1, longest first) of at most max_frames. A shot shorter than ``min_frames`` or not longer
    than max_frames comes back whole. Pieces are at least max_frames / 2 long; with
    max_frames >= 2 * min_frames, none is shorter than min_frames."""
    if max_frames < 1 or min_frames < 0:
        raise ValueError(
            f"split_segment: need max_frames >= 1 and min_frames >= 0, got {max_frames}, {min_frames}"
        )
    length = stop - start
    if length <= max_frames or length < min_frames:
        return [(start, stop)]
    n = -(-length // max_frames)
    base, extra = divmod(length, n)
    pieces, a = [], start
    for k in range(n):
        b = a + base + (1 if k < extra else 0)
        pieces.append((a, b))
        a = b
    return pieces


def _result(name: str, value: float, threshold: float, passed: bool, detail: str) -> CheckResult:
    return CheckResult(name, float(value), float(threshold), bool(passed), detail)


def _fraction(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else 0.0


def rms_db(audio: np.ndarray, samples_per_frame: int = SAMPLES_PER_FRAME) -> np.ndarray:
    """audio float [N] -> RMS level in dBFS [N // samples_per_frame] (a trailing partial frame is dropped)."""
    n = len(audio) // samples_per_frame
    frames = np.asarray(audio[: n * samples_per_frame], np.float64).reshape(n, samples_per_frame)
    return 20.0 * np.log10(np.maximum(np.sqrt((frames**2).mean(1)), 1e-10))


def _gaussian_smooth(x: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    radius = max(1, int(math.ceil(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return np.convolve(np.pad(x, radius, mode="edge"), kernel / kernel.sum(), mode="valid")


def lip_audio_correlation(track: SpeakerTrack, audio: np.ndarray, min_score: float) -> float:
    """Pearson correlation of inner-lip opening and per-frame RMS (see module docstring), in [-1, 1]."""
    n = min(len(track), len(audio) // SAMPLES_PER_FRAME)
    if n < 3:
        return 0.0
    up, low = SkeletonLayout.UPPER_INNER_LIP, SkeletonLayout.LOWER_INNER_LIP
    kp, sc = np.asarray(track.keypoints[:n], np.float64), track.scores[:n]
    opening = np.linalg.norm(kp[:, up] - kp[:, low], axis=-1)
    loud = np.sqrt((np.asarray(audio[: n * SAMPLES_PER_FRAME], np.float64).reshape(n, -1) ** 2).mean(1))
    x, y = _gaussian_smooth(opening), _gaussian_smooth(loud)
    valid = (sc[:, up] >= min_score) & (sc[:, low] >= min_score)
    x, y = x[valid], y[valid]
    if x.size < 3 or np.ptp(x) <= 1e-9 * max(1.0, np.abs(x).max()) or np.ptp(y) <= 1e-12:
        return 0.0
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / np.sqrt((x**2).sum() * (y**2).sum()))


def run_checks(
    track_segment: SpeakerTrack,
    audio_segment: np.ndarray,
    frame_w: int,
    frame_h: int,
    video_duration: float,
    audio_duration: float | None,
    cfg: QCConfig | None = None,
) -> list[CheckResult]:
    """All enabled rules on one segment: track_segment (T frames at 25 fps), audio_segment float
    [~T * 640] 16 kHz mono, frame size in pixels, source durations in seconds. In CHECK_NAMES order;
    ``lip_sync`` only when cfg.lip_sync."""
    cfg = cfg or QCConfig()
    tr = track_segment
    t = len(tr)
    seconds = t / FPS
    out = [
        _result(
            "min_length",
            seconds,
            cfg.min_seconds,
            seconds >= cfg.min_seconds,
            f"{seconds:.2f} s ({t} frames)",
        ),
        _result(
            "max_length",
            seconds,
            cfg.max_seconds,
            seconds <= cfg.max_seconds,
            f"{seconds:.2f} s ({t} frames)",
        ),
    ]

    second = (tr.second_area_ratio >= cfg.second_person_area_ratio) & (
        tr.second_box_score >= cfg.second_person_score
    )
    frac = _fraction(second)
    out.append(_result("single_speaker", frac, cfg.second_person_max_fraction, frac <= cfg.second_person_max_fraction,
                       f"{int(second.sum())}/{t} frames with a second person >= {cfg.second_person_area_ratio:g} "
                       f"of the speaker's area and box score >= {cfg.second_person_score:g}"))  # fmt: skip

    present = np.asarray(tr.num_persons) > 0
    frac = _fraction(present)
    out.append(_result("person_present", frac, cfg.min_person_fraction, frac >= cfg.min_person_fraction,
                       f"{int(present.sum())}/{t} frames have a speaker"))  # fmt: skip

    scores = np.asarray(tr.scores)[present]
    for name, field_name, threshold in (("body_confidence", "body_points", cfg.min_body_score),
                                        ("hand_confidence", "hand_points", cfg.min_hand_score)):  # fmt: skip
        groups = getattr(cfg, field_name)
        idx = point_indices(groups, f"qc config: field '{field_name}'")
        mean = float(scores[:, idx].mean()) if len(scores) else 0.0
        out.append(_result(name, mean, threshold, mean >= threshold,
                           f"mean score of {groups} over {len(scores)} speaker frames"))  # fmt: skip

    idx = point_indices(cfg.in_frame_points, "qc config: field 'in_frame_points'")
    kp, sc = np.asarray(tr.keypoints)[present][:, idx], scores[:, idx]
    margin = cfg.in_frame_margin * min(frame_w, frame_h)
    inside = ((kp[..., 0] >= margin) & (kp[..., 0] <= frame_w - 1 - margin)
              & (kp[..., 1] >= margin) & (kp[..., 1] <= frame_h - 1 - margin))  # fmt: skip
    confident = sc >= cfg.in_frame_min_score
    good = confident.any(1) & (inside | ~confident).all(1)
    frac = _fraction(good)
    out.append(_result("in_frame", frac, cfg.min_in_frame_fraction, frac >= cfg.min_in_frame_fraction,
                       f"{int(good.sum())}/{len(good)} speaker frames with every confident point "
                       f">= {margin:.1f} px inside the {frame_w}x{frame_h} frame"))  # fmt: skip

    level = rms_db(np.asarray(audio_segment))
    speech = level > cfg.silence_db
    frac = _fraction(speech)
    out.append(_result("speech_present", frac, cfg.min_speech_fraction, frac >= cfg.min_speech_fraction,
                       f"{int(speech.sum())}/{len(speech)} 40 ms frames above {cfg.silence_db:g} dBFS"))  # fmt: skip

    if audio_duration is None:
        gap = float(video_duration)  # no audio: an audio duration of 0
        out.append(_result("av_duration", gap, cfg.max_av_offset_seconds, False, "the source has no audio"))
    else:
        gap = abs(float(video_duration) - float(audio_duration))
        out.append(_result("av_duration", gap, cfg.max_av_offset_seconds, gap <= cfg.max_av_offset_seconds,
                           f"video {video_duration:.3f} s, audio {audio_duration:.3f} s"))  # fmt: skip

    if cfg.lip_sync:
        corr = lip_audio_correlation(tr, np.asarray(audio_segment), cfg.lip_min_score)
        out.append(_result("lip_sync", corr, cfg.min_lip_sync, corr >= cfg.min_lip_sync,
                           "correlation of inner-lip opening with the audio RMS"))  # fmt: skip
    return out
