"""Temporal convolutional skeleton autoencoder: the feature network of FGD (Fréchet Gesture Distance).

Input: z-scored local features [B, T, 246] (see ``csg_lightning.data.normalization``), unconfident
points set to 0 (the dataset mean) by the caller. The encoder is a stack of 1-D convolutions over
time (two of them halve the frame rate) followed by a mean over time and a linear layer, so it maps
a clip of any length T >= 4 to one feature vector [B, latent_dim]. The decoder maps a feature vector
back to a clip of ``clip_frames`` frames [B, clip_frames, 246] (linear -> [B, hidden, clip_frames/4],
two transposed convolutions doubling the time axis, a last convolution to 246 features).
A plain ``nn.Module``; training lives in ``fgd_autoencoder_module.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from csg_lightning.skeleton.local import NUM_LOCAL_FEATURES


class SkeletonAutoencoder(nn.Module):
    """Clip of local skeleton features <-> one latent vector.

    Args:
        feature_dim: features per frame (246).
        hidden: channels of the convolutions.
        latent_dim: size of the clip feature (the FGD feature dimension).
        clip_frames: frames per training / FGD clip (a multiple of 4).
    """

    def __init__(
        self,
        feature_dim: int = NUM_LOCAL_FEATURES,
        hidden: int = 128,
        latent_dim: int = 32,
        clip_frames: int = 32,
    ) -> None:
        super().__init__()
        if clip_frames % 4 or clip_frames < 4:
            raise ValueError(f"clip_frames must be a positive multiple of 4, got {clip_frames}")
        self.feature_dim, self.hidden, self.latent_dim, self.clip_frames = (
            feature_dim,
            hidden,
            latent_dim,
            clip_frames,
        )
        act = nn.LeakyReLU(0.2)
        self.encoder = nn.Sequential(
            nn.Conv1d(feature_dim, hidden, 3, padding=1), act,
            nn.Conv1d(hidden, hidden, 4, stride=2, padding=1), act,
            nn.Conv1d(hidden, hidden, 4, stride=2, padding=1), act,
            nn.Conv1d(hidden, hidden, 3, padding=1), act,
        )  # fmt: skip
        self.to_latent = nn.Linear(hidden, latent_dim)
        self.from_latent = nn.Linear(latent_dim, hidden * (clip_frames // 4))
        self.decoder = nn.Sequential(
            act,
            nn.ConvTranspose1d(hidden, hidden, 4, stride=2, padding=1), act,
            nn.ConvTranspose1d(hidden, hidden, 4, stride=2, padding=1), act,
            nn.Conv1d(hidden, feature_dim, 3, padding=1),
        )  # fmt: skip

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        """[B, T, 246] -> [B, latent_dim]."""
        if features.ndim != 3 or features.shape[-1] != self.feature_dim or features.shape[1] < 4:
            raise ValueError(
                f"SkeletonAutoencoder.encode: expected [B, T >= 4, {self.feature_dim}], got {tuple(features.shape)}"
            )
        h = self.encoder(features.transpose(1, 2))  # [B, hidden, T/4]
        return self.to_latent(h.mean(dim=2))

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """[B, latent_dim] -> [B, clip_frames, 246]."""
        h = self.from_latent(latent).reshape(latent.shape[0], self.hidden, self.clip_frames // 4)
        return self.decoder(h).transpose(1, 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """[B, clip_frames, 246] -> reconstruction [B, clip_frames, 246]."""
        return self.decode(self.encode(features))
