"""Whole-body motion of a synthetic speaker, caused by the events of its speech.

The causal links (all at 25 fps, in pixels of the 512 x 512 frame):

- beat gestures: at every stressed vowel onset the gesturing hand(s) make a stroke whose peak
  speed falls on the onset (shifted by the speaker's ``beat_lag``); unstressed syllables give
  small ones;
- hands rise into gesture space during phrases and return to a rest pose in long pauses; their
  height follows the voice pitch;
- what a phrase says picks its gesture, as words pick iconic gestures: the vowel a phrase opens
  with (the corpus's stand-in for its first word) sets the spot in gesture space the hands go to
  and which hand goes (front vowels the right, back vowels the left), and a stressed opening
  syllable brings both hands;
- the jaw opens with the loudness of each frame;
- the head nods at phrase starts (and a little on stressed syllables);
- idle sway, breathing, gaze shifts and blinks run independently of the speech.

``animate`` returns the clean pose (what the rendered figure shows); ``observe`` in
``confidence.py`` turns it into estimator-like keypoints and scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from csg_lightning.data.corpus.face import face_points
from csg_lightning.data.corpus.hand import HAND_SHAPES, hand_points
from csg_lightning.data.corpus.speaker import FRAME_SIZE, Speaker
from csg_lightning.data.corpus.speech import VOWEL_FORMANTS, Speech
from csg_lightning.skeleton.layout import NUM_KEYPOINTS, SkeletonLayout
from csg_lightning.timing import FPS

L = SkeletonLayout
_SHAPE_NAMES = tuple(HAND_SHAPES)
_GESTURE_SHAPES = np.array([0.3, 0.25, 0.12, 0.15, 0.06, 0.12])  # probabilities in _SHAPE_NAMES order
# The gesture of each vowel a phrase opens with (rows of VOWEL_FORMANTS): the spot the hands go to, sideways in
# shoulder half-widths (+ out, - across the body) and down from the shoulder in upper-arm lengths.
_GESTURE_SPOTS = np.array([[0.35, 0.70], [0.10, 0.85], [-0.60, 1.05], [-0.30, 0.90], [-0.75, 1.10],
                           [0.40, 1.10], [-0.20, 0.70]])  # fmt: skip
_SPOT_JITTER = 0.05  # std of the spot around the vowel's, same units
_FRONT_F2 = 1500.0  # Hz (adult-male table): vowels with a higher F2 are front vowels, led by the right hand


@dataclass
class Pose:
    """Clean whole-body motion: keypoints [T, 134, 2] (pixels) and the controls behind it.

    mouth_open [T] (head units), eye_open [T], ear_depth [T, 2] (ear z after head rotation),
    hand_speed [T, 2] (left, right wrist speed in pixels per frame).
    """

    keypoints: np.ndarray
    mouth_open: np.ndarray
    eye_open: np.ndarray
    ear_depth: np.ndarray
    hand_speed: np.ndarray


def smooth_noise(rng: np.random.Generator, n: int, sigma: float, dims: int = 1) -> np.ndarray:
    """Stationary low-pass noise [n] or [n, dims] of unit std, correlated over ``sigma`` frames."""
    pad = int(3 * sigma) + 1
    raw = rng.standard_normal((n + 2 * pad, dims))
    out = gaussian_filter1d(raw, sigma, axis=0, mode="nearest")[pad:-pad]
    out *= np.sqrt(2.0 * np.sqrt(np.pi) * sigma)
    return out[:, 0] if dims == 1 else out


def _bump(n: int, centres: np.ndarray, sigma: float, heights: np.ndarray | float = 1.0) -> np.ndarray:
    """Sum of Gaussian bumps [n] at frame positions ``centres``."""
    t = np.arange(n)[:, None]
    return (np.broadcast_to(heights, centres.shape) * np.exp(-0.5 * ((t - centres[None]) / sigma) ** 2)).sum(
        1
    )


def _window(n: int, starts: np.ndarray, ends: np.ndarray, sigma: float) -> np.ndarray:
    """Smoothed indicator [n] of the frame intervals [starts, ends)."""
    box = np.zeros(n)
    for s, e in zip(starts, ends, strict=True):
        box[max(0, int(round(s))) : max(0, int(round(e)))] = 1.0
    return gaussian_filter1d(box, sigma, mode="nearest")


def _elbow(shoulder: np.ndarray, wrist: np.ndarray, upper: float, fore: float, lateral: float) -> np.ndarray:
    """Elbow [T, 2] for the given shoulder and wrist paths (``lateral`` = +1 left arm, -1 right arm).

    The upper arm hangs down and a little out, rising as the wrist rises or moves out; the forearm
    may look shorter than ``fore`` (it points toward the camera). Only when the wrist is out of
    that reach does two-link inverse kinematics place the elbow (the solution nearest the natural
    one, so the path stays continuous).
    """
    rise = np.clip((shoulder[:, 1] + upper + 0.3 * fore - wrist[:, 1]) / (upper + fore), 0.0, 1.2)
    out = np.clip(lateral * (wrist[:, 0] - shoulder[:, 0]) / upper, 0.0, 1.0)
    theta = 0.2 + 1.1 * rise + 0.35 * out
    natural = shoulder + upper * np.stack([lateral * np.sin(theta), np.cos(theta)], axis=1)
    d = wrist - shoulder
    norm = np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
    dist = np.clip(norm[:, 0], abs(upper - fore) + 1e-3, upper + fore - 1e-3)
    unit = d / norm
    a = np.arccos(np.clip((upper**2 + dist**2 - fore**2) / (2 * upper * dist), -1.0, 1.0))[:, None]
    candidates = []
    for sign in (1.0, -1.0):
        c, s = np.cos(sign * a), np.sin(sign * a)
        rot = np.concatenate([unit[:, :1] * c - unit[:, 1:] * s, unit[:, :1] * s + unit[:, 1:] * c], axis=1)
        candidates.append(shoulder + upper * rot)
    nearer = np.linalg.norm(candidates[0] - natural, axis=1) <= np.linalg.norm(
        candidates[1] - natural, axis=1
    )
    solved = np.where(nearer[:, None], candidates[0], candidates[1])
    too_far = np.linalg.norm(wrist - natural, axis=1) > fore
    return np.where(too_far[:, None], solved, natural)


def _arm_targets(
    speaker: Speaker,
    speech: Speech,
    rng: np.random.Generator,
    n: int,
    lateral: float,
    shoulder: np.ndarray,
    neck: np.ndarray,
    lead: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Wrist path [n, 2], gesture activity [n], beat displacement [n, 2] of one arm."""
    ua, fa, sw = speaker.upper_arm, speaker.forearm, speaker.shoulder_half_width
    if speaker.rest_style == "down":
        rest = shoulder + np.array([lateral * 0.22 * ua, 0.93 * (ua + fa)])
    else:
        rest = np.stack([neck[:, 0] + lateral * 0.12 * sw, shoulder[:, 1] + 1.25 * ua], axis=1)
    starts = speech.phrase_starts * FPS - 6
    ends = speech.phrase_ends * FPS + 5
    # Bridge short pauses: keep the hands up when the next phrase follows quickly.
    gaps = np.append(starts[1:] - ends[:-1], np.inf)
    ends = np.where(gaps < 10, ends + gaps, ends)
    active = _window(n, starts[lead], ends[lead], 3.5) if lead.any() else np.zeros(n)
    gesture = np.zeros((n, 2))
    weight = np.zeros(n) + 1e-9
    spots = _GESTURE_SPOTS[speech.vowels[speech.phrase_openers()]]
    for s, e, vowel_spot in zip(starts, ends, spots, strict=True):
        side, down = vowel_spot + rng.normal(0.0, _SPOT_JITTER, 2)
        spot = np.array([lateral * side * sw, down * ua])
        w = _window(n, np.array([s]), np.array([e]), 3.0)
        gesture += w[:, None] * spot
        weight += w
    gesture = shoulder + gesture / weight[:, None]
    gesture[weight < 1e-3] = rest[weight < 1e-3]
    path = rest + active[:, None] * (gesture - rest)
    # Hand height follows pitch (semitones above the speaker's mean, unvoiced frames filled in).
    voiced = speech.f0 > 0
    if voiced.any():
        semis = np.zeros(n)
        semis[voiced] = 12.0 * np.log2(speech.f0[voiced] / speaker.f0)
        semis[~voiced] = np.interp(np.flatnonzero(~voiced), np.flatnonzero(voiced), semis[voiced])
        semis = gaussian_filter1d(semis, 2.5)
        path[:, 1] -= active * speaker.pitch_gain * 0.055 * ua * semis
    # Beats: a stroke through the onset, peak speed at onset + lag.
    t = np.arange(n)[:, None]
    centres = speech.onsets * FPS + speaker.beat_lag
    amp = np.where(speech.stressed, 1.0, 0.1 * (rng.random(len(centres)) < 0.6))
    amp = amp * speaker.gesture_amplitude * ua * rng.uniform(0.75, 1.25, len(centres))
    amp *= active[np.clip(centres.round().astype(int), 0, n - 1)]
    direction = np.stack([lateral * rng.uniform(-0.45, 0.35, len(centres)), np.ones(len(centres))], axis=1)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    # A fast stroke from above (prepared slowly) to below (held, then slowly released): the hand
    # crosses its path fastest at the onset, and preparation / retraction are slow.
    offset = t - centres[None]
    kernel = np.tanh(offset / (0.6 * speaker.beat_width)) * np.exp(
        -0.5 * (offset / (2.2 * speaker.beat_width)) ** 2
    )
    beats = (kernel * amp[None])[:, :, None] * direction[None]
    return path, active, beats.sum(1)


def _phrase_leads(speech: Speech, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Which hands gesture in each phrase: (left [P] bool, right [P] bool).

    The phrase's opening syllable decides: a front vowel leads with the right hand, a back vowel with
    the left, a stressed one with both; a few phrases (8 %) go without gestures.
    """
    openers = speech.phrase_openers()
    right_leads = VOWEL_FORMANTS[speech.vowels[openers], 1] > _FRONT_F2
    both = speech.stressed[openers]
    still = rng.random(len(openers)) < 0.08
    left = (~right_leads | both) & ~still
    right = (right_leads | both) & ~still
    return left, right


def _hand_controls(rng: np.random.Generator, n: int, speech: Speech, active: np.ndarray):
    """Finger curls [n, 5], spread [n], palm width [n], wrist flex [n] of one hand."""
    rest_curl, rest_spread = HAND_SHAPES["relaxed"]
    curl_target = np.tile(rest_curl, (n, 1))
    spread_target = np.full(n, rest_spread)
    changes = np.sort(np.round(speech.onsets[speech.stressed] * FPS - 3).astype(int))
    bounds = np.append(changes, n)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if 0 <= a < n:
            shape = _SHAPE_NAMES[rng.choice(len(_SHAPE_NAMES), p=_GESTURE_SHAPES)]
            curl, spread = HAND_SHAPES[shape]
            curl_target[a:b] = curl + rng.normal(0, 0.05, 5)
            spread_target[a:b] = spread
    mix = active[:, None]
    curl = gaussian_filter1d(mix * curl_target + (1 - mix) * rest_curl, 1.8, axis=0)
    curl = np.clip(curl + 0.04 * smooth_noise(rng, n, 10.0, 5), 0.0, 1.0)
    spread = np.clip(gaussian_filter1d(mix[:, 0] * spread_target + (1 - active) * rest_spread, 1.8), 0, 1)
    width = np.clip(0.45 + active * (0.35 + 0.15 * smooth_noise(rng, n, 15.0)), 0.3, 1.0)
    flex = 0.12 * smooth_noise(rng, n, 12.0) + active * 0.25
    return curl, spread, width, flex


def animate(speaker: Speaker, speech: Speech, rng: np.random.Generator) -> Pose:
    """The clean pose of ``speaker`` saying ``speech`` (one frame per 640 audio samples)."""
    n = speech.num_frames
    kp = np.zeros((n, NUM_KEYPOINTS, 2))
    sway = speaker.sway * smooth_noise(rng, n, 22.0)
    breath = 1.5 * np.sin(2 * np.pi * np.arange(n) / (FPS * rng.uniform(3.5, 5.0)) + rng.uniform(0, 6.3))
    onsets = speech.onsets * FPS
    bob = _bump(n, onsets[speech.stressed] + 1.0, 2.0, 1.5)  # a small body bob on stress
    neck = np.stack([speaker.neck_x + sway, speaker.neck_y + breath + bob], axis=1)
    tilt = 0.02 * smooth_noise(rng, n, 30.0)
    sw = speaker.shoulder_half_width
    kp[:, L.LEFT_SHOULDER] = neck + np.stack([sw * np.cos(tilt), sw * np.sin(tilt)], 1)
    kp[:, L.RIGHT_SHOULDER] = neck - np.stack([sw * np.cos(tilt), sw * np.sin(tilt)], 1)
    kp[:, L.NECK] = 0.5 * (kp[:, L.LEFT_SHOULDER] + kp[:, L.RIGHT_SHOULDER])
    hip_centre = np.stack(
        [speaker.neck_x + 0.35 * sway, np.full(n, speaker.neck_y + speaker.torso_length)], 1
    )
    kp[:, L.LEFT_HIP] = hip_centre + [speaker.hip_half_width, 0.0]
    kp[:, L.RIGHT_HIP] = hip_centre - [speaker.hip_half_width, 0.0]

    # Head: nods at phrase starts and (smaller) on stress, gaze shifts, slow roll.
    starts = speech.phrase_starts * FPS
    pitch = (
        np.deg2rad(speaker.nod)
        * (_bump(n, starts + 3.0, 3.5) + 0.3 * _bump(n, onsets[speech.stressed] + 1.0, 2.0))
        + 0.03 * smooth_noise(rng, n, 20.0)
        - 0.05
    )
    bounds = np.r_[0, np.clip(np.round(starts), 0, n), n].astype(int)
    gaze = np.repeat(rng.normal(0.0, 0.18, len(starts) + 1), np.diff(bounds))  # gaze shifts per phrase
    yaw = gaussian_filter1d(gaze, 5.0) + 0.05 * smooth_noise(rng, n, 15.0)
    roll = 0.05 * smooth_noise(rng, n, 35.0) + tilt
    head_centre = neck + np.stack([1.3 * sway, np.full(n, -speaker.neck_length)], 1)
    reference = max(float(np.percentile(speech.loudness, 95)), 1e-6)
    mouth = 0.4 * np.clip(speech.loudness / reference, 0.0, 1.3) ** 0.8 * (0.55 + 0.45 * speech.openness)
    mouth = np.clip(gaussian_filter1d(mouth, 0.7) - 0.02, 0.0, 0.45)
    eye = np.ones(n)
    blink_at = np.cumsum(rng.uniform(1.5, 5.5, int(n / FPS / 1.5) + 2) * FPS).astype(int)
    for b in blink_at[blink_at < n - 4]:
        eye[b : b + 4] = [0.5, 0.05, 0.25, 0.75]
    face, head5, ear_depth = face_points(head_centre, speaker.head_size, yaw, pitch, roll, mouth, eye)
    kp[:, L.FACE] = face
    kp[:, 0:5] = head5

    # Arms and hands.
    left_lead, right_lead = _phrase_leads(speech, rng)
    speeds = []
    for lateral, lead, (s, e, w), hand in (
        (1.0, left_lead, (L.LEFT_SHOULDER, L.LEFT_ELBOW, L.LEFT_WRIST), L.LEFT_HAND),
        (-1.0, right_lead, (L.RIGHT_SHOULDER, L.RIGHT_ELBOW, L.RIGHT_WRIST), L.RIGHT_HAND),
    ):
        path, active, beats = _arm_targets(speaker, speech, rng, n, lateral, kp[:, s], neck, lead)
        drift = 3.5 * smooth_noise(rng, n, 18.0, 2)
        wrist = np.clip(path + beats + drift, 6.0, FRAME_SIZE - 7.0)
        elbow = _elbow(kp[:, s], wrist, speaker.upper_arm, speaker.forearm, lateral)
        # Out of reach (beyond the stretched arm): pull the wrist in along the forearm.
        reach = wrist - elbow
        length = np.linalg.norm(reach, axis=1, keepdims=True)
        wrist = elbow + reach * np.minimum(1.0, speaker.forearm / np.maximum(length, 1e-6))
        kp[:, e], kp[:, w] = elbow, wrist
        curl, spread, width, flex = _hand_controls(rng, n, speech, active)
        forearm_angle = np.arctan2(reach[:, 1], reach[:, 0])
        angle = forearm_angle - lateral * flex
        kp[:, hand] = hand_points(wrist, angle, curl, spread, width, speaker.hand_length, lateral)
        step = np.diff(wrist, axis=0, prepend=wrist[:1])
        speeds.append(np.linalg.norm(step, axis=1))

    # Legs (mostly below the frame): knees, ankles and feet.
    for lateral, hip, knee, ankle, feet in ((1.0, L.LEFT_HIP, 13, 15, (18, 19, 20)),
                                            (-1.0, L.RIGHT_HIP, 14, 16, (21, 22, 23))):  # fmt: skip
        kp[:, knee] = kp[:, hip] + [lateral * 0.12 * speaker.hip_half_width, speaker.thigh]
        kp[:, ankle] = kp[:, knee] + [lateral * 0.05 * speaker.hip_half_width, 0.95 * speaker.thigh]
        foot = 0.3 * speaker.thigh
        kp[:, feet[0]] = kp[:, ankle] + [lateral * 0.35 * foot, 0.35 * foot]
        kp[:, feet[1]] = kp[:, ankle] + [lateral * 0.7 * foot, 0.3 * foot]
        kp[:, feet[2]] = kp[:, ankle] + [0.0, 0.12 * foot]
    return Pose(kp, mouth, eye, ear_depth, np.stack(speeds, axis=1))
