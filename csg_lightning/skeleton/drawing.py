"""Confidence-aware pose drawing of 134-point frames (MimicMotion's convention): the project's one renderer.

It lives beside the skeleton layout (the lowest layer, numpy + OpenCV only) because every layer draws
with it: the pose-video datamodule (conditioning images), ``csg_lightning.render`` (skeleton videos),
the video pipeline, pose estimation overlays and the preprocessing contact sheet.

What is drawn (sizes are in pixels of a canvas whose short side is 2160, and scale with the canvas):

- body: the 17 OpenPose limbs as filled ellipses of half-width 4 in the OpenPose colour times
  ``conf_a * conf_b`` (a limb is skipped when either end has confidence < 0.3), all limbs dimmed by 0.6,
  then the 18 joints (confidence > 0.3) as discs of radius 4 in colour times ``conf``;
- hands: 20 edges per hand, coloured by HSV hue ``i / 20`` times ``conf_a * conf_b``, thickness 2, and
  21 joints as discs of radius 4 in ``(0, 0, conf * 255)``;
- face: 68 grey discs of radius 3, intensity ``conf * 255``;
- feet (off by default; MimicMotion does not draw them): 6 ankle-to-toe limbs like the body's.

A hand or face point is drawn only when its normalised x and y are both > 0.01 (so (0, 0) means
"missing"); non-finite coordinates count as missing everywhere. Marks whose colour would be pure black
are skipped (they would only erase what is beneath them).

Colour order: MimicMotion draws the listed colours on a canvas it then converts BGR -> RGB, so its pose
images carry R and B swapped relative to the listed OpenPose colours (the first limb, listed red, comes
out blue; hand joints come out red). ``swap_rb=True`` (the default) keeps that channel order, as
MimicMotion weights need; ``swap_rb=False`` gives the listed colours.

Resizing: the canvas is shrunk with ``cv2.INTER_AREA`` (every canvas pixel counts; thin lines stay
visible); MimicMotion used OpenCV's default bilinear resize (``interpolation=cv2.INTER_LINEAR``).
Only the drawn part of the canvas is resized, cut where canvas and output pixel grids meet, which
gives the same image as resizing the whole canvas.

Fast path: ``canvas_size`` sets the short side of the drawing canvas (default 2160 as MimicMotion);
``canvas_size=None`` draws directly at the output size, with every width and radius scaled by
``short side / 2160`` (marks stay at least one pixel wide), about ten times faster (training batches);
``snap_canvas=True`` rounds the canvas to a whole multiple of the output size (same look, faster shrink).
Drawing uses OpenCV's sub-pixel (fixed-point) coordinates, so the picture does not jitter at small sizes.
"""

from __future__ import annotations

import colorsys
from fractions import Fraction

import cv2
import numpy as np

from csg_lightning.skeleton.layout import HAND_EDGES, NUM_KEYPOINTS
from csg_lightning.skeleton.openpose import OPENPOSE_COLORS, OPENPOSE_LIMBS, to_openpose_order

REFERENCE_CANVAS = 2160
LIMB_HALF_WIDTH = 4.0
BODY_JOINT_RADIUS = 4.0
HAND_LINE_THICKNESS = 2.0
HAND_JOINT_RADIUS = 4.0
FACE_JOINT_RADIUS = 3.0
LIMB_DIM = 0.6
MIN_CONFIDENCE = 0.3
VISIBLE_EPS = 0.01

# Index ranges in the OpenPose-18-first order (see csg_lightning.skeleton.openpose).
_BODY = np.arange(0, 18)
_FACE = np.arange(24, 92)
_HANDS = (np.arange(92, 113), np.arange(113, 134))
_LIMB_A = np.array([a for a, _ in OPENPOSE_LIMBS])
_LIMB_B = np.array([b for _, b in OPENPOSE_LIMBS])
# Feet (OpenPose order): left ankle 13 -> 18, 19, 20; right ankle 10 -> 21, 22, 23.
_FEET_A = np.array([13, 13, 13, 10, 10, 10])
_FEET_B = np.arange(18, 24)
_FEET_COLORS = np.array([OPENPOSE_COLORS[13]] * 3 + [OPENPOSE_COLORS[10]] * 3, dtype=np.float64)
_BODY_COLORS = np.array(OPENPOSE_COLORS, dtype=np.float64)  # [18, 3] RGB as listed
_HAND_A = np.array([a for a, _ in HAND_EDGES])
_HAND_B = np.array([b for _, b in HAND_EDGES])
_HAND_COLORS = np.array([colorsys.hsv_to_rgb(i / len(HAND_EDGES), 1.0, 1.0) for i in range(len(HAND_EDGES))])

_SHIFT = 4  # OpenCV fixed-point fraction bits
_ONE = 1 << _SHIFT


def as_array(x) -> np.ndarray:
    """numpy float64 copy of an array-like or a torch tensor (any device)."""
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def canvas_shape(out_size: tuple[int, int], canvas_size: int | None, snap: bool = False) -> tuple[int, int]:
    """(height, width) of the drawing canvas: ``out_size`` with its short side scaled to ``canvas_size``.

    ``snap``: use the nearest whole multiple of ``out_size`` instead (e.g. 2304 x 4096 for 576 x 1024),
    which OpenCV shrinks about three times faster.
    """
    h, w = out_size
    if canvas_size is None or canvas_size == min(h, w):
        return h, w
    if snap:
        factor = max(1, round(canvas_size / min(h, w)))
        return h * factor, w * factor
    scale = canvas_size / min(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def draw_pose(
    keypoints,
    scores,
    width: float,
    height: float,
    out_size: tuple[int, int] | None = None,
    *,
    canvas_size: int | None = REFERENCE_CANVAS,
    snap_canvas: bool = False,
    swap_rb: bool = True,
    body: bool = True,
    hands: bool = True,
    face: bool = True,
    feet: bool = False,
    interpolation: int = cv2.INTER_AREA,
) -> np.ndarray:
    """Draw one 134-point frame as an RGB image.

    keypoints: [134, 2] pixels of a ``width`` x ``height`` frame, storage order (numpy or torch).
    scores: [134] confidences in [0, 1].
    out_size: (H, W) of the image, default (height, width). Coordinates are normalised by
    width/height, so a different aspect ratio stretches the skeleton (as in MimicMotion).
    canvas_size: short side of the canvas drawn on before resizing to ``out_size`` with
    ``interpolation`` (MimicMotion: 2160); None draws directly at ``out_size`` (fast path).
    snap_canvas: round the canvas to a whole multiple of ``out_size`` (same look, ~2x faster).
    swap_rb: MimicMotion's channel order (see the module docstring); body/hands/face/feet: parts to draw.
    Returns uint8 [H, W, 3].
    """
    kp, sc = as_array(keypoints), as_array(scores)
    if kp.shape != (NUM_KEYPOINTS, 2) or sc.shape != (NUM_KEYPOINTS,):
        raise ValueError(
            f"draw_pose: expected keypoints [134, 2] and scores [134], got {kp.shape}, {sc.shape}"
        )
    if width <= 0 or height <= 0:
        raise ValueError(f"draw_pose: width and height must be positive, got {width} x {height}")
    out_h, out_w = (round(height), round(width)) if out_size is None else (int(out_size[0]), int(out_size[1]))
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"draw_pose: out_size must be positive, got {(out_h, out_w)}")
    ch, cw = canvas_shape((out_h, out_w), canvas_size, snap_canvas)
    canvas = np.zeros((ch, cw, 3), dtype=np.uint8)
    norm = to_openpose_order(kp / np.array([width, height], dtype=np.float64))
    conf = to_openpose_order(sc, axis=-1)
    box = _draw_normalised(canvas, norm, conf, swap_rb=swap_rb, body=body, hands=hands, face=face, feet=feet)
    if (ch, cw) == (out_h, out_w):
        return canvas
    if interpolation == cv2.INTER_AREA and ch >= out_h and cw >= out_w:
        return _shrink_content(canvas, box, (out_h, out_w))
    return cv2.resize(canvas, (out_w, out_h), interpolation=interpolation)


def draw_pose_sequence(
    keypoints,
    scores,
    width: float,
    height: float,
    out_size: tuple[int, int] | None = None,
    **options,
) -> np.ndarray:
    """Draw T frames: keypoints [T, 134, 2] pixels, scores [T, 134] -> uint8 [T, H, W, 3].

    ``options`` are :func:`draw_pose`'s keyword arguments (``canvas_size``, ``swap_rb``, ...).
    """
    kp, sc = as_array(keypoints), as_array(scores)
    if kp.ndim != 3 or kp.shape[1:] != (NUM_KEYPOINTS, 2) or sc.shape != kp.shape[:2]:
        raise ValueError(
            f"draw_pose_sequence: expected keypoints [T, 134, 2] and scores [T, 134], got {kp.shape}, {sc.shape}"
        )
    out_h, out_w = (round(height), round(width)) if out_size is None else (int(out_size[0]), int(out_size[1]))
    frames = np.empty((len(kp), out_h, out_w, 3), dtype=np.uint8)
    for t in range(len(kp)):
        frames[t] = draw_pose(kp[t], sc[t], width, height, (out_h, out_w), **options)
    return frames


def _draw_normalised(
    canvas: np.ndarray,
    norm: np.ndarray,
    conf: np.ndarray,
    *,
    swap_rb: bool,
    body: bool,
    hands: bool,
    face: bool,
    feet: bool,
) -> tuple[int, int, int, int] | None:
    """Draw on ``canvas`` [h, w, 3] in place; norm [134, 2] in [0, 1] and conf [134], OpenPose order.

    Returns a box (x0, y0, x1, y1) of canvas pixels outside which nothing was drawn (None: nothing).
    """
    h, w = canvas.shape[:2]
    scale = min(h, w) / REFERENCE_CANVAS
    finite = np.isfinite(norm).all(axis=1)
    conf = np.where(finite & np.isfinite(conf), np.clip(conf, 0.0, 1.0), 0.0)
    # far-off points (a diverged model) are pulled in so OpenCV's int32 fixed-point maths cannot overflow
    pixels = np.clip(np.where(finite[:, None], norm, -1.0), -8.0, 9.0) * np.array([w, h])
    order = slice(None, None, -1) if swap_rb else slice(None)
    if body:
        _draw_limbs(canvas, pixels, conf, _LIMB_A, _LIMB_B, _BODY_COLORS[:, order], scale)
    if feet:
        _draw_limbs(canvas, pixels, conf, _FEET_A, _FEET_B, _FEET_COLORS[:, order], scale)
    if body:
        _draw_joints(canvas, pixels, conf, _BODY, _BODY_COLORS[:, order], scale)
    if hands:
        joint_color = np.array([0.0, 0.0, 255.0])[order]
        visible = finite & (norm[:, 0] > VISIBLE_EPS) & (norm[:, 1] > VISIBLE_EPS)
        for idx in _HANDS:
            _draw_hand(
                canvas, pixels[idx], conf[idx], visible[idx], _HAND_COLORS[:, order], joint_color, scale
            )
    if face:
        visible = finite & (norm[:, 0] > VISIBLE_EPS) & (norm[:, 1] > VISIBLE_EPS)
        _draw_discs(
            canvas, pixels[_FACE], conf[_FACE], visible[_FACE], np.full(3, 255.0), FACE_JOINT_RADIUS * scale
        )
    return _content_box(pixels[finite & (conf > 0)], scale, (h, w))


def _content_box(
    points: np.ndarray, scale: float, shape: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """Canvas box covering every mark drawn around ``points`` [n, 2] (widths and radii as margin)."""
    if len(points) == 0:
        return None
    margin = (
        max(LIMB_HALF_WIDTH, BODY_JOINT_RADIUS, HAND_JOINT_RADIUS, HAND_LINE_THICKNESS) * max(scale, 1.0) + 3
    )
    lo = np.floor(points.min(axis=0) - margin).astype(int)
    hi = np.ceil(points.max(axis=0) + margin).astype(int) + 1
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], shape[1]), min(hi[1], shape[0])
    return None if x0 >= x1 or y0 >= y1 else (x0, y0, x1, y1)


def _aligned_span(lo: int, hi: int, src: int, dst: int) -> tuple[int, int, int, int]:
    """Source span [a, b) covering [lo, hi) and its output span [c, d), cut where src/dst pixels align."""
    ratio = Fraction(src, dst)
    p, q = ratio.numerator, ratio.denominator  # q output pixels cover exactly p source pixels
    first, last = lo // p, -(-hi // p)
    return first * p, min(last * p, src), first * q, min(last * q, dst)


def _shrink_content(canvas: np.ndarray, box, out_size: tuple[int, int]) -> np.ndarray:
    """INTER_AREA downscale of ``canvas`` to ``out_size`` that only touches the drawn ``box``.

    The black rest of the canvas stays black; the box is widened to where canvas and output pixel
    grids meet, so the result equals resizing the whole canvas (up to float rounding).
    """
    out_h, out_w = out_size
    out = np.zeros((out_h, out_w, 3), dtype=np.uint8)
    if box is None:
        return out
    ch, cw = canvas.shape[:2]
    x0, x1, u0, u1 = _aligned_span(box[0], box[2], cw, out_w)
    y0, y1, v0, v1 = _aligned_span(box[1], box[3], ch, out_h)
    out[v0:v1, u0:u1] = cv2.resize(canvas[y0:y1, x0:x1], (u1 - u0, v1 - v0), interpolation=cv2.INTER_AREA)
    return out


def _fixed(values: np.ndarray) -> list:
    """Pixels (float) -> OpenCV fixed-point ints (nested lists, for fast per-call conversion)."""
    return np.rint(values * _ONE).astype(np.int64).tolist()


def _draw_limbs(canvas, pixels, conf, idx_a, idx_b, colors, scale) -> None:
    """Filled ellipses between point pairs, colour * conf_a * conf_b, dimmed by LIMB_DIM."""
    ca, cb = conf[idx_a], conf[idx_b]
    keep = (ca >= MIN_CONFIDENCE) & (cb >= MIN_CONFIDENCE)
    if not keep.any():
        return
    colors = colors[: len(idx_a)]  # limb i takes colour i
    pa, pb = pixels[idx_a][keep], pixels[idx_b][keep]
    # int(c * ca * cb) then the canvas-wide * 0.6 with truncation, as MimicMotion; on a black canvas
    # dimming each limb's colour before drawing gives the same pixels.
    color = np.floor(np.floor(colors[keep] * (ca[keep] * cb[keep])[:, None]) * LIMB_DIM)
    center = _fixed((pa + pb) / 2)
    delta = pa - pb
    half_len = _fixed(np.hypot(delta[:, 0], delta[:, 1]) / 2)
    angle = np.degrees(np.arctan2(delta[:, 1], delta[:, 0])).round().astype(int).tolist()
    half_width = round(max(LIMB_HALF_WIDTH * scale, 0.5) * _ONE)
    step = 1 if scale >= 0.5 else 5
    for c, (cx, cy), length, ang in zip(color.tolist(), center, half_len, angle, strict=True):
        if max(c) <= 0:
            continue
        poly = cv2.ellipse2Poly((cx, cy), (length, half_width), ang, 0, 360, step)
        cv2.fillConvexPoly(canvas, poly, c, lineType=cv2.LINE_8, shift=_SHIFT)


def _draw_joints(canvas, pixels, conf, idx, colors, scale) -> None:
    """Body joints with confidence > MIN_CONFIDENCE: discs in colour * conf."""
    c = conf[idx]
    keep = c > MIN_CONFIDENCE
    color = np.floor(colors[: len(idx)] * c[:, None])
    _draw_discs(canvas, pixels[idx], c, keep, color, BODY_JOINT_RADIUS * scale, per_point_color=True)


def _draw_discs(canvas, pixels, conf, keep, color, radius, per_point_color: bool = False) -> None:
    if not keep.any():
        return
    colors = color[keep] if per_point_color else np.floor(color[None] * conf[keep][:, None])
    r = round(max(radius, 0.5) * _ONE)
    for c, p in zip(colors.tolist(), _fixed(pixels[keep]), strict=True):
        if max(c) > 0:
            cv2.circle(canvas, p, r, c, thickness=-1, lineType=cv2.LINE_8, shift=_SHIFT)


def _draw_hand(canvas, pixels, conf, visible, edge_colors, joint_color, scale) -> None:
    """One hand: pixels [21, 2], conf [21], visible [21] bool."""
    edge_ok = visible[_HAND_A] & visible[_HAND_B]
    strength = np.floor(conf[_HAND_A] * conf[_HAND_B] * 255.0)
    colors = np.rint(edge_colors * strength[:, None])
    thickness = max(1, round(HAND_LINE_THICKNESS * scale))
    fixed = _fixed(pixels)
    for e in np.flatnonzero(edge_ok).tolist():
        c = colors[e].tolist()
        if max(c) > 0:
            cv2.line(canvas, fixed[_HAND_A[e]], fixed[_HAND_B[e]], c, thickness, cv2.LINE_8, _SHIFT)
    _draw_discs(canvas, pixels, conf, visible, joint_color, HAND_JOINT_RADIUS * scale)


__all__ = ["REFERENCE_CANVAS", "canvas_shape", "draw_pose", "draw_pose_sequence"]
