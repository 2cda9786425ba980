"""The inputs of one talking video (speech, photo, optional reference pose, output), checked up front.

:func:`check_request` runs before any model is loaded or sampled and raises an
:class:`~csg_lightning.io.validation.InputError` naming the bad input:

- audio: any wav/flac/ogg or a video's audio track; stereo is averaged, other rates resampled to
  16 kHz (:func:`~csg_lightning.io.audio.read_audio`); shorter than :data:`MIN_AUDIO_SECONDS` is an
  error; silence is generated as it comes (a speaker at rest);
- photo: an image (EXIF orientation applied) or a video (its first frame, as the CSG-405 pairs give
  the reference); a short side under :data:`MIN_PHOTO_SIDE` is an error; a long side over
  :data:`MAX_PHOTO_SIDE` is shrunk to it for the work (the outputs stay in the photo's pixels);
- reference pose: an ``.npz`` (keypoints [134, 2] or [T, 134, 2], first frame used) in the photo's
  pixels;
- outputs: ``out.mp4`` and beside it ``out.npz``, ``out.skeleton.mp4``, ``out.config.yaml``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from csg_lightning.io.audio import read_audio
from csg_lightning.io.validation import InputError, check_input_file, check_output_file, load_skeleton_npz
from csg_lightning.timing import SAMPLE_RATE

MIN_AUDIO_SECONDS = 1.0
MIN_PHOTO_SIDE = 64  # pixels, the short side
MAX_PHOTO_SIDE = 4096  # pixels, the long side worked at
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")


@dataclass(frozen=True)
class Request:
    """One row: speech, photo, optional reference pose (.npz), the output mp4."""

    audio: str
    photo: str
    out: str
    reference_pose: str | None = None


@dataclass(frozen=True)
class Outputs:
    video: Path
    skeletons: Path
    skeleton_video: Path
    config: Path

    @classmethod
    def of(cls, out: str | os.PathLike, what: str = "--out") -> Outputs:
        video = check_output_file(out, what, ".mp4")
        return cls(
            video,
            check_output_file(video.with_suffix(".npz"), f"{what} (its .npz)", ".npz"),
            check_output_file(video.with_suffix(".skeleton.mp4"), f"{what} (its .skeleton.mp4)", ".mp4"),
            check_output_file(video.with_suffix(".config.yaml"), f"{what} (its .config.yaml)", ".yaml"),
        )

    def done(self) -> bool:
        """The mp4 is written last: when it exists, the row is finished."""
        return self.video.is_file()


@dataclass
class Inputs:
    """Checked inputs: audio float32 [N] 16 kHz mono; image uint8 [h, w, 3] (the working copy);
    ``photo_scale``: photo pixels per working pixel (1 unless the photo was shrunk); reference pose
    (keypoints [134, 2], scores [134]) in working pixels or None."""

    request: Request
    outputs: Outputs
    audio: np.ndarray
    image: np.ndarray
    photo_scale: float
    reference_pose: tuple[np.ndarray, np.ndarray] | None


def read_photo(path: str | os.PathLike, what: str = "--photo") -> np.ndarray:
    """An image file (EXIF applied) or a video's first frame -> uint8 RGB [H, W, 3]."""
    path = Path(path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        from csg_lightning.io.mp4 import read_frames

        check_input_file(path, what)
        try:
            return read_frames(path, np.array([0]))[0]
        except ValueError as err:
            raise InputError(f"{what} {path}: {err}") from None
    from csg_lightning.pose.photo_reference import read_image

    return read_image(path, what)


def _working_copy(image: np.ndarray, what: str) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    if min(h, w) < MIN_PHOTO_SIDE:
        raise InputError(f"{what}: the photo is {w}x{h} pixels; expected at least {MIN_PHOTO_SIDE} pixels "
                         "on the short side (a person's face and hands must be visible)")  # fmt: skip
    if max(h, w) <= MAX_PHOTO_SIDE:
        return image, 1.0
    import cv2

    factor = MAX_PHOTO_SIDE / max(h, w)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), w / size[0]


def check_request(request: Request, needs_pose: bool, where: str = "") -> Inputs:
    """All inputs of ``request`` checked and read (see the module docstring). ``needs_pose``: the
    pipeline has no estimator, so a reference pose must be given. ``where`` prefixes messages (a row)."""
    outputs = Outputs.of(request.out, f"{where}--out")
    audio = read_audio(request.audio, SAMPLE_RATE, what=f"{where}--audio")
    seconds = len(audio) / SAMPLE_RATE
    if seconds < MIN_AUDIO_SECONDS:
        raise InputError(f"{where}--audio {request.audio}: {seconds:.2f} s of audio; expected at least "
                         f"{MIN_AUDIO_SECONDS:g} s of speech")  # fmt: skip
    image, scale = _working_copy(read_photo(request.photo, f"{where}--photo"), f"{where}--photo {request.photo}")
    reference = None
    if request.reference_pose:
        kp, sc = load_skeleton_npz(request.reference_pose, f"{where}--reference-pose", sequence=False)
        reference = (kp / np.float32(scale), sc)
    elif needs_pose:
        raise InputError(f"{where}--reference-pose: the pipeline has no pose estimator (estimator: null); "
                         "give the photo's skeleton (.npz, e.g. from `csg-data pose-image`)")  # fmt: skip
    return Inputs(request, outputs, audio, image, scale, reference)
