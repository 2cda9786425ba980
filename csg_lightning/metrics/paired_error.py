"""Paired errors against ground truth, in the local representation: MPJPE and PCK.

Both compare a prediction with the ground-truth window of the same audio, point by point, in local
coordinates (body relative to the neck, face to the nose, hands to their wrists; pixels), over the
123 local points where the ground truth is confident (local confidence > 0.7; the prediction's own
scores are ignored).

- **MPJPE**: mean Euclidean distance (pixels) between predicted and true local points. Lower is better.
- **PCK**: fraction of those points whose distance is below ``alpha`` (default 0.1) times the size of
  the ground-truth skeleton in that frame, i.e. the longer side of the bounding box of its confident
  upper-body, face and hand points in absolute pixels. Higher is better.
"""

from __future__ import annotations

import torch

from csg_lightning.metrics.running_mean import RunningMean
from csg_lightning.metrics.skeleton_inputs import check_skeleton, local_points
from csg_lightning.skeleton.local import CONFIDENCE_THRESHOLD, LOCAL_INDICES, to_local

_LOCAL = torch.as_tensor(LOCAL_INDICES)


def _errors(pred_kp, gt_kp, gt_scores) -> tuple[torch.Tensor, torch.Tensor]:
    """-> per-point distances [B, T, 123] (float64 pixels) and the mask of counted points."""
    gt_local, mask = local_points(gt_kp, gt_scores)
    pred_local = to_local(pred_kp.detach().to(torch.float64))
    finite = torch.isfinite(pred_local).all(-1)
    pred_local = torch.where(finite[..., None], pred_local, torch.zeros_like(pred_local))
    return (pred_local - gt_local).norm(dim=-1), mask * finite


class _PairedMetric(RunningMean):
    full_state_update = False

    def _check(self, pred_kp, gt_kp, gt_scores) -> None:
        check_skeleton(gt_kp, gt_scores, type(self).__name__)
        if pred_kp.shape != gt_kp.shape:
            raise ValueError(
                f"{type(self).__name__}: prediction {tuple(pred_kp.shape)} and ground truth "
                f"{tuple(gt_kp.shape)} must have the same shape [B, T, 134, 2]"
            )


class MPJPE(_PairedMetric):
    """Mean per-joint position error in the local representation (pixels); ``update(pred, gt, gt_scores)``."""

    higher_is_better = False

    def update(
        self, pred_keypoints: torch.Tensor, gt_keypoints: torch.Tensor, gt_scores: torch.Tensor
    ) -> None:
        """pred_keypoints, gt_keypoints [B, T, 134, 2] pixels; gt_scores [B, T, 134]."""
        self._check(pred_keypoints, gt_keypoints, gt_scores)
        dist, mask = _errors(pred_keypoints, gt_keypoints, gt_scores)
        self.total += (dist * mask).sum()
        self.count += mask.sum()


class PCK(_PairedMetric):
    """Percentage of correct keypoints (fraction in [0, 1]); ``update(pred, gt, gt_scores)``."""

    higher_is_better = True

    def __init__(self, alpha: float = 0.1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.alpha = alpha

    def update(
        self, pred_keypoints: torch.Tensor, gt_keypoints: torch.Tensor, gt_scores: torch.Tensor
    ) -> None:
        self._check(pred_keypoints, gt_keypoints, gt_scores)
        dist, mask = _errors(pred_keypoints, gt_keypoints, gt_scores)
        pts = gt_keypoints.detach().to(torch.float64)[:, :, _LOCAL]  # [B, T, 123, 2]
        ok = (gt_scores.detach()[:, :, _LOCAL] > CONFIDENCE_THRESHOLD) & torch.isfinite(pts).all(-1)
        big, small = torch.finfo(torch.float64).max, torch.finfo(torch.float64).min
        hi = torch.where(ok[..., None], pts, torch.full_like(pts, small)).amax(2)
        lo = torch.where(ok[..., None], pts, torch.full_like(pts, big)).amin(2)
        size = (hi - lo).amax(-1).clamp_min(0.0)  # [B, T]
        size = torch.where(ok.any(-1), size, torch.zeros_like(size))
        correct = (dist < self.alpha * size[..., None]).to(torch.float64)
        self.total += (correct * mask).sum()
        self.count += mask.sum()
