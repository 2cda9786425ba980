"""The release's point orders and ours, derived from the COCO-WholeBody point names.

The release stores 134 points per frame with the neck FIRST (``dataset_utils.global_to_local``
prepends it to COCO-WholeBody-133); its model sees 123 of them (``Audio_to_2dkp_Dataset.load_motion``
with ``pose_mode="no legs"``: drop the neck, keep COCO 0-12 and 23-132). We store the neck at index 17
(``skeleton/layout.py``) and our model sees ``skeleton/local.py``'s 123 points. The maps below are
built by matching names, so a change on either side shows up in ``tests/test_release_import.py``.

- :data:`RELEASE_134_TO_OURS` [134]: storage index (ours) of each release-134 point,
- :data:`RELEASE_123_TO_OURS_134` [123]: storage index (ours) of each release model point,
- :data:`RELEASE_123_TO_LOCAL` [123]: index in our 123 local points of each release model point
  (the identity today: both keep the upper body, face, left hand, right hand in COCO order).
"""

from __future__ import annotations

import numpy as np

from csg_lightning.skeleton.layout import SkeletonLayout
from csg_lightning.skeleton.local import LOCAL_INDICES, NUM_LOCAL_POINTS

OUR_NAMES = SkeletonLayout.names()
_COCO_133 = [n for n in OUR_NAMES if n != "neck"]  # COCO-WholeBody-133 in its own order
RELEASE_134_NAMES = ["neck", *_COCO_133]
RELEASE_123_NAMES = [*_COCO_133[:13], *_COCO_133[23:]]


def _index_map(names: list[str], into: list[str]) -> np.ndarray:
    position = {n: i for i, n in enumerate(into)}
    missing = [n for n in names if n not in position]
    if missing:
        raise ValueError(f"release point order: points {missing[:5]} have no counterpart")
    return np.array([position[n] for n in names], dtype=np.int64)


RELEASE_134_TO_OURS = _index_map(RELEASE_134_NAMES, OUR_NAMES)
RELEASE_123_TO_OURS_134 = _index_map(RELEASE_123_NAMES, OUR_NAMES)
RELEASE_123_TO_LOCAL = _index_map(RELEASE_123_NAMES, [OUR_NAMES[i] for i in LOCAL_INDICES])
assert len(RELEASE_123_TO_LOCAL) == NUM_LOCAL_POINTS


def feature_permutation() -> np.ndarray:
    """[246] index into the release's features (point j, coordinate c at ``2 j + c``) for each of our
    246 local features: ``ours = release[..., feature_permutation()]``."""
    local_to_release = np.argsort(RELEASE_123_TO_LOCAL)
    return (2 * local_to_release[:, None] + np.arange(2)[None]).reshape(-1)


def release_points_to_ours(points: np.ndarray) -> np.ndarray:
    """[..., 134, C] in the release's storage order (neck first) -> [..., 134, C] in ours."""
    points = np.asarray(points)
    if points.shape[-2] != 134:
        raise ValueError(f"release_points_to_ours: expected [..., 134, C], got {points.shape}")
    out = np.empty_like(points)
    out[..., RELEASE_134_TO_OURS, :] = points
    return out


def our_points_to_release(points: np.ndarray) -> np.ndarray:
    """Inverse of :func:`release_points_to_ours`."""
    points = np.asarray(points)
    if points.shape[-2] != 134:
        raise ValueError(f"our_points_to_release: expected [..., 134, C], got {points.shape}")
    return points[..., RELEASE_134_TO_OURS, :]
