"""Skeleton videos: one or more skeleton sequences drawn side by side, encoded with the audio muxed."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from csg_lightning.io.mp4 import write_mp4
from csg_lightning.skeleton.drawing import as_array, draw_pose
from csg_lightning.timing import FPS, SAMPLE_RATE

Panel = tuple[np.ndarray, np.ndarray]  # (keypoints [T, 134, 2] pixels, scores [T, 134])


def panel_size(width: float, height: float, size: int) -> tuple[int, int]:
    """(H, W) of one panel: height ``size`` and the frame's aspect ratio, both even (H.264 needs it)."""
    h = max(2, 2 * round(size / 2))
    w = max(2, 2 * round(size * width / height / 2))
    return h, w


def skeleton_frames(
    panels: Sequence[Panel],
    width: float,
    height: float,
    size: int = 256,
    labels: Sequence[str] | None = None,
    **draw_options,
) -> Iterator[np.ndarray]:
    """Yield frames uint8 [H, n * W, 3]: the n panels' skeletons side by side, frame by frame.

    Each panel is (keypoints [T, 134, 2] in pixels of ``width`` x ``height``, scores [T, 134]); all
    panels have the same T. ``draw_options`` go to :func:`draw_pose`. Frames are made lazily, so long
    sequences never sit in memory whole.
    """
    arrays = [(as_array(kp), as_array(sc)) for kp, sc in panels]
    if not arrays:
        raise ValueError("skeleton_frames: no panels given")
    lengths = {len(kp) for kp, _ in arrays} | {len(sc) for _, sc in arrays}
    if len(lengths) != 1:
        raise ValueError(f"skeleton_frames: panels differ in frame count: {sorted(lengths)}")
    if labels is not None and len(labels) != len(arrays):
        raise ValueError(f"skeleton_frames: {len(labels)} labels for {len(arrays)} panels")
    out_size = panel_size(width, height, size)
    for t in range(lengths.pop()):
        images = [draw_pose(kp[t], sc[t], width, height, out_size, **draw_options) for kp, sc in arrays]
        if labels is not None:
            for image, label in zip(images, labels, strict=True):
                _put_label(image, label)
        yield np.concatenate(images, axis=1)


def _put_label(image: np.ndarray, text: str) -> None:
    scale = max(image.shape[0] / 600, 0.3)
    thickness = max(1, round(scale * 2))
    origin = (max(2, round(6 * scale)), max(10, round(28 * scale)))
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (200, 200, 200), thickness, cv2.LINE_AA)


def write_skeleton_video(
    path: str | os.PathLike,
    panels: Sequence[Panel],
    width: float,
    height: float,
    size: int = 256,
    fps: int | float = FPS,
    audio: np.ndarray | None = None,
    sample_rate: int = SAMPLE_RATE,
    labels: Sequence[str] | None = None,
    **draw_options,
) -> Path:
    """Write the panels side by side as an mp4 (atomically), with mono ``audio`` [N] muxed if given."""
    frames = skeleton_frames(panels, width, height, size, labels, **draw_options)
    return write_mp4(path, frames, fps=fps, audio=audio, sample_rate=sample_rate)
