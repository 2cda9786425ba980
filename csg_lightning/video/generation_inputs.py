"""The inputs of Stage-2 generation, checked before anything is sampled (errors name the input).

:func:`load_image`: a path or an array -> uint8 RGB [H, W, 3]; :func:`check_generation_inputs`: the
reference image, the driving skeletons, the audio, the reference pose, the output path and the steps
of :func:`~csg_lightning.video.generate.generate_video`.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from csg_lightning.io.audio import read_audio
from csg_lightning.io.validation import (
    MIN_IMAGE_SIZE,
    InputError,
    check_finite,
    check_image_file,
    check_output_file,
    check_skeleton,
)
from csg_lightning.timing import SAMPLE_RATE


def load_image(image: str | os.PathLike | np.ndarray, what: str = "reference image") -> np.ndarray:
    """A path or an array -> uint8 RGB [H, W, 3]; a file must decode completely (see ``check_image_file``)."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"{what}: expected uint8 [H, W, 3] RGB, got {image.dtype} {image.shape}")
        if min(image.shape[:2]) < MIN_IMAGE_SIZE:
            raise InputError(
                f"{what}: {image.shape[1]}x{image.shape[0]} pixels, expected >= {MIN_IMAGE_SIZE}"
            )
        return image
    path = check_image_file(image, what)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"{what} {path}: OpenCV cannot decode this image format")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def check_generation_inputs(
    image: str | os.PathLike | np.ndarray,
    poses: tuple[np.ndarray, np.ndarray],
    audio: str | os.PathLike | np.ndarray | None,
    reference_pose: tuple[np.ndarray, np.ndarray] | None,
    out_path: str | os.PathLike | None,
    num_steps: int | None,
    sample_rate: int = SAMPLE_RATE,
) -> tuple[np.ndarray, tuple, np.ndarray | None, tuple | None]:
    """The inputs of ``generate_video``, checked before any sampling (errors name the input) ->
    (image uint8 [H, W, 3], (keypoints, scores), audio samples or None, reference pose or None)."""
    if num_steps is not None and int(num_steps) < 1:
        raise InputError(f"num_steps: expected an integer >= 1, got {num_steps}")
    if out_path is not None:
        check_output_file(out_path, "out_path", ".mp4")
    image = load_image(image)
    poses = check_skeleton(*poses, "poses", sequence=True)
    if reference_pose is not None:
        reference_pose = check_skeleton(*reference_pose, "reference_pose", sequence=False)
    if audio is not None and not isinstance(audio, np.ndarray):
        audio = read_audio(audio, sample_rate)
    if audio is not None:
        audio = np.asarray(audio)
        if audio.ndim != 1 or audio.size == 0:
            raise InputError(f"audio: expected mono samples [N] with N >= 1, got shape {audio.shape}")
        check_finite(audio, "audio", "samples")
    return image, poses, audio, reference_pose
