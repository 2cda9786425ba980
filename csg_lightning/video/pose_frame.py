"""Which pixel frame a skeleton's keypoints refer to, and the map between it and the photo's pixels.

Stage 1 generates keypoints in the pixels of its square training frame (``frame_size``, 512): the
preprocessing crop of each clip around the speaker's upper body
(:func:`~csg_lightning.preprocess.crop.crop_box_for_clip`). A photo of any size or aspect is put in
that frame the same way: :meth:`PoseFrame.around_person` places a square box around the photo's
reference skeleton (``crop_scale`` x its upper-body + face + hands extent, kept inside the photo where
it fits), and the frame's pixels map to the photo's by one scale and offset (pixel centres at integer
coordinates, as the crop): ``frame = scale * photo + offset``. :meth:`to_photo` takes generated
skeletons back to the photo, where the Stage-2 crop (:class:`~csg_lightning.data.cover_crop.CoverCrop`)
takes over. :meth:`PoseFrame.photo` is the identity (keypoints already in the photo's pixels).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np


@dataclass(frozen=True)
class PoseFrame:
    """A ``width`` x ``height`` skeleton frame; ``frame = scale * photo + (offset_x, offset_y)`` pixels."""

    width: int
    height: int
    scale: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0

    @classmethod
    def photo(cls, width: int, height: int) -> PoseFrame:
        """The photo's own pixels (identity map)."""
        return cls(int(width), int(height))

    @classmethod
    def around_person(cls, keypoints: np.ndarray, scores: np.ndarray, photo_width: int, photo_height: int,
                      size: int = 512, crop_scale: float = 1.3) -> PoseFrame:  # fmt: skip
        """The ``size``-pixel square frame the preprocessing crop would cut around this person
        (keypoints [134, 2] photo pixels, scores [134]); ValueError when no point is confident."""
        from csg_lightning.preprocess.crop import CropConfig, crop_box_for_clip

        track = SimpleNamespace(keypoints=np.asarray(keypoints, np.float32)[None],
                                scores=np.asarray(scores, np.float32)[None])  # fmt: skip
        box = crop_box_for_clip(track, int(photo_width), int(photo_height),
                                CropConfig(scale=float(crop_scale), output_size=int(size)))  # fmt: skip
        s = size / box.size  # the crop's nominal map, exactly invertible
        return cls(int(size), int(size), s, (0.5 - box.x0) * s - 0.5, (0.5 - box.y0) * s - 0.5)

    def to_frame(self, keypoints: np.ndarray) -> np.ndarray:
        """[..., 2] photo pixels -> float32 [..., 2] frame pixels."""
        kp = np.asarray(keypoints, np.float64)
        return (kp * self.scale + np.array([self.offset_x, self.offset_y])).astype(np.float32)

    def to_photo(self, keypoints: np.ndarray) -> np.ndarray:
        """[..., 2] frame pixels -> float32 [..., 2] photo pixels."""
        kp = np.asarray(keypoints, np.float64)
        return ((kp - np.array([self.offset_x, self.offset_y])) / self.scale).astype(np.float32)
