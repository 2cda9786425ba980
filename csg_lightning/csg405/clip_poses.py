"""A CSG-405 clip's skeletons in our 512 x 512 crop: from the release's pose file, or re-estimated.

Release pose files (the ``CSG-405-pose`` archive) are one ``POSE_DIR/<clip name>.npy`` per clip,
``(T, persons, 134, 3)`` x / y / confidence, the neck first; they are read by the ``csg405``
importer (:mod:`csg_lightning.pose.importers.csg405`: index map, missing points, person choice,
coordinate units). Their pixels are those of the release's own 512 x 512 clips (the release's
loader and its drawing script pair ``pose/<name>.npy`` with ``mp4/<name>.mp4``, the cropped clip):
``pose_frame="crop"`` maps them through the inverse of the release's framing
(:meth:`~csg_lightning.csg405.crop_geometry.SquareCrop.from_release_clip`). Files in source-video
pixels take ``pose_frame="source"``. Normalised files ([0, 1] or [-1, 1]) are scaled to the canvas
of that frame (512 x 512, or the source frame) by the importer's ``auto`` rule.

Re-estimation runs a :class:`~csg_lightning.pose.estimator.PoseEstimator` on our cropped frames and
keeps the speaker per frame (:func:`csg_lightning.preprocess.speaker_track.build_track`).

Either way, points that fall outside the output frame get score 0, and every point with score 0
has coordinates (0, 0).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from csg_lightning.csg405.crop_geometry import SquareCrop
from csg_lightning.io.validation import InputError

POSE_FRAMES = ("crop", "source")
POSE_SUFFIXES = (".npy", ".npz")


def find_pose_file(poses_dir: str | os.PathLike, name: str) -> Path | None:
    """``POSE_DIR/<name>.npy`` (or ``.npz``); None when there is none."""
    for suffix in POSE_SUFFIXES:
        path = Path(poses_dir) / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def release_poses(
    path: Path, crop: SquareCrop, pose_frame: str = "crop"
) -> tuple[np.ndarray, np.ndarray, dict]:
    """A release pose file -> (keypoints float32 [T, 134, 2] output pixels, scores float32 [T, 134], info).

    Raises :class:`~csg_lightning.pose.importers.common.PoseFormatError` (an InputError) naming the
    file for anything the importer refuses (shape, dtype, no frames, no person)."""
    from csg_lightning.pose.importers import ImportOptions, import_poses

    if pose_frame not in POSE_FRAMES:
        raise InputError(f"--pose-frame {pose_frame!r}: expected one of {list(POSE_FRAMES)}")
    if pose_frame == "crop":
        canvas = (crop.out_size, crop.out_size)
    else:
        canvas = (crop.frame_w, crop.frame_h)
    poses = import_poses(path, "csg405", ImportOptions(width=canvas[0], height=canvas[1]))
    if pose_frame == "crop":
        keypoints = crop.from_release_clip(poses.keypoints)
    else:
        keypoints = crop.keypoints(poses.keypoints)
    info = {"source": "release", "file": path.name, "frame": pose_frame,
            "coords": poses.summary["coords"]["rule"], "person": poses.summary["person"]["rule"],
            "empty_frames": len(poses.summary["empty_frames"])}  # fmt: skip
    if pose_frame == "crop":
        (sx, bx), (sy, by) = crop.release_axes()
        info["release_framing"] = {"scale": [sx, sy], "bar": [bx, by]}
    kp, sc = finish(keypoints, poses.scores, crop.out_size)
    return kp, sc, info


def estimated_poses(
    estimator, frames: Iterable[np.ndarray], batch: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``estimator`` on cropped frames (uint8 [n, S, S, 3] chunks) -> the speaker's keypoints
    float32 [T, 134, 2] (output pixels) and scores [T, 134]."""
    from csg_lightning.preprocess.segments import SpeakerTrack
    from csg_lightning.preprocess.speaker_track import build_track

    parts, size = [], None
    for chunk in frames:
        size = chunk.shape[1]
        for i in range(0, len(chunk), batch):
            parts.append(build_track(estimator(list(chunk[i : i + batch]))))
    if not parts:
        raise InputError("no frames to estimate poses on")
    track = SpeakerTrack.concatenate(parts)
    return finish(track.keypoints, track.scores, size)


def finish(keypoints: np.ndarray, scores: np.ndarray, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Score 0 for points outside ``[0, out_size - 1]`` (not in the clip's frames); (0, 0) where score is 0."""
    kp = np.asarray(keypoints, np.float32).copy()
    sc = np.asarray(scores, np.float32).copy()
    outside = ((kp < 0) | (kp > out_size - 1)).any(-1) | ~np.isfinite(kp).all(-1)
    sc[outside] = 0.0
    kp[sc <= 0] = 0.0
    return kp, sc
