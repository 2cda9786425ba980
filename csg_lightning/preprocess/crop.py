"""One square crop box per clip around the speaker's upper body, and the crop of frames and keypoints.

Pixel convention (OpenCV's, and that of the pose estimators): integer coordinates are pixel
centres, so pixel ``i`` covers ``[i - 0.5, i + 0.5)`` and a W-pixel row spans ``[-0.5, W - 0.5)``.

A :class:`CropBox` is a square of ``size`` source pixels starting at pixel ``(x0, y0)``; it may hang
over the frame edges. :func:`crop_frames` resizes the *in-frame part* of the box to its place in the
``out_size`` output (``cv2.INTER_AREA`` when shrinking, ``cv2.INTER_LINEAR`` when enlarging) and only
then fills the rest with black, so no black is blurred into the picture. The in-frame part's
output edges are rounded to whole output pixels; :func:`axis_map` gives the resulting exact affine
map per axis (``u = scale * x + offset``), which :func:`crop_keypoints` applies, so keypoints and
cropped frames agree exactly (the per-axis scale differs from ``out_size / size`` by at most
half an output pixel over the box; it is exactly that when the box lies inside the frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from csg_lightning.io.validation import InputError
from csg_lightning.preprocess.segments import SpeakerTrack
from csg_lightning.skeleton.layout import SkeletonLayout

L = SkeletonLayout
POINT_GROUPS: dict[str, np.ndarray] = {
    "upper_body": L.UPPER_BODY,  # storage 0-12: nose, eyes, ears, shoulders, elbows, wrists, hips
    "neck": np.array([L.NECK]),
    "legs": L.LEGS,
    "face": L.FACE,
    "left_hand": L.LEFT_HAND,
    "right_hand": L.RIGHT_HAND,
    "hands": L.HANDS,
}
CENTERS = ("extent", "neck")


def point_indices(groups: list[str] | tuple[str, ...], what: str) -> np.ndarray:
    """Names of :data:`POINT_GROUPS` -> sorted unique storage indices; ``what`` names the config field."""
    unknown = [g for g in groups if g not in POINT_GROUPS]
    if unknown or not groups:
        raise InputError(f"{what}: expected a non-empty list of {sorted(POINT_GROUPS)}, got {list(groups)}")
    return np.unique(np.concatenate([POINT_GROUPS[g] for g in groups]))


@dataclass
class CropConfig:
    """The square crop of each clip (sizes in source pixels unless said otherwise).

    points: point groups (:data:`POINT_GROUPS`) whose extent the box must hold: the upper body
        (body 0-12), neck, face and hands.
    min_score: a point counts in a frame when its score is >= this.
    center: "extent": the box centre is the median over the clip of each frame's mid-point of the
        confident points' bounding box; "neck": the median neck position.
    scale: box side = scale * the clip's extent, the largest (or ``extent_quantile``) over frames of
        twice the Chebyshev distance of a confident point from the centre. 1.3 leaves 15 % of the
        extent on each side: keypoints stop at the brows, joints and fingertips, while the picture must
        also hold the skull and hair above the brows (about 0.1 of a half-body extent), the shoulder
        and arm outlines, and a margin for keypoint error; larger wastes the 512 pixels the hands need.
    extent_quantile: quantile over frames of the per-frame extent (1.0: the maximum).
    keep_inside: shift the box into the frame along each axis where it fits (no black borders).
    min_size: smallest box side.
    output_size: side of the cropped frames in output pixels.
    """

    points: list[str] = field(default_factory=lambda: ["upper_body", "neck", "face", "hands"])
    min_score: float = 0.3
    center: str = "extent"
    scale: float = 1.3
    extent_quantile: float = 1.0
    keep_inside: bool = True
    min_size: int = 64
    output_size: int = 512

    def __post_init__(self) -> None:
        point_indices(self.points, "crop config: field 'points'")
        if self.center not in CENTERS:
            raise InputError(f"crop config: field 'center' must be one of {CENTERS}, got {self.center!r}")
        if not self.scale > 0:
            raise InputError(f"crop config: field 'scale' must be > 0, got {self.scale}")
        if not 0.0 <= self.extent_quantile <= 1.0:
            raise InputError(
                f"crop config: field 'extent_quantile' must be in [0, 1], got {self.extent_quantile}"
            )
        for name in ("min_size", "output_size"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"crop config: field '{name}' must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class CropBox:
    """A square of ``size`` source pixels with top-left pixel ``(x0, y0)``, in a frame of
    ``frame_width`` x ``frame_height`` pixels (None: unknown, the box is taken to lie inside it)."""

    x0: int
    y0: int
    size: int
    frame_width: int | None = None
    frame_height: int | None = None

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"CropBox: size must be >= 1 pixel, got {self.size}")


@dataclass(frozen=True)
class AxisMap:
    """One axis of a crop: source pixels ``[src0, src1)`` (the in-frame part of the box) land on output
    pixels ``[dst0, dst1)`` (empty when nothing of the box is in the frame); a source coordinate x
    maps to ``scale * x + offset`` output pixels."""

    src0: int
    src1: int
    dst0: int
    dst1: int
    scale: float
    offset: float

    @property
    def empty(self) -> bool:
        return self.dst1 <= self.dst0


def _round(v: float) -> int:
    return math.floor(v + 0.5)


def axis_map(start: int, size: int, length: int | None, out_size: int) -> AxisMap:
    """The map of one axis for a box ``[start, start + size)`` in a frame of ``length`` pixels."""
    s = out_size / size
    if length is None:  # unknown frame: the nominal map
        return AxisMap(start, start + size, 0, out_size, s, (0.5 - start) * s - 0.5)
    i0, i1 = min(max(start, 0), length), min(max(start + size, 0), length)
    u0, u1 = _round((i0 - start) * s), _round((i1 - start) * s)
    if i1 <= i0 or u1 <= u0:
        return AxisMap(i0, i0, 0, 0, s, (0.5 - start) * s - 0.5)
    scale = (u1 - u0) / (i1 - i0)
    return AxisMap(i0, i1, u0, u1, scale, u0 + (0.5 - i0) * scale - 0.5)


def crop_frames(frames: np.ndarray, box: CropBox, out_size: int = 512) -> np.ndarray:
    """frames uint8 [n, H, W, 3] -> uint8 [n, out_size, out_size, 3]: the box's in-frame part
    resized, the part outside the frame black."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"crop_frames expects frames [n, H, W, 3], got {frames.shape}")
    n, h, w = frames.shape[:3]
    if (box.frame_width, box.frame_height) not in ((None, None), (w, h)):
        raise ValueError(
            f"crop_frames: {box} was made for {box.frame_width}x{box.frame_height} frames, got {w}x{h}"
        )
    out = np.zeros((n, out_size, out_size, 3), np.uint8)
    mx, my = axis_map(box.x0, box.size, w, out_size), axis_map(box.y0, box.size, h, out_size)
    if mx.empty or my.empty:
        return out
    dw, dh = mx.dst1 - mx.dst0, my.dst1 - my.dst0
    sw, sh = mx.src1 - mx.src0, my.src1 - my.src0
    interpolation = cv2.INTER_AREA if dw <= sw and dh <= sh else cv2.INTER_LINEAR
    for i in range(n):
        region = frames[i, my.src0 : my.src1, mx.src0 : mx.src1]
        if (dw, dh) != (sw, sh):
            region = cv2.resize(region, (dw, dh), interpolation=interpolation)
        out[i, my.dst0 : my.dst1, mx.dst0 : mx.dst1] = region
    return out


def crop_keypoints(
    keypoints: np.ndarray, box: CropBox, out_size: int = 512, frame_size: tuple[int, int] | None = None
) -> np.ndarray:
    """keypoints [..., 2] source pixels -> float32 [..., 2] pixels of :func:`crop_frames`' output.

    frame_size: (width, height) of the source frames; default the box's own. Without either the
    box is taken to lie inside the frame (then exact only if it does).
    """
    w, h = frame_size if frame_size is not None else (box.frame_width, box.frame_height)
    mx, my = axis_map(box.x0, box.size, w, out_size), axis_map(box.y0, box.size, h, out_size)
    kp = np.asarray(keypoints, np.float64)
    if kp.shape[-1] != 2:
        raise ValueError(f"crop_keypoints expects keypoints [..., 2], got {kp.shape}")
    out = np.empty_like(kp)
    out[..., 0] = mx.scale * kp[..., 0] + mx.offset
    out[..., 1] = my.scale * kp[..., 1] + my.offset
    return out.astype(np.float32)


def crop_box_for_clip(
    track: SpeakerTrack, frame_w: int, frame_h: int, cfg: CropConfig | None = None
) -> CropBox:
    """The clip's square box from its (smoothed) speaker track; see :class:`CropConfig`.

    Raises ValueError when no chosen point is confident in any frame.
    """
    cfg = cfg or CropConfig()
    idx = point_indices(cfg.points, "crop config: field 'points'")
    kp = np.asarray(track.keypoints, np.float64)[:, idx]
    ok = np.asarray(track.scores)[:, idx] >= cfg.min_score
    frames = ok.any(1)
    if not frames.any():
        raise ValueError(
            f"crop_box_for_clip: no point of {cfg.points} has score >= {cfg.min_score} in any frame"
        )
    kp, ok = kp[frames], ok[frames]
    if cfg.center == "neck":
        neck_ok = np.asarray(track.scores)[:, L.NECK] >= cfg.min_score
        source = track.keypoints[neck_ok, L.NECK] if neck_ok.any() else None
        if source is None:
            raise ValueError(
                f"crop_box_for_clip: center 'neck' but the neck has score >= {cfg.min_score} in no frame"
            )
        center = np.median(np.asarray(source, np.float64), axis=0)
    else:
        lo = np.where(ok[..., None], kp, np.inf).min(1)
        hi = np.where(ok[..., None], kp, -np.inf).max(1)
        center = np.median(0.5 * (lo + hi), axis=0)
    dist = np.where(ok, np.abs(kp - center).max(-1), 0.0).max(1)  # [frames] Chebyshev radius
    extent = 2.0 * float(np.quantile(dist, cfg.extent_quantile))
    size = max(int(cfg.min_size), math.ceil(cfg.scale * extent))
    x0, y0 = (_round(c - (size - 1) / 2) for c in center)
    if cfg.keep_inside:
        if size <= frame_w:
            x0 = min(max(x0, 0), frame_w - size)
        if size <= frame_h:
            y0 = min(max(y0, 0), frame_h - size)
    return CropBox(int(x0), int(y0), int(size), int(frame_w), int(frame_h))
