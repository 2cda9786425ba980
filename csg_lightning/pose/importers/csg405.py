"""``csg405`` / ``csg405-local``: the CSG-405 release's per-clip pose files.

One ``.npy`` per clip, ``(T, persons, 134, 3)`` = x, y, confidence (``(T, 134, 3)`` without the
persons axis is accepted too; a 2-channel array gets score 1). The release's loader
(``2d_kp_generation/data_loaders/audio_to_2dkp/dataset.py``) uses person 0; here the person is
chosen as for every format (``--person``, default the largest), once for the whole clip.

Index map (theirs -> ours): the neck comes **first**, then COCO-WholeBody 133.

=================  ========================  ============  ==============================================
CSG-405 index      point                     our index     notes
=================  ========================  ============  ==============================================
0                  neck (mean of shoulders)  17            score -> min(neck, both shoulders)
1 - 17             COCO body 0 - 16          0 - 16        1 nose, ..., 10 left wrist -> our 9
18 - 23            feet                      18 - 23       unchanged from here on
24 - 91            face (68)                 24 - 91
92 - 112           left hand (21)            92 - 112
113 - 133          right hand (21)           113 - 133
=================  ========================  ============  ==============================================

``csg405``: global coordinates. The release's scripts do not say which units its global files
use: its visualisation script draws raw ``pose`` files in pixels on the video frames, while its
Stage-1 output is normalised to [-1, 1] and its video stage maps that with ``(kp + 1) / 2``
(``pose2video/Stableanimator/utils/preprocess_kp.py``). So ``--coords auto`` decides from the
values (pixels beyond +-2; ``signed`` [-1, 1] when some value is below -0.25; ``unit`` [0, 1]
otherwise) and records why; give ``--coords`` to override, and ``--width/--height`` (512 x 512
for CSG-405 crops) for normalised values.

``csg405-local``: the training folder ``pose_rescaled_local_smooth``, made by the release's
``global_to_local`` (``2d_kp_generation/data_loaders/dataset_utils.py``) from COCO-WholeBody-133
global points ``g``:

* index 0: the neck ``n = (g[5] + g[6]) / 2``, **global** (confidence written as 1);
* body and feet (COCO 0-22 -> indices 1-23): ``g[i] - n``;
* face (COCO 23-90 -> 24-91): ``(g[i] - n) - (g[0] - n)`` = relative to the nose, times
  ``face_scale`` (mouth, COCO 71-90 -> 72-91: times ``mouth_scale``; both 1 in the release config);
* left hand (COCO 91-111 -> 92-112) relative to the left wrist ``g[9]``, right hand (COCO
  112-132 -> 113-133) to the right wrist ``g[10]`` (the body wrists, not the hands' own roots).

The importer inverts this exactly (nose = local nose + neck, face = local face / scale + nose,
hands = local hand + wrist) and then maps to our order. The release's "no legs" arrays (123 points,
or 133 without the neck) cannot be inverted (no legs, or no neck) and are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from csg_lightning.pose.importers.common import (
    ImportOptions,
    PoseFormatError,
    RawPoses,
    load_arrays,
    numeric,
    split_channels,
)
from csg_lightning.skeleton.layout import NUM_KEYPOINTS

NAME = "csg405"
LOCAL_NAME = "csg405-local"
EXTENSIONS = (".npy", ".npz")
FOLDER = False  # one file per clip
# CSG405_FROM_STORAGE[i] = our index of CSG-405 point i; STORAGE_FROM_CSG405[j] = CSG-405 index of ours.
CSG405_FROM_STORAGE = np.array([17, *range(17), *range(18, NUM_KEYPOINTS)])
STORAGE_FROM_CSG405 = np.argsort(CSG405_FROM_STORAGE)

# In CSG-405's 134 order (neck first).
NECK, NOSE, LEFT_WRIST, RIGHT_WRIST = 0, 1, 10, 11
BODY = slice(1, 24)  # COCO body + feet
FACE = slice(24, 92)
MOUTH = slice(72, 92)  # 68-point 48..67
LEFT_HAND = slice(92, 113)
RIGHT_HAND = slice(113, 134)


def _read(path: Path, fmt: str) -> tuple[np.ndarray, np.ndarray, str]:
    where = f"{fmt} pose file {path}"
    array = numeric(load_arrays(path, fmt)["keypoints"], where, "keypoints")
    points = array.shape[-2] if array.ndim >= 2 else None
    if array.ndim not in (3, 4) or points != NUM_KEYPOINTS or array.shape[-1] not in (2, 3):
        hint = ""
        if points in (123, 124):
            hint = " (a 'no legs' array: legs and feet are gone, it cannot be turned back into 134 points)"
        elif points == 133:
            hint = " (133 points: COCO-WholeBody without CSG-405's leading neck)"
        raise PoseFormatError(
            f"{where}: shape {list(array.shape)}, expected (T, persons, 134, 3) or (T, 134, 3) with the neck "
            f"first{hint}"
        )
    if array.ndim == 3:
        array = array[:, None]
    if len(array) == 0:
        raise PoseFormatError(f"{where}: no frames (shape {list(array.shape)})")
    kp, sc = split_channels(array, None, where)
    return kp, sc, where


def _raw(kp_theirs: np.ndarray, sc_theirs: np.ndarray, notes: list[str]) -> RawPoses:
    kp = kp_theirs[..., STORAGE_FROM_CSG405, :]
    sc = sc_theirs[..., STORAGE_FROM_CSG405]
    return RawPoses(
        [(kp[t], sc[t]) for t in range(len(kp))], clip_persons=True, minus_one_missing=False, notes=notes
    )


def read_file(path: Path, options: ImportOptions) -> RawPoses:
    kp, sc, _ = _read(path, NAME)
    return _raw(kp, sc, [f"read as {kp.shape[0]} frame(s) x {kp.shape[1]} person(s)"])


def local_to_global(local: np.ndarray, face_scale: float = 1.0, mouth_scale: float = 1.0) -> np.ndarray:
    """CSG-405 local ``[..., 134, 2]`` (neck global at 0) -> global ``[..., 134, 2]``, same order."""
    local = np.asarray(local, dtype=np.float64)
    out = np.empty_like(local)
    neck = local[..., NECK : NECK + 1, :]
    out[..., NECK, :] = local[..., NECK, :]
    out[..., BODY, :] = local[..., BODY, :] + neck
    face = local[..., FACE, :].copy()
    face /= face_scale
    face[..., MOUTH.start - FACE.start :, :] *= face_scale / mouth_scale
    out[..., FACE, :] = face + out[..., NOSE : NOSE + 1, :]
    out[..., LEFT_HAND, :] = local[..., LEFT_HAND, :] + out[..., LEFT_WRIST : LEFT_WRIST + 1, :]
    out[..., RIGHT_HAND, :] = local[..., RIGHT_HAND, :] + out[..., RIGHT_WRIST : RIGHT_WRIST + 1, :]
    return out


def global_to_local(glob: np.ndarray, face_scale: float = 1.0, mouth_scale: float = 1.0) -> np.ndarray:
    """Inverse of :func:`local_to_global` (the release's ``global_to_local``, keeping our neck at 0)."""
    glob = np.asarray(glob, dtype=np.float64)
    out = np.empty_like(glob)
    neck = glob[..., NECK : NECK + 1, :]
    out[..., NECK, :] = glob[..., NECK, :]
    out[..., BODY, :] = glob[..., BODY, :] - neck
    face = glob[..., FACE, :] - glob[..., NOSE : NOSE + 1, :]
    face *= face_scale
    face[..., MOUTH.start - FACE.start :, :] *= mouth_scale / face_scale
    out[..., FACE, :] = face
    out[..., LEFT_HAND, :] = glob[..., LEFT_HAND, :] - glob[..., LEFT_WRIST : LEFT_WRIST + 1, :]
    out[..., RIGHT_HAND, :] = glob[..., RIGHT_HAND, :] - glob[..., RIGHT_WRIST : RIGHT_WRIST + 1, :]
    return out


def read_local_file(path: Path, options: ImportOptions) -> RawPoses:
    kp, sc, where = _read(path, LOCAL_NAME)
    for name, value in (("--face-scale", options.face_scale), ("--mouth-scale", options.mouth_scale)):
        if not np.isfinite(value) or value <= 0:
            raise PoseFormatError(f"{name} {value}: expected a positive number")
    glob = local_to_global(kp, options.face_scale, options.mouth_scale)
    notes = [f"read as {kp.shape[0]} frame(s) x {kp.shape[1]} person(s); local -> global"]
    if options.face_scale != 1 or options.mouth_scale != 1:
        notes.append(f"face offsets / {options.face_scale:g}, mouth offsets / {options.mouth_scale:g}")
    return _raw(glob, sc, notes)


def _from_pixels(keypoints: np.ndarray, coords: str, width, height) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float64)
    if coords == "pixels":
        return kp
    if width is None or height is None:
        raise ValueError(f"coords={coords!r} needs width and height")
    unit = kp / np.array([width, height], dtype=np.float64)
    if coords == "unit":
        return unit
    if coords == "signed":
        return unit * 2.0 - 1.0
    raise ValueError(f"coords must be pixels, unit or signed, got {coords!r}")


def export(keypoints, scores, coords: str = "pixels", width=None, height=None) -> np.ndarray:
    """Our ``[T, 134, 2]`` pixels + ``[T, 134]`` -> CSG-405 global ``(T, 1, 134, 3)`` (float64)."""
    kp = _from_pixels(keypoints, coords, width, height)[..., CSG405_FROM_STORAGE, :]
    sc = np.asarray(scores, dtype=np.float64)[..., CSG405_FROM_STORAGE]
    return np.concatenate([kp, sc[..., None]], axis=-1)[:, None]


def export_local(keypoints, scores, coords: str = "pixels", width=None, height=None,
                 face_scale: float = 1.0, mouth_scale: float = 1.0) -> np.ndarray:  # fmt: skip
    """Our ``[T, 134, 2]`` pixels + ``[T, 134]`` -> CSG-405 local ``(T, 1, 134, 3)`` (float64, so that
    importing it gives back float32 input exactly). The neck's confidence is our neck score."""
    full = export(keypoints, scores, coords, width, height)
    full[..., :2] = global_to_local(full[..., :2], face_scale, mouth_scale)
    return full
