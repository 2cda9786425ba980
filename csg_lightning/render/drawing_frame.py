"""The frame a skeleton is drawn in: which frame the keypoints' pixels refer to.

A model's ``frame_size``, or a box fitted around the confident points."""

from __future__ import annotations

import numpy as np

from csg_lightning.skeleton.drawing import MIN_CONFIDENCE


def content_frame(
    keypoints, scores, margin: float = 0.15, min_confidence: float = MIN_CONFIDENCE
) -> tuple[np.ndarray, float, float]:
    """A square frame around all confident points of ``keypoints`` [..., 134, 2] (scores [..., 134]).

    Returns (offset [2], width, height): ``keypoints - offset`` are pixels of a ``width`` x ``height``
    frame (width == height) that holds every point with score >= ``min_confidence`` plus ``margin``
    (a fraction of the box side) on each side. With no confident point: offset 0 and a 1 x 1 frame.
    """
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    sc = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(kp) != len(sc):
        raise ValueError(f"content_frame: {len(kp)} points but {len(sc)} scores")
    keep = (sc >= min_confidence) & np.isfinite(kp).all(axis=1)
    if not keep.any():
        return np.zeros(2), 1.0, 1.0
    lo, hi = kp[keep].min(axis=0), kp[keep].max(axis=0)
    side = max(float((hi - lo).max()), 1.0) * (1.0 + 2.0 * margin)
    offset = (lo + hi) / 2.0 - side / 2.0
    return offset, side, side


def frame_size_of(hparams) -> tuple[float | None, float | None]:
    """(width, height) from ``hparams.frame_size`` (a number for a square frame, or a pair), else Nones."""
    size = hparams.get("frame_size") if hasattr(hparams, "get") else None
    if isinstance(size, (int, float)) and size > 0:
        return float(size), float(size)
    if isinstance(size, (list, tuple)) and len(size) == 2:
        return float(size[0]), float(size[1])
    return None, None


def frame_holds(keypoints, scores, width: float, height: float, min_inside: float = 0.9) -> bool:
    """Whether at least ``min_inside`` of the confident points of ``keypoints`` [..., 134, 2] lie in
    the ``width`` x ``height`` frame (False when no point is confident)."""
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
    sc = np.asarray(scores, dtype=np.float64).reshape(-1)
    confident = kp[(sc >= MIN_CONFIDENCE) & np.isfinite(kp).all(axis=1)]
    inside = ((confident >= 0) & (confident <= (width, height))).all(axis=1)
    return bool(len(confident)) and float(inside.mean()) >= min_inside


def frame_for(
    keypoints, scores, width: float | None = None, height: float | None = None
) -> tuple[np.ndarray, float, float]:
    """(offset [2], width, height) to draw ``keypoints`` [..., 134, 2] in: the ``width`` x ``height``
    frame when given and it holds the skeletons (:func:`frame_holds`), else :func:`content_frame`.

    For frame sizes that are only guessed (a model's ``frame_size``, a datamodule attribute): a wrong
    guess gives a fitted frame instead of an empty picture.
    """
    if width is not None and height is not None and frame_holds(keypoints, scores, width, height):
        return np.zeros(2), float(width), float(height)
    return content_frame(keypoints, scores)
