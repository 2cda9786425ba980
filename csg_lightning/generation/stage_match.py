"""What each stage's checkpoint was trained on, and whether a Stage-1 and a Stage-2 checkpoint chain.

A :class:`StageSpec` is read from a checkpoint file's recorded hyper-parameters: the skeleton layout
(number of keypoints: Stage 1's reference buffer; Stage 2's datamodule ``num_keypoints`` when
recorded, else the project's 134-point layout its pose images are drawn from) and the frame rate of
the skeletons it makes or was trained on (the datamodule's ``fps``, default ``timing.FPS``; Stage 2's
divided by its ``frame_stride``: the demo video model sees every 2nd frame, 12.5 fps).

:func:`chain_stride` says how many Stage-1 frames make one video frame: ``video.frame_stride`` when the
pipeline sets it, else Stage-1 fps / Stage-2 fps, which must be a whole number. Layouts must be equal.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from csg_lightning.io.validation import InputError
from csg_lightning.skeleton.layout import NUM_KEYPOINTS
from csg_lightning.timing import FPS


@dataclass(frozen=True)
class StageSpec:
    num_keypoints: int
    fps: float
    source: str  # "skeleton.checkpoint <path>" (for messages)


def read_spec(path: str | os.PathLike, stage: str) -> StageSpec:
    """The :class:`StageSpec` of a checkpoint file (``stage``: "skeleton" or "video")."""
    from csg_lightning.checkpoints.safe_load import load_checkpoint_file

    checkpoint = load_checkpoint_file(path, what=f"{stage}.checkpoint", mmap=True)
    data = checkpoint.get("datamodule_hyper_parameters") or {}
    fps = float(data.get("fps", FPS))
    source = f"{stage}.checkpoint {path}"
    if stage == "skeleton":
        reference = checkpoint.get("state_dict", {}).get("default_reference_keypoints")
        points = int(reference.shape[0]) if reference is not None else NUM_KEYPOINTS
        return StageSpec(points, fps, source)
    stride = int(data.get("frame_stride", 1))
    return StageSpec(int(data.get("num_keypoints", NUM_KEYPOINTS)), fps / stride, source)


def chain_stride(skeleton: StageSpec, video: StageSpec, frame_stride: int | None, where: str) -> int:
    """Stage-1 frames per video frame; InputError naming both checkpoints when they do not chain."""
    if skeleton.num_keypoints != video.num_keypoints:
        raise InputError(
            f"{where}: {skeleton.source} makes {skeleton.num_keypoints}-point skeletons but {video.source} "
            f"was trained on {video.num_keypoints}-point pose images; expected the same skeleton layout"
        )
    if frame_stride is not None:
        return int(frame_stride)
    ratio = skeleton.fps / video.fps
    if ratio < 1 - 1e-6 or abs(ratio - round(ratio)) > 1e-6:
        raise InputError(
            f"{where}: {skeleton.source} makes {skeleton.fps:g} fps skeletons but {video.source} was trained "
            f"on {video.fps:g} fps frames ({skeleton.fps:g} / {video.fps:g} is not a whole number); expected "
            "matching frame rates, or set video.frame_stride"
        )
    return int(round(ratio))
