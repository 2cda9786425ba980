"""The project's one clock: video frames per second, audio sample rate, audio samples per frame.

Every file the project writes is at these rates (clip folders, shards, generated skeletons and
videos); every module takes them from here.
"""

from __future__ import annotations

FPS = 25  # skeleton / video frames per second
SAMPLE_RATE = 16_000  # audio samples per second (mono)
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640 audio samples per frame


def frames_for_samples(num_samples: int) -> int:
    """Frames covered by ``num_samples`` audio samples (rounded to the nearest frame)."""
    return int(round(num_samples * FPS / SAMPLE_RATE))


def frame_to_seconds(frame: int | float) -> float:
    return float(frame) / FPS
