"""Storage order of the 134-point whole-body skeleton used by every file the project writes.

COCO-WholeBody has 133 points (17 body, 6 feet, 68 face, 2 x 21 hands). We insert a neck (mean of
the shoulders, confident only when both shoulders are) at index 17:

====================  ===========  ==============================================================
group                 indices      notes
====================  ===========  ==============================================================
body (COCO-17)        0 - 16       0 nose, 1/2 eyes, 3/4 ears, 5/6 shoulders, 7/8 elbows,
                                   9 left wrist, 10 right wrist, 11/12 hips, 13/14 knees,
                                   15/16 ankles (left before right)
neck                  17           mean of the shoulders
feet                  18 - 23      left big toe, left small toe, left heel, right ... (same)
face (68-point)       24 - 91      jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67
left hand             92 - 112     21 points, 0 = hand wrist, then thumb, index, middle, ring, pinky
right hand            113 - 133    same
====================  ===========  ==============================================================
"""

from __future__ import annotations

import numpy as np

NUM_KEYPOINTS = 134

BODY_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
FEET_NAMES = (
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)  # fmt: skip

# COCO body limbs (storage indices) plus the neck links used by OpenPose-style drawing.
_BODY_LIMBS = (
    (0, 1), (0, 2), (1, 3), (2, 4), (17, 0), (17, 5), (17, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (17, 11), (17, 12), (11, 13), (13, 15), (12, 14), (14, 16),
)  # fmt: skip
_FEET_LIMBS = ((15, 18), (15, 19), (15, 20), (16, 21), (16, 22), (16, 23))
# Hand edges in the hand's own 21-point numbering: wrist -> each finger chain of 4.
HAND_EDGES = tuple(
    (0 if j == 0 else 1 + 4 * f + j - 1, 1 + 4 * f + j) for f in range(5) for j in range(4)
)
# Face contour chains in the 68-point numbering (used by drawing and plots).
_FACE_CHAINS = ((0, 17), (17, 22), (22, 27), (27, 31), (31, 36), (36, 42), (42, 48), (48, 60), (60, 68))
_CLOSED_FACE_CHAINS = {(36, 42), (42, 48), (48, 60), (60, 68)}


def _face_edges() -> tuple[tuple[int, int], ...]:
    edges = []
    for start, stop in _FACE_CHAINS:
        edges += [(i, i + 1) for i in range(start, stop - 1)]
        if (start, stop) in _CLOSED_FACE_CHAINS:
            edges.append((stop - 1, start))
    return tuple(edges)


FACE_EDGES = _face_edges()


class SkeletonLayout:
    """Named index groups and limbs of the 134-point storage order (all class attributes)."""

    NOSE = 0
    LEFT_EYE, RIGHT_EYE = 1, 2
    LEFT_SHOULDER, RIGHT_SHOULDER = 5, 6
    LEFT_ELBOW, RIGHT_ELBOW = 7, 8
    LEFT_WRIST, RIGHT_WRIST = 9, 10
    LEFT_HIP, RIGHT_HIP = 11, 12
    NECK = 17

    BODY = np.arange(0, 17)
    FEET = np.arange(18, 24)
    FACE = np.arange(24, 92)
    LEFT_HAND = np.arange(92, 113)
    RIGHT_HAND = np.arange(113, 134)
    HANDS = np.arange(92, 134)
    # Mouth: 68-point indices 48..67; inner lips 60..67.
    MOUTH = np.arange(24 + 48, 24 + 68)
    UPPER_INNER_LIP = 24 + 62
    LOWER_INNER_LIP = 24 + 66
    # Points the model never sees: neck (the local origin) and the 10 leg/foot points.
    LEGS = np.array([13, 14, 15, 16, *range(18, 24)])
    DROPPED = np.array([17, 13, 14, 15, 16, *range(18, 24)])
    UPPER_BODY = np.arange(0, 13)

    BODY_LIMBS = _BODY_LIMBS
    FEET_LIMBS = _FEET_LIMBS
    LEFT_HAND_LIMBS = tuple((92 + a, 92 + b) for a, b in HAND_EDGES)
    RIGHT_HAND_LIMBS = tuple((113 + a, 113 + b) for a, b in HAND_EDGES)
    FACE_LIMBS = tuple((24 + a, 24 + b) for a, b in FACE_EDGES)

    @classmethod
    def groups(cls) -> dict[str, np.ndarray]:
        """Named index groups covering all 134 points exactly once."""
        return {
            "body": np.concatenate([cls.BODY, [cls.NECK]]),
            "feet": cls.FEET,
            "face": cls.FACE,
            "left_hand": cls.LEFT_HAND,
            "right_hand": cls.RIGHT_HAND,
        }

    @classmethod
    def names(cls) -> list[str]:
        """A readable name for each of the 134 points."""
        names = list(BODY_NAMES) + ["neck"] + list(FEET_NAMES)
        names += [f"face_{i}" for i in range(68)]
        names += [f"left_hand_{i}" for i in range(21)] + [f"right_hand_{i}" for i in range(21)]
        return names


def add_neck(keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Insert the neck at index 17 into COCO-WholeBody-133 arrays.

    keypoints: [..., 133, 2], scores: [..., 133] -> [..., 134, 2], [..., 134].
    The neck is the mean of the shoulders; its score is the smaller shoulder score, so it is
    confident only when both shoulders are.
    """
    if keypoints.shape[-2] != 133 or scores.shape[-1] != 133:
        raise ValueError(
            f"add_neck expects COCO-WholeBody keypoints [...,133,2] and scores [...,133], "
            f"got {keypoints.shape} and {scores.shape}"
        )
    ls, rs = SkeletonLayout.LEFT_SHOULDER, SkeletonLayout.RIGHT_SHOULDER
    neck = 0.5 * (keypoints[..., ls, :] + keypoints[..., rs, :])
    neck_score = np.minimum(scores[..., ls], scores[..., rs])
    kp = np.concatenate([keypoints[..., :17, :], neck[..., None, :], keypoints[..., 17:, :]], axis=-2)
    sc = np.concatenate([scores[..., :17], neck_score[..., None], scores[..., 17:]], axis=-1)
    return kp, sc
