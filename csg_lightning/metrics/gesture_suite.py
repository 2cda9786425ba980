"""``GestureMetrics``: every gesture metric of the evaluation report for one row (model or baseline).

``update(pred_keypoints, pred_scores, gt_keypoints, gt_scores, audio)`` with predictions and ground
truth [B, T, 134, 2] / [B, T, 134] for the same windows and their audio [B, T * 640]; ``compute()``
-> {"FGD", "BC", "Diversity", "L1div", "HKV", "HKC", "MPJPE", "PCK", "LipSync"} as floats. BC and
LipSync are measured against the true audio of the window, whatever audio drove the prediction.
With ``per_window=True`` every metric also records the states of each window alone, and
:meth:`intervals` gives a percentile bootstrap interval per metric over the windows (``bootstrap.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from csg_lightning.metrics.beat_consistency import BeatConsistency
from csg_lightning.metrics.bootstrap import DEFAULT_LEVEL, DEFAULT_RESAMPLES, WindowStates
from csg_lightning.metrics.diversity import Diversity, L1Div
from csg_lightning.metrics.fgd import FGD, SkeletonClipFeatures
from csg_lightning.metrics.hand_metrics import HKC, HKV
from csg_lightning.metrics.lip_sync import LipSync
from csg_lightning.metrics.paired_error import MPJPE, PCK

METRIC_NAMES = ("FGD", "BC", "Diversity", "L1div", "HKV", "HKC", "MPJPE", "PCK", "LipSync")


class GestureMetrics(nn.Module):
    """The report's metrics for one row; ``features`` is the (shared, frozen) FGD clip encoder."""

    def __init__(
        self, features: SkeletonClipFeatures, fps: int = 25, sample_rate: int = 16000, seed: int = 0,
        per_window: bool = False,
    ):
        super().__init__()
        self.metrics = nn.ModuleDict(
            {
                "FGD": FGD(features),
                "BC": BeatConsistency(fps=fps, sample_rate=sample_rate),
                "Diversity": Diversity(features, seed=seed),
                "L1div": L1Div(),
                "HKV": HKV(),
                "HKC": HKC(),
                "MPJPE": MPJPE(),
                "PCK": PCK(),
                "LipSync": LipSync(fps=fps, sample_rate=sample_rate),
            }
        )
        self.seed = seed
        self.windows = {name: WindowStates(m) for name, m in self.metrics.items()} if per_window else None

    def update(self, pred_keypoints, pred_scores, gt_keypoints, gt_scores, audio: torch.Tensor) -> None:
        self._update(self.metrics, pred_keypoints, pred_scores, gt_keypoints, gt_scores, audio)
        if self.windows is not None:
            for b in range(pred_keypoints.shape[0]):
                one = [x[b : b + 1] for x in (pred_keypoints, pred_scores, gt_keypoints, gt_scores, audio)]
                for name, states in self.windows.items():
                    states.record(lambda metric, name=name, one=one: self._update({name: metric}, *one))

    @staticmethod
    def _update(m, pred_keypoints, pred_scores, gt_keypoints, gt_scores, audio: torch.Tensor) -> None:
        """Update the metrics of the mapping ``m`` (all of them, or one) with a batch."""
        if "FGD" in m:
            m["FGD"].update(gt_keypoints, gt_scores, real=True)
            m["FGD"].update(pred_keypoints, pred_scores, real=False)
        if "BC" in m:
            m["BC"].update(pred_keypoints, pred_scores, audio)
        if "LipSync" in m:
            m["LipSync"].update(pred_keypoints, pred_scores, audio)
        for name in ("Diversity", "L1div", "HKV", "HKC"):
            if name in m:
                m[name].update(pred_keypoints, pred_scores)
        for name in ("MPJPE", "PCK"):
            if name in m:
                m[name].update(pred_keypoints, gt_keypoints, gt_scores)

    def compute(self) -> dict[str, float]:
        out = {}
        for name in METRIC_NAMES:
            try:
                out[name] = float(self.metrics[name].compute())
            except ValueError:  # e.g. FGD with fewer than 2 clips
                out[name] = float("nan")
        return out

    def bc_per_window(self) -> torch.Tensor:
        return self.metrics["BC"].per_window()

    def intervals(self, num_resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL) -> dict[str, list]:
        """{metric: [lo, hi]}: percentile bootstrap interval over the windows (needs ``per_window=True``)."""
        if self.windows is None:
            raise RuntimeError("GestureMetrics.intervals: build with per_window=True to record window states")
        return {name: list(self.windows[name].interval(num_resamples, level, self.seed)) for name in METRIC_NAMES}
