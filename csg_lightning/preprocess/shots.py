"""Shot cuts of a video from the 25 fps frames already decoded for pose: PySceneDetect's ContentDetector.

Each frame is shrunk to ``downscale_width`` pixels wide (area interpolation, aspect kept), turned
to BGR as PySceneDetect expects, and fed to ``ContentDetector.process_frame`` with a frame-number
timecode at 25 fps. A cut is the 25 fps frame index where a new shot starts: the first frame whose
HSV content differs from the previous one by ``threshold`` or more, at least ``min_shot_frames``
after the previous cut (closer cuts are merged, PySceneDetect's default flash filter).
"""

from __future__ import annotations

import numpy as np

from csg_lightning.preprocess.frame_times import TARGET_FPS


class ShotDetector:
    """Streamed shot detection: :meth:`update` with consecutive chunks, then :meth:`cuts`.

    threshold: ContentDetector score (mean HSV change, 0..255) that starts a new shot (default 27).
    min_shot_frames: shortest shot, in 25 fps frames. downscale_width: detection width in pixels
    (frames narrower than this are used as they are).
    """

    def __init__(self, threshold: float = 27.0, min_shot_frames: int = 15, downscale_width: int = 320):
        from scenedetect.detectors import ContentDetector

        if downscale_width < 1 or min_shot_frames < 0:
            raise ValueError(
                f"ShotDetector: expected downscale_width >= 1 and min_shot_frames >= 0, "
                f"got {downscale_width} and {min_shot_frames}"
            )
        self.threshold = float(threshold)
        self.min_shot_frames = int(min_shot_frames)
        self.downscale_width = int(downscale_width)
        self._detector = ContentDetector(threshold=self.threshold, min_scene_len=self.min_shot_frames)
        self._next = 0  # the 25 fps frame index the next update must start at
        self._cuts: list[int] = []

    def update(self, t0: int, frames: np.ndarray) -> None:
        """Feed RGB uint8 frames [n, H, W, 3] of 25 fps frames ``t0 .. t0+n-1`` (chunks must follow on)."""
        from scenedetect import FrameTimecode

        if t0 != self._next:
            raise ValueError(
                f"ShotDetector: expected frames from {self._next} on, got a chunk starting at {t0}"
            )
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"ShotDetector: expected RGB uint8 [n, H, W, 3], got {frames.dtype} {frames.shape}"
            )
        for i, frame in enumerate(frames):
            timecode = FrameTimecode(t0 + i, fps=float(TARGET_FPS))
            for cut in self._detector.process_frame(timecode, self._prepare(frame)):
                if cut.frame_num > 0:
                    self._cuts.append(int(cut.frame_num))
        self._next = t0 + len(frames)

    def cuts(self) -> list[int]:
        """Sorted 25 fps frame indices where a new shot starts (0 excluded), from the frames seen so far."""
        return sorted(set(self._cuts))

    def _prepare(self, frame: np.ndarray) -> np.ndarray:
        """RGB [H, W, 3] -> BGR [h, downscale_width, 3], contiguous."""
        import cv2

        h, w = frame.shape[:2]
        if w > self.downscale_width:
            size = (self.downscale_width, max(1, round(h * self.downscale_width / w)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(frame[..., ::-1])
