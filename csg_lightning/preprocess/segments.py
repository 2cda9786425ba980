"""The speaker's per-frame track through one source video, and the segments cut from it.

Frames are the 25 fps output frames of :mod:`csg_lightning.preprocess.frame_times`: frame ``t``
shows the source at time ``t / 25`` s. Segments are half-open ``[start, stop)`` frame ranges.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from csg_lightning.timing import FPS


@dataclass
class SpeakerTrack:
    """Per output frame ``t = 0..T-1`` of one source video (storage order, source-frame pixels).

    keypoints float32 [T, 134, 2] and scores float32 [T, 134] of the speaker (the largest person;
    0 where nobody was found); boxes float32 [T, 4] (x1, y1, x2, y2) and box_scores float32 [T];
    num_persons int32 [T]; second_area_ratio float32 [T], the area of the second-largest person over
    the speaker's (0 if none); second_box_score float32 [T] of that person (0 if none).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    box_scores: np.ndarray
    num_persons: np.ndarray
    second_area_ratio: np.ndarray
    second_box_score: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.keypoints)
        for f in fields(self):
            value = getattr(self, f.name)
            if len(value) != n:
                raise ValueError(f"SpeakerTrack.{f.name} has {len(value)} frames, keypoints has {n}")

    def __len__(self) -> int:
        return len(self.keypoints)

    def slice(self, start: int, stop: int) -> SpeakerTrack:
        """Frames ``[start, stop)``."""
        return SpeakerTrack(**{f.name: getattr(self, f.name)[start:stop] for f in fields(self)})

    @classmethod
    def concatenate(cls, parts: list[SpeakerTrack]) -> SpeakerTrack:
        """Join consecutive pieces (the chunks of one decode pass) into one track."""
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})


@dataclass(frozen=True)
class Segment:
    """Frames ``[start, stop)`` of one source video at 25 fps."""

    start: int
    stop: int

    @property
    def frames(self) -> int:
        return self.stop - self.start

    @property
    def seconds(self) -> float:
        return self.frames / FPS

    @property
    def start_seconds(self) -> float:
        return self.start / FPS

    @property
    def stop_seconds(self) -> float:
        return self.stop / FPS
