"""Photo -> reference skeleton: the ``.npz`` that ``sample-skeleton --ref`` reads, and a picture to check it.

The photo's people come from any :class:`~csg_lightning.pose.estimator.PoseEstimator`; the reference is
the largest *confident* one (mean score of the upper-body points 0-12 >= :data:`MIN_PERSON_SCORE`).
Two confident people of similar size (the second's box area > :data:`SIMILAR_AREA_RATIO` x the first's)
make the choice ambiguous: that is an error unless ``person`` picks one (0 = largest). Coordinates are
pixels of the photo as displayed (its EXIF orientation applied).

Outputs, both written atomically: ``<out>.npz`` with ``keypoints`` float32 [1, 134, 2], ``scores``
float32 [1, 134] (in [0, 1]) and ``fps`` (25), and ``<out>.png``: the skeleton drawn over the dimmed photo
with the project's renderer (:func:`csg_lightning.skeleton.drawing.draw_pose`, listed colours), the
photo enlarged to a short side of :data:`PREVIEW_SHORT_SIDE` pixels if smaller.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from csg_lightning.io.atomic import atomic_path
from csg_lightning.io.validation import InputError, check_image_file, check_output_file
from csg_lightning.pose.estimator import PersonPose, PoseEstimator
from csg_lightning.skeleton.layout import SkeletonLayout
from csg_lightning.timing import FPS

SIMILAR_AREA_RATIO = 0.6  # second-largest / largest box area above which the choice is ambiguous
MIN_PERSON_SCORE = 0.3  # mean upper-body score of a person that counts
PHOTO_DIM = 0.5  # brightness of the photo under the drawn skeleton
PREVIEW_SHORT_SIDE = 1080  # pixels: smaller photos are enlarged to this in the .png


def read_image(path: str | os.PathLike, what: str = "image") -> np.ndarray:
    """An image file -> RGB uint8 [H, W, 3], EXIF orientation applied; errors name the file."""
    from PIL import Image, ImageOps

    path = check_image_file(path, what)
    try:
        with Image.open(path) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"), dtype=np.uint8).copy()
    except Exception as err:  # decoded by check_image_file already; conversion problems end up here
        raise InputError(f"{what} {path}: cannot be read as an RGB image ({err})") from err


def person_score(person: PersonPose) -> float:
    """Mean score of the upper-body points (nose ... hips): how surely this is a person."""
    return float(person.scores[SkeletonLayout.UPPER_BODY].mean())


def _describe(people: list[PersonPose]) -> str:
    return "; ".join(
        f"person {i}: box ({', '.join(f'{v:.0f}' for v in p.box)}), area {p.area:.0f} px, "
        f"score {person_score(p):.2f}"
        for i, p in enumerate(people)
    )


def choose_person(
    people: list[PersonPose], where: str, person: int | None = None
) -> tuple[int, list[PersonPose]]:
    """The reference among ``people``: (its index, the confident people largest first).

    ``where`` names the photo in errors. ``person``: index among the confident people (0 = largest);
    None takes the largest, refusing two of similar size."""
    confident = sorted((p for p in people if person_score(p) >= MIN_PERSON_SCORE), key=lambda p: -p.area)
    if not confident:
        unsure = (
            f" ({len(people)} detection(s) below a mean upper-body score of {MIN_PERSON_SCORE})"
            if people
            else ""
        )
        raise InputError(f"{where}: no person found{unsure}; expected one person, visible from the hips up")
    if person is not None:
        if not 0 <= person < len(confident):
            raise InputError(
                f"{where}: --person {person} is out of range: {len(confident)} person(s) found "
                f"(0 = largest): {_describe(confident)}"
            )
        return person, confident
    if len(confident) > 1 and confident[1].area > SIMILAR_AREA_RATIO * confident[0].area:
        raise InputError(
            f"{where}: {len(confident)} people of similar size (the second's area is "
            f"{confident[1].area / confident[0].area:.0%} of the largest's, more than {SIMILAR_AREA_RATIO:.0%}): "
            f"{_describe(confident)}; choose one with --person K (0 = largest) or crop the photo"
        )
    return 0, confident


def estimate_reference(
    image_path: str | os.PathLike, estimator: PoseEstimator, person: int | None = None, what: str = "image"
) -> tuple[PersonPose, np.ndarray, int, int]:
    """Photo -> (the reference person, the RGB image, its index, the number of confident people)."""
    image = read_image(image_path, what)
    (people,) = estimator([image])
    index, confident = choose_person(people, f"{what} {image_path}", person)
    return confident[index], image, index, len(confident)


def overlay(image: np.ndarray, person: PersonPose) -> np.ndarray:
    """The skeleton drawn (listed OpenPose colours) over the photo dimmed to :data:`PHOTO_DIM`; a photo
    whose short side is under :data:`PREVIEW_SHORT_SIDE` is enlarged to it first, so the marks (sized
    for the renderer's 2160-pixel canvas) stay visible."""
    import cv2

    from csg_lightning.skeleton.drawing import draw_pose

    height, width = image.shape[:2]
    scale = max(1.0, PREVIEW_SHORT_SIDE / min(height, width))
    size = (round(height * scale), round(width * scale))
    photo = image if scale == 1.0 else cv2.resize(image, size[::-1], interpolation=cv2.INTER_CUBIC)
    drawing = draw_pose(person.keypoints, person.scores, width, height, size, canvas_size=None, swap_rb=False)
    return np.maximum((photo * PHOTO_DIM).astype(np.uint8), drawing)


def write_reference(
    out: str | os.PathLike, person: PersonPose, image: np.ndarray, fps: int = FPS, what: str = "--out"
) -> tuple[Path, Path]:
    """Write ``out`` (.npz: keypoints [1, 134, 2], scores [1, 134], fps) and the .png beside it."""
    from PIL import Image

    npz = check_output_file(out, what, ".npz")
    png = check_output_file(npz.with_suffix(".png"), f"{what} (its .png)", ".png")
    keypoints = person.keypoints.astype(np.float32)[None]
    scores = np.clip(person.scores.astype(np.float32), 0.0, 1.0)[None]
    if not np.isfinite(keypoints).all():
        raise InputError(f"{npz}: the estimated keypoints are not all finite; not written")
    picture = overlay(image, person)
    with atomic_path(npz) as tmp, open(tmp, "wb") as f:
        np.savez(f, keypoints=keypoints, scores=scores, fps=np.int64(fps))
    with atomic_path(png) as tmp:
        Image.fromarray(picture).save(tmp, format="PNG")
    return npz, png
