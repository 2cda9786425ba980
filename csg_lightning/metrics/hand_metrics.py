"""Hand metrics: HKV (hand keypoint variance) and HKC (hand keypoint confidence).

- **HKV**: for every window and each of the 42 hand points (storage 92-133, absolute pixels), the
  variance over the frames where the point is confident (score > 0.7, at least 2 such frames),
  summed over x and y; averaged over points and windows (pixels^2). A still hand scores 0; higher
  means livelier hands (compare with ground truth, not "the higher the better").
- **HKC**: the mean score of the 42 hand points over all frames and windows. For skeletons that a
  model generates the score is its own (1.0 for Stage 1); it is informative when the keypoints
  come from a pose estimator run on generated video.
"""

from __future__ import annotations

import torch

from csg_lightning.metrics.running_mean import RunningMean
from csg_lightning.metrics.skeleton_inputs import check_skeleton
from csg_lightning.skeleton.layout import SkeletonLayout
from csg_lightning.skeleton.local import CONFIDENCE_THRESHOLD

_HANDS = torch.as_tensor(SkeletonLayout.HANDS)


class HKV(RunningMean):
    """Hand keypoint variance in pixels^2; ``update(keypoints, scores)``."""

    full_state_update = False
    higher_is_better = None

    def update(self, keypoints: torch.Tensor, scores: torch.Tensor) -> None:
        check_skeleton(keypoints, scores, "HKV")
        kp = keypoints.detach()[:, :, _HANDS].to(torch.float64)  # [B, T, 42, 2]
        ok = (scores.detach()[:, :, _HANDS] > CONFIDENCE_THRESHOLD) & torch.isfinite(kp).all(-1)
        m = ok[..., None].to(torch.float64)
        kp = torch.where(ok[..., None], kp, torch.zeros_like(kp))
        n = m.sum(1)  # [B, 42, 1]
        mean = (kp * m).sum(1) / n.clamp_min(1)
        var = (((kp - mean[:, None]) ** 2) * m).sum(1) / (n - 1).clamp_min(1)  # [B, 42, 2]
        valid = n[..., 0] >= 2
        self.total += var.sum(-1)[valid].sum()
        self.count += valid.sum()


class HKC(RunningMean):
    """Mean hand keypoint confidence in [0, 1]; ``update(keypoints, scores)``."""

    full_state_update = False
    higher_is_better = True

    def update(self, keypoints: torch.Tensor, scores: torch.Tensor) -> None:
        check_skeleton(keypoints, scores, "HKC")
        hand = scores.detach()[:, :, _HANDS].to(torch.float64)
        self.total += hand.sum()
        self.count += hand.numel()
