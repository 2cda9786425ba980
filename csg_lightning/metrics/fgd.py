"""FGD: Fréchet Gesture Distance under the project's own skeleton autoencoder.

Definition: every window [T, 134, 2] is turned into z-scored local features [T, 246] (train-split
statistics; points with local confidence <= 0.7 set to 0, i.e. the mean), cut into non-overlapping
clips of ``clip_frames`` frames (the encoder's training length; a shorter remainder is dropped), and
each clip is encoded to a feature vector by :class:`~csg_lightning.models.skeleton_autoencoder.SkeletonAutoencoder`.
FGD is the Fréchet distance (``frechet.py``) between the Gaussians fitted to real and generated clip
features. Lower is better; values are comparable only under the same encoder checkpoint (the
evaluation report records its hash).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from csg_lightning.metrics.frechet import FrechetMoments
from csg_lightning.metrics.skeleton_inputs import check_skeleton, local_points
from csg_lightning.models.skeleton_autoencoder import SkeletonAutoencoder


class SkeletonClipFeatures(nn.Module):
    """keypoints [B, T, 134, 2] + scores [B, T, 134] -> clip features [B * (T // clip_frames), D] (frozen)."""

    def __init__(self, encoder: SkeletonAutoencoder, stats: Mapping, clip_frames: int | None = None) -> None:
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.clip_frames = int(clip_frames or encoder.clip_frames)
        self.num_features = encoder.latent_dim
        self.register_buffer("mean", torch.as_tensor(np.asarray(stats["mean"]), dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(np.asarray(stats["std"]), dtype=torch.float32))

    def train(self, mode: bool = True) -> SkeletonClipFeatures:
        return super().train(False)  # the encoder stays in eval mode

    @torch.no_grad()
    def forward(self, keypoints: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        check_skeleton(keypoints, scores, "SkeletonClipFeatures")
        b, t = keypoints.shape[:2]
        n = t // self.clip_frames
        if n == 0:
            raise ValueError(
                f"SkeletonClipFeatures: windows of {t} frames are shorter than clip_frames={self.clip_frames}"
            )
        local, mask = local_points(keypoints, scores)
        feats = (local.reshape(b, t, -1).float() - self.mean) / self.std
        feats = feats * mask.repeat_interleave(2, dim=-1).float()
        clips = feats[:, : n * self.clip_frames].reshape(b * n, self.clip_frames, -1)
        return self.encoder.encode(clips.to(self.mean.device))


class FGD(FrechetMoments):
    """Fréchet Gesture Distance; ``update(keypoints, scores, real)`` (see the module docstring)."""

    def __init__(self, features: SkeletonClipFeatures, **kwargs) -> None:
        super().__init__(features.num_features, **kwargs)
        self.features = features

    def update(self, keypoints: torch.Tensor, scores: torch.Tensor, real: bool) -> None:
        """keypoints [B, T, 134, 2] pixels, scores [B, T, 134]; ``real`` marks ground-truth windows."""
        self.update_features(self.features(keypoints, scores), real)
