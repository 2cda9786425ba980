"""Per-speaker parameters of the synthetic demo corpus, drawn deterministically from a seed.

A speaker fixes everything that stays constant across that person's clips: body proportions,
where the body sits in the 512 x 512 frame, the voice (pitch, rate, timbre), the gesture style
and the look of the rendered figure. All lengths are pixels of the 512 x 512 frame.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

FRAME_SIZE = 512

# Base looks (RGB); each speaker jitters one of them.
_SKIN_TONES = ((241, 204, 177), (224, 172, 135), (198, 134, 94), (141, 85, 54), (92, 58, 38), (250, 220, 196))
_HAIR_COLOURS = ((30, 24, 20), (70, 45, 25), (120, 80, 40), (200, 170, 110), (150, 150, 150), (20, 20, 30))


@dataclass(frozen=True)
class Speaker:
    """Everything constant across one speaker's clips (pixels of the 512 x 512 frame, RGB colours)."""

    speaker_id: str
    index: int
    # Body proportions and framing.
    neck_x: float  # neck position in the frame
    neck_y: float
    shoulder_half_width: float
    hip_half_width: float
    torso_length: float  # neck -> hips
    neck_length: float  # neck -> head centre
    head_size: float  # face half-width
    upper_arm: float
    forearm: float
    hand_length: float
    thigh: float
    # Voice.
    f0: float  # mean pitch in Hz
    pitch_range: float  # semitones of accent / declination
    speech_rate: float  # syllables per second
    formant_scale: float  # vocal-tract length (timbre)
    breathiness: float
    loudness: float  # peak amplitude of the clip
    # Gesture style.
    gesture_amplitude: float  # beat size in units of the upper-arm length
    beat_lag: float  # frames from the stressed vowel onset to the stroke (negative: before)
    beat_width: float  # frames, width of the stroke kernel
    pitch_gain: float  # how strongly hand height follows pitch
    rest_style: str  # "down" (arms hanging) or "clasped" (hands together in front)
    sway: float  # idle sway in pixels
    nod: float  # head nod size in degrees
    hand_confidence: float  # typical hand-keypoint score
    occlusion_rate: float  # low-confidence hand episodes per minute
    # Look.
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]
    long_sleeves: bool
    background: tuple[tuple[int, int, int], tuple[int, int, int]]  # top / bottom gradient colours
    decor: tuple[int, int, int]  # colour of the background shapes

    @property
    def shoulder_y(self) -> float:
        return self.neck_y

    def to_dict(self) -> dict:
        """A JSON-friendly summary (floats rounded) for ``meta.json``."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float):
                value = round(value, 4)
            elif isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[field.name] = value
        return out


def speaker_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of speaker ``index`` in the corpus of ``seed`` (independent of all clips)."""
    return np.random.default_rng([int(seed), 0, int(index)])


def _jitter_colour(rng: np.random.Generator, base, amount: float) -> tuple[int, int, int]:
    c = np.asarray(base, dtype=np.float64) + rng.normal(0.0, amount, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255).round())


def _random_colour(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, 3))


def speaker_id_of(index: int) -> str:
    """The id of speaker ``index`` of the generator (spk00, spk01, ..., spk100, ...)."""
    return f"spk{index:02d}"


def make_speaker(seed: int, index: int) -> Speaker:
    """Draw speaker ``index`` of the corpus with ``seed`` (same arguments -> same speaker)."""
    rng = speaker_rng(seed, index)
    scale = rng.uniform(0.85, 1.15)  # how close the camera is
    shoulder = 64.0 * scale * rng.uniform(0.9, 1.12)
    torso = 175.0 * scale * rng.uniform(0.92, 1.08)
    neck_y = rng.uniform(205.0, 240.0) + 25.0 * (1.0 - scale)
    neck_y = min(neck_y, FRAME_SIZE - 40.0 - torso)  # hips stay inside the frame
    female = rng.random() < 0.5
    f0 = rng.uniform(175.0, 240.0) if female else rng.uniform(95.0, 140.0)
    rest_style = "clasped" if rng.random() < 0.45 else "down"
    rng.random()  # the retired right_handed (the speech picks the hand: motion.py), drawn so every speaker keeps its looks
    background_top = _random_colour(rng, 90, 230)
    background_bottom = tuple(int(v * rng.uniform(0.55, 0.85)) for v in background_top)
    return Speaker(
        speaker_id=speaker_id_of(index),
        index=index,
        neck_x=FRAME_SIZE / 2 + rng.uniform(-28.0, 28.0),
        neck_y=float(neck_y),
        shoulder_half_width=shoulder,
        hip_half_width=shoulder * rng.uniform(0.68, 0.85),
        torso_length=torso,
        neck_length=70.0 * scale * rng.uniform(0.92, 1.08),
        head_size=36.0 * scale * rng.uniform(0.92, 1.08),
        upper_arm=98.0 * scale * rng.uniform(0.94, 1.06),
        forearm=86.0 * scale * rng.uniform(0.94, 1.06),
        hand_length=52.0 * scale * rng.uniform(0.92, 1.08),
        thigh=150.0 * scale,
        f0=float(f0),
        pitch_range=rng.uniform(2.5, 5.0),
        speech_rate=rng.uniform(4.2, 5.8),
        formant_scale=(1.12 if female else 0.95) * rng.uniform(0.95, 1.05),
        breathiness=rng.uniform(0.02, 0.08),
        loudness=rng.uniform(0.45, 0.8),
        gesture_amplitude=rng.uniform(0.28, 0.45),
        beat_lag=rng.uniform(-0.8, 0.8),
        beat_width=rng.uniform(1.8, 2.6),
        pitch_gain=float(rng.uniform(0.5, 1.0, 2)[1]),  # the first draw was the retired both_hands (see right_handed)
        rest_style=rest_style,
        sway=rng.uniform(2.0, 5.0),
        nod=rng.uniform(5.0, 11.0),
        hand_confidence=rng.uniform(0.86, 0.94),
        occlusion_rate=rng.uniform(1.0, 4.0),
        skin=_jitter_colour(rng, _SKIN_TONES[rng.integers(len(_SKIN_TONES))], 8.0),
        hair=_jitter_colour(rng, _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))], 6.0),
        shirt=_random_colour(rng, 20, 235),
        trousers=_random_colour(rng, 20, 120),
        long_sleeves=bool(rng.random() < 0.6),
        background=(background_top, background_bottom),
        decor=_random_colour(rng, 40, 220),
    )


def to_frame_size(points: np.ndarray, size: int) -> np.ndarray:
    """Map pixel coordinates of the 512 x 512 frame to a ``size`` x ``size`` frame (pixel centres align)."""
    if size == FRAME_SIZE:
        return points
    return (points + 0.5) * (size / FRAME_SIZE) - 0.5
