"""A CSG-405 ``crop_box`` (any rectangle) as our square crop, and the release's own 512 x 512 framing.

The release's clip script crops the rectangle ``(x1, y1, x2, y2)`` (``w = x2 - x1`` by ``h = y2 - y1``
source pixels) and letterboxes it into 512 x 512: the longer side fills 512, the shorter one is
scaled to ``int(512 * short / long)`` and centred with black bars of ``(512 - scaled) // 2`` pixels
before it (its ffmpeg chain pads before it scales; the picture it aims at is this one).

We scale, then pad (:func:`csg_lightning.preprocess.crop.crop_frames`), with a square
:class:`~csg_lightning.preprocess.crop.CropBox` ``(x0, y0, size)``. The conversion
(:func:`square_crop`):

* the rectangle's corners are rounded to whole pixels (ffmpeg crops whole pixels);
* ``size = max(w, h)``; the box is centred on the rectangle along its shorter side:
  ``x0 = x1 - (size - w) // 2``, ``y0 = y1 - (size - h) // 2``;
* everything outside the rectangle stays black, as in the release: frames are cut to the
  rectangle (clamped to the frame) first, and the square box is placed relative to that cut, so
  the extra room of the square, and any part of the rectangle beyond the frame, is padding;
* an empty ``crop_box`` is the whole frame, padded square the same way.

So our clip shows the release's picture up to the rounding of the bars (under half an output pixel
along the shorter side, whose scale differs by the release's rounding of the scaled side).
Keypoints in the release's 512 x 512 clip map to ours through that framing's inverse
(:meth:`SquareCrop.from_release_clip`), keypoints in source pixels directly
(:meth:`SquareCrop.keypoints`); both agree exactly with :meth:`SquareCrop.frames`, which uses
:func:`~csg_lightning.preprocess.crop.crop_frames` on the cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OUTPUT_SIZE = 512  # our clips
RELEASE_SIZE = 512  # the release's clips


@dataclass(frozen=True)
class SquareCrop:
    """The crop of one clip. rect: (x1, y1, x2, y2) whole source pixels, x2 / y2 exclusive (the
    release's rectangle, or the frame); x0, y0, size: the square box in source pixels;
    frame_w, frame_h: the source frame; out_size: output pixels per side."""

    rect: tuple[int, int, int, int]
    x0: int
    y0: int
    size: int
    frame_w: int
    frame_h: int
    out_size: int = OUTPUT_SIZE

    @property
    def scale(self) -> float:
        """Output pixels per source pixel."""
        return self.out_size / self.size

    def _cut(self) -> tuple[int, int, int, int]:
        x1, y1, x2, y2 = self.rect
        return max(x1, 0), max(y1, 0), min(x2, self.frame_w), min(y2, self.frame_h)

    def _relative(self):
        """The square relative to the cut (the rectangle clamped to the frame), and the cut."""
        from csg_lightning.preprocess.crop import CropBox

        cx1, cy1, cx2, cy2 = self._cut()
        return CropBox(self.x0 - cx1, self.y0 - cy1, self.size, cx2 - cx1, cy2 - cy1), (cx1, cy1, cx2, cy2)

    def frames(self, frames: np.ndarray) -> np.ndarray:
        """Source frames uint8 [n, H, W, 3] -> uint8 [n, out, out, 3]: the rectangle, scaled, padded black."""
        from csg_lightning.preprocess.crop import crop_frames

        box, (cx1, cy1, cx2, cy2) = self._relative()
        if cx2 <= cx1 or cy2 <= cy1:  # the rectangle lies outside the frame: all padding
            return np.zeros((len(frames), self.out_size, self.out_size, 3), np.uint8)
        return crop_frames(np.ascontiguousarray(frames[:, cy1:cy2, cx1:cx2]), box, self.out_size)

    def keypoints(self, keypoints: np.ndarray) -> np.ndarray:
        """Source pixels [..., 2] -> float32 output pixels [..., 2], exactly as :meth:`frames` moves
        the picture (:func:`~csg_lightning.preprocess.crop.crop_keypoints` on the cut)."""
        from csg_lightning.preprocess.crop import crop_keypoints

        box, (cx1, cy1, _, _) = self._relative()
        rel = np.asarray(keypoints, np.float64) - np.array([cx1, cy1], np.float64)
        return crop_keypoints(rel, box, self.out_size)

    def release_axes(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """((scale, bar) of x, (scale, bar) of y) of the release's 512 x 512 picture: the longer side
        scaled to 512 (no bar), the shorter to ``int(512 * short / long)`` output pixels after a bar of
        ``(512 - that) // 2``."""
        x1, y1, x2, y2 = self.rect
        w, h = x2 - x1, y2 - y1
        long = max(w, h)
        axes = []
        for side in (w, h):
            scaled = RELEASE_SIZE if side == long else int(RELEASE_SIZE * side / long)
            axes.append((scaled / side, float((RELEASE_SIZE - scaled) // 2)))
        return axes[0], axes[1]

    def release_to_source(self, keypoints: np.ndarray) -> np.ndarray:
        """Pixels [..., 2] of the release's 512 x 512 clip -> source pixels (pixel centres as in
        :mod:`csg_lightning.preprocess.crop`: source ``x1 - 0.5`` is the picture's edge at the bar)."""
        kp = np.asarray(keypoints, np.float64)
        out = np.empty_like(kp)
        for axis, (scale, bar) in enumerate(self.release_axes()):
            out[..., axis] = (kp[..., axis] + 0.5 - bar) / scale + self.rect[axis] - 0.5
        return out

    def from_release_clip(self, keypoints: np.ndarray) -> np.ndarray:
        """Keypoints [..., 2] in the release's 512 x 512 clip pixels -> float32 pixels of our crop."""
        return self.keypoints(self.release_to_source(keypoints))

    def as_dict(self) -> dict:
        return {"rect": list(self.rect), "x0": self.x0, "y0": self.y0, "size": self.size,
                "output_size": self.out_size, "outside_rect": "black"}  # fmt: skip


def square_crop(
    crop_box: tuple[float, float, float, float] | None,
    frame_w: int,
    frame_h: int,
    out_size: int = OUTPUT_SIZE,
) -> SquareCrop:
    """The :class:`SquareCrop` of a release ``crop_box`` (None: the whole frame) on a frame_w x frame_h source."""
    if crop_box is None:
        rect = (0, 0, int(frame_w), int(frame_h))
    else:
        rect = tuple(int(round(v)) for v in crop_box)
        if rect[2] <= rect[0] or rect[3] <= rect[1]:
            raise ValueError(f"crop_box {list(crop_box)} is empty once rounded to whole pixels")
    x1, y1, x2, y2 = rect
    w, h = x2 - x1, y2 - y1
    size = max(w, h)
    return SquareCrop(
        rect, x1 - (size - w) // 2, y1 - (size - h) // 2, size, int(frame_w), int(frame_h), out_size
    )
