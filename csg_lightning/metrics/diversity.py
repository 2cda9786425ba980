"""Diversity and L1div: how much generated motion varies across and within sequences.

- **Diversity**: the mean L1 distance (sum of absolute differences over the D feature dimensions)
  between the FGD clip features (``fgd.SkeletonClipFeatures``) of pairs of clips. All pairs are
  used when there are at most ``max_pairs`` of them; otherwise ``max_pairs`` random pairs drawn with
  a ``torch.Generator`` seeded by ``seed``. Zero when all samples are identical; higher = more varied.
- **L1div**: per window, the mean over frames and confident local coordinates (pixels, local
  representation: body relative to the neck, face to the nose, hands to the wrists) of the absolute
  difference to the window's mean pose; averaged over windows. Zero for a frozen pose.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from csg_lightning.metrics.fgd import SkeletonClipFeatures
from csg_lightning.metrics.running_mean import RunningMean
from csg_lightning.metrics.skeleton_inputs import check_skeleton, local_points


def mean_pair_l1(features: torch.Tensor, max_pairs: int = 10000, seed: int = 0) -> torch.Tensor:
    """features [N, D] -> mean over pairs i != j of sum_d |f_i - f_j| (all pairs or max_pairs random ones)."""
    n = features.shape[0]
    if n < 2:
        return torch.tensor(float("nan"), dtype=torch.float64)
    f = features.to(torch.float64)
    if n * (n - 1) // 2 <= max_pairs:
        i, j = torch.triu_indices(n, n, offset=1)
    else:
        gen = torch.Generator().manual_seed(seed)
        i = torch.randint(0, n, (max_pairs,), generator=gen)
        j = (i + torch.randint(1, n, (max_pairs,), generator=gen)) % n  # j != i
    return (f[i] - f[j.to(f.device)]).abs().sum(-1).mean()


class Diversity(Metric):
    """Mean pairwise L1 distance of FGD clip features; ``update(keypoints, scores)``."""

    full_state_update = False
    higher_is_better = True

    def __init__(
        self, features: SkeletonClipFeatures, max_pairs: int = 10000, seed: int = 0, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.features, self.max_pairs, self.seed = features, max_pairs, seed
        self.add_state("clip_features", [], dist_reduce_fx="cat")

    def update(self, keypoints: torch.Tensor, scores: torch.Tensor) -> None:
        """keypoints [B, T, 134, 2] pixels, scores [B, T, 134]."""
        self.clip_features.append(self.features(keypoints, scores).to(torch.float64))

    def compute(self) -> torch.Tensor:
        return mean_pair_l1(dim_zero_cat(self.clip_features), self.max_pairs, self.seed)


class L1Div(RunningMean):
    """Mean absolute deviation from each window's mean pose (pixels); ``update(keypoints, scores)``."""

    full_state_update = False
    higher_is_better = True

    def update(self, keypoints: torch.Tensor, scores: torch.Tensor) -> None:
        check_skeleton(keypoints, scores, "L1Div")
        local, mask = local_points(keypoints, scores)  # [B, T, 123, 2], [B, T, 123]
        m = mask[..., None].expand_as(local)
        frames = m.sum(1, keepdim=True)
        mean = (local * m).sum(1, keepdim=True) / frames.clamp_min(1)
        dev = ((local - mean).abs() * m).sum((1, 2, 3)) / m.sum((1, 2, 3)).clamp_min(1)  # per window
        has = m.sum((1, 2, 3)) > 0
        self.total += dev[has].sum()
        self.count += has.sum()
