"""The 134-point whole-body skeleton: layout, local representation, OpenPose ordering."""

from csg_lightning.skeleton.layout import NUM_KEYPOINTS, SkeletonLayout
from csg_lightning.skeleton.local import (
    CONFIDENCE_THRESHOLD,
    NUM_LOCAL_FEATURES,
    NUM_LOCAL_POINTS,
    confidence_mask,
    from_local,
    local_confidence,
    to_local,
)

__all__ = [
    "CONFIDENCE_THRESHOLD",
    "NUM_KEYPOINTS",
    "NUM_LOCAL_FEATURES",
    "NUM_LOCAL_POINTS",
    "SkeletonLayout",
    "confidence_mask",
    "from_local",
    "local_confidence",
    "to_local",
]
