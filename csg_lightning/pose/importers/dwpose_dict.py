"""``dwpose-dict``: the DWPose / ControlNet "pose dict", saved per frame with ``np.save`` (pickled).

Layout, as DWPose's ``DWposeDetector`` (``ControlNet-v1-1-nightly/annotator/dwpose/__init__.py``)
and MimicMotion's (``mimicmotion/dwpose/dwpose_detector.py``) build it for N persons, all
coordinates divided by the canvas width / height:

=========================  ===============  ==================================================================
key                        shape            meaning -> our indices
=========================  ===============  ==================================================================
``bodies["candidate"]``    [N*18, 2]        OpenPose-18 body points of every person (row 18*n + j)
``bodies["subset"]``       [N, 18]          index into ``candidate`` of person n's point j, -1 if missing
                                            (score <= 0.3); j in OpenPose-18 order: 0 nose->0, 1 neck->17,
                                            2/3/4 R shoulder/elbow/wrist->6/8/10, 5/6/7 L->5/7/9,
                                            8/9/10 R hip/knee/ankle->12/14/16, 11/12/13 L->11/13/15,
                                            14/15 R/L eye->2/1, 16/17 R/L ear->4/3
``bodies["score"]``        [N, 18]          optional (MimicMotion): the body scores; else candidate column 2
                                            when there is one, else 1
``hands``                  [2N, 21, 2]      ``np.vstack([left hands of all persons, right hands of all``
                                            ``persons])``: row n = person n's left hand -> 92..112, row N + n
                                            = its right hand -> 113..133 (hand order: wrist, then thumb,
                                            index, middle, ring, pinky, 4 points each)
``hands_score``            [2N, 21]         optional (MimicMotion), same rows
``faces``                  [N, 68, 2]       68-point face -> 24..91
``faces_score``            [N, 68]          optional
``foot`` (+``foot_score``)  [N, 6, 2]        optional (some DWPose forks): feet -> 18..23; also accepted as a
                                            dict ``{candidate: [N, 6, 2], subset: [N, 6] scores}``
=========================  ===============  ==================================================================

Missing points: ``subset`` -1 for the body; (-1, -1) for hands, faces and feet (the ControlNet
annotator writes -1 for points with a score < 0.3; MimicMotion keeps the coordinates and gives
the scores instead). Points without any score get 1 when present. Without ``hands`` / ``faces`` /
``foot`` those points are missing (score 0). Coordinates are canvas-normalised, so ``--width`` and
``--height`` are required (``--coords`` overrides, e.g. for dicts already scaled to pixels).

A file holds one frame (a dict) or several (a 1-D object array of dicts, ``np.save(p, [d0, d1])``).
Files are unpickled by :mod:`csg_lightning.io.restricted_pickle` (numpy arrays only, never
arbitrary code). DWPose does not track persons over frames, so the person is chosen per frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from csg_lightning.io.restricted_pickle import load_npy
from csg_lightning.pose.importers.common import ImportOptions, PoseFormatError, RawPoses, numeric
from csg_lightning.skeleton.layout import NUM_KEYPOINTS
from csg_lightning.skeleton.openpose import from_openpose_order, to_openpose_order

NAME = "dwpose-dict"
EXTENSIONS = (".npy",)
FOLDER = True
BODY_POINTS = 18
# Where each part sits in DWPose's (OpenPose-first) 134 order.
FEET = slice(18, 24)
FACE = slice(24, 92)
LEFT_HAND = slice(92, 113)
RIGHT_HAND = slice(113, 134)


def _part(pose: dict, key: str, score_key: str, rows: int, points: int, where: str):
    """Coordinates [rows, points, 2] and scores [rows, points] of an optional part, or None."""
    value = pose.get(key)
    if value is None:
        return None
    scores = pose.get(score_key)
    if isinstance(value, dict):  # {candidate, subset}: subset holds the scores
        value, scores = value.get("candidate"), value.get("subset", scores)
        if value is None:
            raise PoseFormatError(f"{where}: '{key}' is a dict without 'candidate'")
    value = numeric(value, where, f"'{key}'")
    if value.size == 0 and rows == 0:
        value = value.reshape(0, points, 2)
    if value.ndim != 3 or value.shape[0] != rows or value.shape[1] != points or value.shape[2] < 2:
        expect = f"[{rows}, {points}, 2]"
        if key == "hands":
            expect += f" (2N for N = {rows // 2} person(s): all left hands, then all right hands)"
        raise PoseFormatError(f"{where}: '{key}' has shape {list(value.shape)}, expected {expect}")
    if scores is None:
        scores = value[..., 2] if value.shape[2] > 2 else np.ones(value.shape[:2])
    else:
        scores = numeric(scores, where, f"'{score_key}'")
        if scores.shape != (rows, points):
            raise PoseFormatError(
                f"{where}: '{score_key}' has shape {list(scores.shape)}, expected [{rows}, {points}]"
            )
    return value[..., :2], scores


def parse_pose_dict(pose, where: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One pose dict -> keypoints [N, 134, 2] (file units), scores [N, 134] in storage order, notes."""
    if not isinstance(pose, dict):
        raise PoseFormatError(f"{where}: holds a {type(pose).__name__}, expected a DWPose pose dict")
    bodies = pose.get("bodies")
    if not isinstance(bodies, dict) or "candidate" not in bodies or "subset" not in bodies:
        raise PoseFormatError(
            f"{where}: expected a pose dict with 'bodies': {{'candidate', 'subset'}} (DWPose / ControlNet); "
            f"found keys {sorted(map(str, pose))}"
        )
    candidate = numeric(bodies["candidate"], where, "bodies['candidate']")
    subset = numeric(bodies["subset"], where, "bodies['subset']")
    if candidate.size == 0:
        candidate = candidate.reshape(0, 2)
    if subset.size == 0:
        subset = subset.reshape(0, BODY_POINTS)
    if candidate.ndim != 2 or candidate.shape[1] < 2:
        raise PoseFormatError(
            f"{where}: bodies['candidate'] has shape {list(candidate.shape)}, expected [M, 2]"
        )
    if subset.ndim != 2 or subset.shape[1] < BODY_POINTS:
        raise PoseFormatError(
            f"{where}: bodies['subset'] has shape {list(subset.shape)}, expected [N, 18] (indices, -1 missing)"
        )
    N = len(subset)
    index = subset[:, :BODY_POINTS]
    if not np.isfinite(index).all() or (index != np.round(index)).any():
        raise PoseFormatError(f"{where}: bodies['subset'] holds non-integer values, expected indices or -1")
    index = index.astype(np.int64)
    if (index >= len(candidate)).any() or (index < -1).any():
        raise PoseFormatError(
            f"{where}: bodies['subset'] indices reach {int(index.max())}, but 'candidate' has {len(candidate)} rows"
        )
    present = index >= 0
    safe = np.where(present, index, 0)
    kp = np.full((N, NUM_KEYPOINTS, 2), np.nan)
    sc = np.zeros((N, NUM_KEYPOINTS))
    if N and len(candidate):
        kp[:, :BODY_POINTS] = np.where(present[..., None], candidate[safe, :2], np.nan)
    body_score = bodies.get("score")
    if body_score is not None:
        body_score = numeric(body_score, where, "bodies['score']")
        if body_score.ndim != 2 or body_score.shape[0] != N or body_score.shape[1] < BODY_POINTS:
            raise PoseFormatError(
                f"{where}: bodies['score'] has shape {list(body_score.shape)}, expected [{N}, 18]"
            )
        body_score = body_score[:, :BODY_POINTS]
    elif candidate.shape[1] > 2 and len(candidate):
        body_score = candidate[safe, 2]
    else:
        body_score = np.ones((N, BODY_POINTS))
    sc[:, :BODY_POINTS] = np.where(present, body_score, 0.0)
    notes = []
    for key, score_key, rows, points, slices in (
        ("hands", "hands_score", 2 * N, 21, (LEFT_HAND, RIGHT_HAND)),
        ("faces", "faces_score", N, 68, (FACE,)),
        ("foot", "foot_score", N, 6, (FEET,)),
    ):
        part = _part(pose, key, score_key, rows, points, where)
        if part is None:
            if key != "foot" and N:
                notes.append(f"no '{key}'")
            continue
        xy, score = part
        for i, target in enumerate(slices):
            kp[:, target] = xy[i * N : (i + 1) * N]
            sc[:, target] = score[i * N : (i + 1) * N]
    return from_openpose_order(kp), from_openpose_order(sc, axis=-1), notes


def _poses_in(path: Path) -> list:
    where = f"{NAME} pose file {path}"
    value = load_npy(path, f"{NAME} pose file")
    if isinstance(value, dict):
        return [value]
    if isinstance(value, np.ndarray) and value.dtype.hasobject and value.ndim == 1:
        return list(value)
    if isinstance(value, list | tuple):
        return list(value)
    kind = (
        f"a numeric array {list(value.shape)}"
        if isinstance(value, np.ndarray)
        else f"a {type(value).__name__}"
    )
    raise PoseFormatError(
        f"{where}: holds {kind}, expected a pickled DWPose pose dict (np.save of a dict) or a list of them"
        + (" (a [..., 134, 2|3] array is --format dwpose134)" if isinstance(value, np.ndarray) else "")
    )


def read_frame(path: Path, options: ImportOptions) -> tuple[np.ndarray, np.ndarray, list[str]]:
    poses = _poses_in(path)
    if len(poses) != 1:
        raise PoseFormatError(
            f"{NAME} pose file {path}: holds {len(poses)} pose dicts, a per-frame file holds one"
        )
    return parse_pose_dict(poses[0], f"{NAME} pose file {path}")


def read_file(path: Path, options: ImportOptions) -> RawPoses:
    poses = _poses_in(path)
    frames, notes = [], []
    for t, pose in enumerate(poses):
        where = f"{NAME} pose file {path}" + (f", frame {t}" if len(poses) > 1 else "")
        kp, sc, frame_notes = parse_pose_dict(pose, where)
        frames.append((kp, sc))
        notes += [f"frame {t}: {n}" for n in frame_notes]
    return RawPoses(frames, clip_persons=False, minus_one_missing=True, default_coords="unit", notes=notes)


def export(
    keypoints: np.ndarray, scores: np.ndarray, width: float, height: float, threshold: float = 0.3
) -> dict:
    """One person's storage-order ``[134, 2]`` pixels + ``[134]`` -> a MimicMotion-style pose dict
    (normalised by ``width`` x ``height``; body points with a score <= ``threshold`` get subset -1,
    other missing points (score 0) coordinates -1, as DWPose writes them)."""
    kp = to_openpose_order(np.asarray(keypoints, dtype=np.float64)) / np.array(
        [width, height], dtype=np.float64
    )
    sc = to_openpose_order(np.asarray(scores, dtype=np.float64), axis=-1)
    kp = np.where((sc > 0)[:, None], kp, -1.0)
    subset = np.where(sc[:BODY_POINTS] > threshold, np.arange(BODY_POINTS), -1).astype(np.float64)[None]
    return {
        "bodies": {"candidate": kp[:BODY_POINTS], "subset": subset, "score": sc[None, :BODY_POINTS]},
        "hands": np.stack([kp[LEFT_HAND], kp[RIGHT_HAND]]),
        "hands_score": np.stack([sc[LEFT_HAND], sc[RIGHT_HAND]]),
        "faces": kp[None, FACE],
        "faces_score": sc[None, FACE],
        "foot": kp[None, FEET],
        "foot_score": sc[None, FEET],
    }
