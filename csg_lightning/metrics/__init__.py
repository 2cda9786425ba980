"""Gesture metrics (FGD, BC, Diversity, L1div, HKV, HKC, MPJPE, PCK, LipSync) and video metrics
(FID, FVD, LPIPS; SSIM and PSNR come from torchmetrics) as torchmetrics ``Metric`` classes."""

from csg_lightning.metrics.beat_consistency import BeatConsistency
from csg_lightning.metrics.diversity import Diversity, L1Div
from csg_lightning.metrics.fgd import FGD, SkeletonClipFeatures
from csg_lightning.metrics.frechet import FrechetMoments, frechet_distance, frechet_distance_features
from csg_lightning.metrics.gesture_suite import METRIC_NAMES, GestureMetrics
from csg_lightning.metrics.hand_metrics import HKC, HKV
from csg_lightning.metrics.lip_sync import LipSync
from csg_lightning.metrics.paired_error import MPJPE, PCK
from csg_lightning.metrics.weights import MissingWeightsError

__all__ = [
    "FGD", "HKC", "HKV", "MPJPE", "METRIC_NAMES", "PCK", "BeatConsistency", "Diversity", "FrechetMoments",
    "GestureMetrics", "L1Div", "LipSync", "MissingWeightsError", "SkeletonClipFeatures", "frechet_distance",
    "frechet_distance_features",
]  # fmt: skip
