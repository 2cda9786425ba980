"""Speech-like audio for the synthetic corpus, together with the events that drive the motion.

Speech is a sequence of phrases separated by pauses; a phrase is a sequence of syllables. A
syllable is an optional consonant (plosive burst, fricative noise or a short nasal) followed by a
voiced vowel: a sum of harmonics of a moving pitch, weighted by three formant resonances of the
vowel. Stressed syllables are louder, longer and carry a pitch accent; pitch declines over a
phrase (sometimes rising at its end, like a question). Deterministic given the generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, lfilter

from csg_lightning.data.corpus.speaker import Speaker
from csg_lightning.timing import SAMPLE_RATE, SAMPLES_PER_FRAME

HOP = SAMPLES_PER_FRAME  # 640 samples per video frame

# (F1, F2, F3) in Hz of a few vowels (adult male values, scaled per speaker); ``Speech.vowels`` indexes it.
VOWEL_FORMANTS = np.array(
    [[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410], [300, 870, 2240],
     [500, 1500, 2500], [660, 1720, 2410]],
    dtype=np.float64,
)  # fmt: skip
_BANDWIDTHS = np.array([90.0, 120.0, 180.0])
_FORMANT_GAINS = np.array([1.0, 0.6, 0.3])
_FRICATIVE_FILTER = butter(2, [2500, 7000], btype="bandpass", fs=SAMPLE_RATE)
_BURST_FILTER = butter(2, [800, 4000], btype="bandpass", fs=SAMPLE_RATE)
_ROOM_FILTER = butter(1, 1500, btype="lowpass", fs=SAMPLE_RATE)


@dataclass
class Speech:
    """One clip of speech and its events (times in seconds, per-frame tracks at 25 fps).

    audio: float32 [T*640] in [-1, 1]; onsets: [S] vowel onsets of the syllables (the acoustic
    onset the gestures align to); syllable_starts: [S] starts including the consonant;
    durations: [S]; stressed: bool [S]; vowels: int [S] the vowel of each syllable (a row of
    ``VOWEL_FORMANTS``); phrase: int [S] phrase index of each syllable (0, 1, ... in time order);
    phrase_starts / phrase_ends: [P]; f0: [T] pitch in Hz per frame (0 where unvoiced);
    loudness: [T] RMS of the audio of each frame; openness: [T] how open the vowel sounding in
    each frame is (F1-based, 1 for /a/, ~0.4 for /i/ and /u/; 0.7 outside vowels). The tracks are
    float64: the pose computed from them is rounded to its grid only at the end (``generate.quantize``).
    """

    audio: np.ndarray
    onsets: np.ndarray
    syllable_starts: np.ndarray
    durations: np.ndarray
    stressed: np.ndarray
    vowels: np.ndarray
    phrase: np.ndarray
    phrase_starts: np.ndarray
    phrase_ends: np.ndarray
    f0: np.ndarray
    loudness: np.ndarray
    openness: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.f0)

    def phrase_openers(self) -> np.ndarray:
        """Index [P] of the first syllable of each phrase."""
        return np.searchsorted(self.phrase, np.arange(len(self.phrase_starts)))


def _plan(speaker: Speaker, seconds: float, rng: np.random.Generator) -> list[dict]:
    """Phrases and syllables with timing, stress and pitch targets (no audio yet)."""
    syllables: list[dict] = []
    t = rng.uniform(0.25, 0.7)
    phrase = 0
    while t < seconds - 0.6:
        n = int(rng.integers(3, 13))
        question = rng.random() < 0.15
        prev_stressed = False
        any_syllable = False
        for i in range(n):
            stressed = rng.random() < (0.05 if prev_stressed else 0.25) or (i == 0 and rng.random() < 0.4)
            duration = rng.gamma(9.0, 1.0 / 9.0) / speaker.speech_rate * (1.35 if stressed else 1.0)
            duration = float(np.clip(duration, 0.11, 0.45))
            if i == n - 1:
                duration *= 1.25  # phrase-final lengthening
            consonant = rng.choice(["none", "plosive", "fricative", "nasal"], p=[0.25, 0.35, 0.25, 0.15])
            consonant_len = {"none": 0.0, "plosive": 0.035, "fricative": rng.uniform(0.04, 0.08),
                             "nasal": rng.uniform(0.03, 0.06)}[consonant]  # fmt: skip
            if t + consonant_len + duration > seconds - 0.15:
                break
            progress = i / max(n - 1, 1)
            semitones = speaker.pitch_range * (0.5 - progress)  # declination
            if question and i >= n - 2:
                semitones += speaker.pitch_range * 1.4
            syllables.append(
                dict(start=t, onset=t + consonant_len, duration=duration, stressed=bool(stressed),
                     phrase=phrase, consonant=str(consonant), vowel=int(rng.integers(len(VOWEL_FORMANTS))),
                     semitones=semitones + rng.normal(0.0, 0.4),
                     accent=speaker.pitch_range * rng.uniform(0.7, 1.2) if stressed else 0.0,
                     slope=rng.normal(0.0, 1.0), amplitude=rng.uniform(0.85, 1.0) if stressed
                     else rng.uniform(0.33, 0.55) * (0.8 if i == n - 1 else 1.0))
            )  # fmt: skip
            any_syllable = True
            prev_stressed = stressed
            t += consonant_len + duration + rng.uniform(0.0, 0.04)
        if any_syllable:
            phrase += 1
        pause = rng.uniform(0.25, 0.9) if rng.random() < 0.75 else rng.uniform(0.12, 0.25)
        t += pause
    return syllables


def _vowel(speaker: Speaker, syl: dict, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A voiced vowel of ``n`` samples and its pitch track [n] in Hz."""
    tt = np.arange(n) / SAMPLE_RATE
    length = n / SAMPLE_RATE
    semitones = syl["semitones"] + syl["slope"] * (tt / length - 0.5)
    if syl["accent"]:
        semitones = semitones + syl["accent"] * np.exp(-0.5 * ((tt - 0.35 * length) / (0.3 * length)) ** 2)
    f0 = speaker.f0 * 2.0 ** (semitones / 12.0)
    f0 = f0 * (1.0 + 0.004 * rng.standard_normal())  # jitter
    phase = 2.0 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    k = np.arange(1, int(4800.0 / f0.max()) + 1)
    formants = VOWEL_FORMANTS[syl["vowel"]] * speaker.formant_scale
    freqs = k * f0.mean()
    gain = (_FORMANT_GAINS / (1.0 + ((freqs[:, None] - formants) / _BANDWIDTHS) ** 2)).sum(1)
    gain = gain * k**-0.6
    offsets = rng.uniform(0.0, 2.0 * np.pi, len(k))
    wave = (gain[:, None] * np.sin(k[:, None] * phase[None, :] + offsets[:, None])).sum(0)
    wave = wave / (np.abs(gain).sum() + 1e-9)
    wave += speaker.breathiness * lfilter(*_BURST_FILTER, rng.standard_normal(n))
    return wave, f0


def _envelope(n: int, attack: float, release: float) -> np.ndarray:
    a = min(n, max(1, int(attack * SAMPLE_RATE)))
    r = min(n, max(1, int(release * SAMPLE_RATE)))
    env = np.ones(n)
    env[:a] = np.linspace(0.0, 1.0, a) ** 1.5
    env[n - r :] *= np.linspace(1.0, 0.0, r) ** 1.2
    return env


def _consonant(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(n)
    if kind == "fricative":
        return 0.25 * lfilter(*_FRICATIVE_FILTER, noise) * _envelope(n, 0.015, 0.01)
    if kind == "plosive":
        burst = np.zeros(n)
        m = min(n, int(0.012 * SAMPLE_RATE))
        burst[n - m :] = lfilter(*_BURST_FILTER, noise[:m]) * np.exp(-np.arange(m) / (0.004 * SAMPLE_RATE))
        return 0.5 * burst
    if kind == "nasal":
        tt = np.arange(n) / SAMPLE_RATE
        return 0.12 * np.sin(2 * np.pi * 250.0 * tt) * _envelope(n, 0.01, 0.005)
    return np.zeros(n)


def synthesize_speech(speaker: Speaker, num_frames: int, rng: np.random.Generator) -> Speech:
    """Speech of exactly ``num_frames * 640`` samples in the voice of ``speaker``."""
    if num_frames < 1:
        raise ValueError(f"synthesize_speech: num_frames must be >= 1, got {num_frames}")
    n_total = num_frames * HOP
    seconds = n_total / SAMPLE_RATE
    plan = _plan(speaker, seconds, rng)
    audio = np.zeros(n_total)
    f0_sum = np.zeros(n_total)
    voiced = np.zeros(n_total)
    openness = np.zeros(n_total)
    for syl in plan:
        c0, v0 = int(syl["start"] * SAMPLE_RATE), int(syl["onset"] * SAMPLE_RATE)
        v1 = min(n_total, v0 + int(syl["duration"] * SAMPLE_RATE))
        if v0 > c0:
            audio[c0:v0] += syl["amplitude"] * _consonant(syl["consonant"], v0 - c0, rng)
        n = v1 - v0
        wave, f0 = _vowel(speaker, syl, n, rng)
        env = _envelope(n, rng.uniform(0.008, 0.02), rng.uniform(0.04, 0.08))
        audio[v0:v1] += syl["amplitude"] * wave * env
        f0_sum[v0:v1] += f0 * (env > 0.2)
        voiced[v0:v1] += env > 0.2
        openness[v0:v1] = VOWEL_FORMANTS[syl["vowel"], 0] / VOWEL_FORMANTS[:, 0].max()
    audio += 0.004 * lfilter(*_ROOM_FILTER, rng.standard_normal(n_total))  # room noise
    audio *= speaker.loudness / (np.abs(audio).max() + 1e-9)
    audio = audio.astype(np.float32)

    frames = audio.reshape(num_frames, HOP).astype(np.float64)
    loudness = np.sqrt((frames**2).mean(1))
    vf = voiced.reshape(num_frames, HOP).sum(1)
    vowel_frames = (openness > 0).reshape(num_frames, HOP).sum(1)
    openness = np.where(
        vowel_frames > 0, openness.reshape(num_frames, HOP).sum(1) / np.maximum(vowel_frames, 1), 0.7
    )
    f0 = np.where(vf > HOP * 0.3, f0_sum.reshape(num_frames, HOP).sum(1) / np.maximum(vf, 1), 0.0)

    def arr(key, dtype=np.float64):
        return np.array([s[key] for s in plan], dtype=dtype)

    phrase = arr("phrase", np.int64)
    starts = arr("start")
    phrase_ids = np.unique(phrase)
    return Speech(
        audio=audio,
        onsets=arr("onset"),
        syllable_starts=starts,
        durations=arr("duration"),
        stressed=arr("stressed", bool),
        vowels=arr("vowel", np.int64),
        phrase=phrase,
        phrase_starts=np.array([starts[phrase == p].min() for p in phrase_ids]),
        phrase_ends=np.array([(arr("onset") + arr("duration"))[phrase == p].max() for p in phrase_ids]),
        f0=f0.astype(np.float64),  # float64 tracks: float32 pow / log2 differ between CPUs' SIMD code
        loudness=loudness.astype(np.float64),
        openness=openness.astype(np.float64),
    )
