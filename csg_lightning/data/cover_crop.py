"""Fitting frames (and their keypoints) to the model's size: scale to cover, then centre-crop.

A ``src_w`` x ``src_h`` frame is scaled by ``max(dst_w / src_w, dst_h / src_h)`` (so it covers the
target) to ``scaled`` = (sw, sh) pixels, then the centre ``dst_w`` x ``dst_h`` is cut. Keypoints follow
the same map: ``x' = x * sw / src_w - x0``, ``y' = y * sh / src_h - y0``. Used by the pose-video
datamodule (training examples) and by the video pipeline (the reference photo), so it lives in ``data``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CoverCrop:
    """Scale ``src`` to ``scaled`` (w, h), then cut ``size`` (w, h) at ``offset`` (x0, y0)."""

    src: tuple[int, int]
    scaled: tuple[int, int]
    offset: tuple[int, int]
    size: tuple[int, int]

    @classmethod
    def fit(cls, src_w: int, src_h: int, dst_w: int, dst_h: int) -> CoverCrop:
        if min(src_w, src_h, dst_w, dst_h) <= 0:
            raise ValueError(f"CoverCrop: sizes must be positive, got {src_w}x{src_h} -> {dst_w}x{dst_h}")
        scale = max(dst_w / src_w, dst_h / src_h)
        sw, sh = max(dst_w, round(src_w * scale)), max(dst_h, round(src_h * scale))
        return cls((src_w, src_h), (sw, sh), ((sw - dst_w) // 2, (sh - dst_h) // 2), (dst_w, dst_h))

    def keypoints(self, keypoints: np.ndarray) -> np.ndarray:
        """[..., 2] pixels of the source frame -> pixels of the output (float32)."""
        factor = np.array([self.scaled[0] / self.src[0], self.scaled[1] / self.src[1]], dtype=np.float32)
        return np.asarray(keypoints, dtype=np.float32) * factor - np.array(self.offset, dtype=np.float32)

    def crop(self, scaled_frames: np.ndarray) -> np.ndarray:
        """[..., sh, sw, 3] frames already at ``scaled`` size -> [..., dst_h, dst_w, 3]."""
        if scaled_frames.shape[-3:-1] != (self.scaled[1], self.scaled[0]):
            raise ValueError(
                f"CoverCrop: frames are {scaled_frames.shape[-2]}x{scaled_frames.shape[-3]}, expected the scaled "
                f"size {self.scaled[0]}x{self.scaled[1]}"
            )
        (x0, y0), (w, h) = self.offset, self.size
        return scaled_frames[..., y0 : y0 + h, x0 : x0 + w, :]

    def image(self, frame: np.ndarray) -> np.ndarray:
        """One uint8 source frame [src_h, src_w, 3] -> [dst_h, dst_w, 3] (resize + crop)."""
        shrink = self.scaled[0] < frame.shape[1]
        scaled = cv2.resize(
            np.ascontiguousarray(frame),
            self.scaled,
            interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC,
        )
        return np.ascontiguousarray(self.crop(scaled))
