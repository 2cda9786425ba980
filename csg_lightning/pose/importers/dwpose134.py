"""``dwpose134``: the 134-point arrays that DWPose's ``Wholebody`` returns (OpenPose-18 body first).

DWPose (``ControlNet-v1-1-nightly/annotator/dwpose/wholebody.py``; the same in MimicMotion's
``mimicmotion/dwpose/wholebody.py``) inserts the neck (mean of the shoulders, score 0/1 = both
shoulders > 0.3) at COCO index 17 and then moves the body into OpenPose-18 order:

==============  ==================  =============  ================================================
DWPose index    point               our index      notes
==============  ==================  =============  ================================================
0               nose                0
1               neck                17             score -> min(neck, both shoulders)
2, 3, 4         R shoulder/elbow/   6, 8, 10
                wrist
5, 6, 7         L shoulder/elbow/   5, 7, 9        (a left wrist at DWPose 7 lands at our 9)
                wrist
8, 9, 10        R hip/knee/ankle    12, 14, 16
11, 12, 13      L hip/knee/ankle    11, 13, 15
14, 15          R eye, L eye        2, 1
16, 17          R ear, L ear        4, 3
18 - 23         feet                18 - 23        unchanged (COCO-WholeBody order)
24 - 91         face (68)           24 - 91        unchanged
92 - 112        left hand (21)      92 - 112       unchanged
113 - 133       right hand (21)     113 - 133      unchanged
==============  ==================  =============  ================================================

(This is :data:`csg_lightning.skeleton.openpose.OPENPOSE_FROM_STORAGE`.)

Accepted files: ``.npy`` or ``.npz`` (array ``keypoints``, optional ``scores``; a one-array .npz under
any name) of shape ``[T, 134, C]`` (T frames of one person), ``[T, P, 134, C]`` (P persons, kept
in index order over the clip), or ``[134, C]`` (one frame); ``C`` = 3 (x, y, score) or 2 (scores
from ``scores`` / ``--scores``, else 1 for every point present). In a folder of per-frame files,
each is ``[134, C]`` or ``[P, 134, C]`` (the persons of that frame). Coordinates: pixels as DWPose
returns them, or canvas-normalised (``--coords``, ``auto`` by default); (-1, -1) marks a missing
point (the ControlNet annotator writes that for points with a score < 0.3).
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
from csg_lightning.skeleton.openpose import (
    OPENPOSE_FROM_STORAGE,
    STORAGE_FROM_OPENPOSE,
    from_openpose_order,
    to_openpose_order,
)

NAME = "dwpose134"
EXTENSIONS = (".npy", ".npz")
FOLDER = True
DWPOSE134_FROM_STORAGE = OPENPOSE_FROM_STORAGE  # DWPose index i holds our point DWPOSE134_FROM_STORAGE[i]
STORAGE_FROM_DWPOSE134 = STORAGE_FROM_OPENPOSE


def _read(path: Path, options: ImportOptions) -> tuple[np.ndarray, np.ndarray, str, bool]:
    arrays = load_arrays(path, NAME)
    where = f"{NAME} pose file {path}"
    array = numeric(arrays["keypoints"], where, "keypoints")
    scores = arrays.get("scores")
    if scores is None and options.scores_path is not None:
        scores = load_arrays(Path(options.scores_path), NAME, ("scores",))["scores"]
    if array.ndim < 2 or array.shape[-2] != NUM_KEYPOINTS or array.shape[-1] not in (2, 3):
        raise PoseFormatError(
            f"{where}: keypoints have shape {list(array.shape)}, expected [..., 134, 3] (x, y, score) or "
            "[..., 134, 2] in DWPose's 134-point order"
        )
    kp, sc = split_channels(array, scores, where)
    no_scores = array.shape[-1] == 2 and scores is None
    return from_openpose_order(kp), from_openpose_order(sc, axis=-1), where, no_scores


def read_file(path: Path, options: ImportOptions) -> RawPoses:
    """One file holding a whole sequence: ``[T, 134, C]``, ``[T, P, 134, C]`` or ``[134, C]``."""
    kp, sc, where, no_scores = _read(path, options)
    if kp.ndim == 2:
        kp, sc = kp[None, None], sc[None, None]
        shape_note = "one frame, one person"
    elif kp.ndim == 3:
        kp, sc = kp[:, None], sc[:, None]
        shape_note = f"{len(kp)} frame(s) of one person ([T, 134, C])"
    elif kp.ndim == 4:
        shape_note = f"{kp.shape[0]} frame(s) x {kp.shape[1]} person(s) ([T, P, 134, C])"
    else:
        raise PoseFormatError(
            f"{where}: keypoints have {kp.ndim + 1} dimensions, expected at most [T, P, 134, C]"
        )
    notes = [f"read as {shape_note}"]
    if no_scores:
        notes.append("no scores in the file: every point present has score 1")
    return RawPoses(
        [(kp[t], sc[t]) for t in range(len(kp))], clip_persons=True, minus_one_missing=True, notes=notes
    )


def read_frame(path: Path, options: ImportOptions) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One per-frame file: ``[134, C]`` (one person) or ``[P, 134, C]`` (the frame's persons)."""
    kp, sc, where, no_scores = _read(path, options)
    notes = ["no scores: every point present has score 1"] if no_scores else []
    if kp.ndim == 2:
        return kp[None], sc[None], notes
    if kp.ndim == 3:
        return kp, sc, notes
    raise PoseFormatError(
        f"{where}: keypoints have shape {list(kp.shape[:-1]) + [kp.shape[-1]]}; a per-frame file holds "
        "[134, C] or [P, 134, C]"
    )


def export(keypoints: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Storage order ``[..., 134, 2]`` pixels + ``[..., 134]`` -> DWPose 134 ``[..., 134, 3]`` float32."""
    kp = to_openpose_order(np.asarray(keypoints, dtype=np.float32))
    sc = to_openpose_order(np.asarray(scores, dtype=np.float32), axis=-1)
    return np.concatenate([kp, sc[..., None]], axis=-1)
