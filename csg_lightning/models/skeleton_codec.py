"""`SkeletonCodec`: skeletons <-> the features the Stage-1 denoiser sees, and a batch cut into its parts.

Holds the dataset statistics (buffers ``feature_mean`` / ``feature_std`` / ``has_stats``, so a checkpoint
carries them) and the representation (``local``: z-scored local features, the paper's; else normalised
absolute points, see ``representation.py``); ``prefix_low_confidence`` says what the prefix holds at
unconfident points. :meth:`split` cuts a datamodule batch into prefix, window,
mask and audio features -- what both training and sampling condition on.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from csg_lightning.models.representation import decode_features, encode_keypoints, encode_mask
from csg_lightning.skeleton.local import NUM_LOCAL_FEATURES
from csg_lightning.timing import SAMPLES_PER_FRAME

# What the prefix holds at points scored <= 0.7: "keep" the estimator's position (ours), or "mean": feature 0,
# the dataset mean of the z-scored local features (the release multiplies its prefix by the confidence mask).
PREFIX_LOW_CONFIDENCE = ("keep", "mean")


class SkeletonCodec(nn.Module):
    """Encodes [.., 134, 2] pixels to [.., 246] model features and back (no trainable weights)."""

    def __init__(self, local: bool = True, frame_size: int = 512, prefix_low_confidence: str = "keep") -> None:
        super().__init__()
        self.local, self.frame_size = bool(local), int(frame_size)
        if prefix_low_confidence not in PREFIX_LOW_CONFIDENCE:
            raise ValueError(
                f"model.prefix_low_confidence: expected one of {PREFIX_LOW_CONFIDENCE}, got {prefix_low_confidence!r}"
            )
        self.prefix_low_confidence = prefix_low_confidence
        self.register_buffer("feature_mean", torch.zeros(NUM_LOCAL_FEATURES))
        self.register_buffer("feature_std", torch.ones(NUM_LOCAL_FEATURES))
        self.register_buffer("has_stats", torch.tensor(False))

    def load_stats(self, stats: dict) -> None:
        """``stats["mean"]`` / ``stats["std"]`` [246] (the datamodule's) into the buffers."""
        self.feature_mean.copy_(torch.as_tensor(np.asarray(stats["mean"]), dtype=torch.float32))
        self.feature_std.copy_(torch.as_tensor(np.asarray(stats["std"]), dtype=torch.float32).clamp_min(1e-6))
        self.has_stats.fill_(True)

    def encode(self, keypoints: torch.Tensor) -> torch.Tensor:
        """[..., 134, 2] pixels -> [..., 246] features (NaN where points are missing)."""
        return encode_keypoints(keypoints, self.local, self.feature_mean, self.feature_std, self.frame_size)

    def decode(self, features: torch.Tensor, reference_keypoints: torch.Tensor) -> torch.Tensor:
        """[B, T, 246] features + reference [B, 134, 2] -> [B, T, 134, 2] pixels (legs from the reference)."""
        return decode_features(
            features, reference_keypoints, self.local, self.feature_mean, self.feature_std, self.frame_size
        )

    def batch_features(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """-> features [B, P+W, 246], mask [B, P+W, 123] of a datamodule batch, NaN-free."""
        if self.local:
            feats, mask = batch["features"], batch["mask"]
        else:
            feats = self.encode(batch["keypoints"])
            mask = encode_mask(batch["scores"], False)
        mask = mask * torch.isfinite(feats).view(*mask.shape, 2).all(-1)
        return torch.nan_to_num(feats.float(), nan=0.0, posinf=0.0, neginf=0.0), mask.float()

    def split(self, batch: dict, data_prefix: int, model_prefix: int, audio_encoder: nn.Module):
        """-> prefix [B, P_model, F], window x0 [B, W, F], window mask [B, W, 123], audio features
        [B, P_model + W, C]. ``data_prefix``: prefix frames of the batch; ``model_prefix`` (<= it): the
        ones the denoiser sees (0 for the no-prefix ablation: the data prefix and its audio are dropped)."""
        feats, mask = self.batch_features(batch)
        p_data, p = int(data_prefix), int(model_prefix)
        audio = batch["audio"].float()
        if p < p_data:
            audio = audio[:, (p_data - p) * SAMPLES_PER_FRAME :]
        audio_feats = audio_encoder(audio, feats.shape[1] - p_data + p)
        prefix = self.prefix_points(feats[:, p_data - p : p_data], mask[:, p_data - p : p_data])
        return prefix, feats[:, p_data:], mask[:, p_data:], audio_feats

    def prefix_points(self, prefix: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """prefix [.., P, 246], mask [.., P, 123] -> the prefix the denoiser sees (``prefix_low_confidence``)."""
        if self.prefix_low_confidence == "keep":
            return prefix
        return prefix * mask.repeat_interleave(2, dim=-1).to(prefix.dtype)

    def reference_features(self, keypoints: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Reference [134, 2] pixels and [134] scores -> [246] NaN-free features (the first window's prefix)."""
        raw = self.encode(keypoints)
        if self.prefix_low_confidence == "keep":
            return torch.nan_to_num(raw)
        mask = encode_mask(scores, self.local) * torch.isfinite(raw).view(*raw.shape[:-1], -1, 2).all(-1)
        return self.prefix_points(torch.nan_to_num(raw), mask)
