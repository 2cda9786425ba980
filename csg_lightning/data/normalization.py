"""Local features and their z-scoring with the dataset statistics (numpy and torch alike).

Local features are the 123 local points flattened with x, y interleaved: ``[..., 246]``.
``stats`` is any mapping with ``mean`` and ``std`` of shape [246] (numpy arrays or tensors), e.g.
what :func:`load_stats` reads from ``DST/stats.npz`` or ``SkeletonAudioDataModule.stats``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from csg_lightning.skeleton.local import NUM_LOCAL_FEATURES, NUM_LOCAL_POINTS, from_local, to_local

STATS_FILENAME = "stats.npz"


def local_features(keypoints):
    """[..., 134, 2] absolute pixels -> [..., 246] local features (x, y interleaved per point)."""
    local = to_local(keypoints)
    return local.reshape(*local.shape[:-2], NUM_LOCAL_FEATURES)


def features_to_local(features):
    """[..., 246] -> [..., 123, 2]."""
    if features.shape[-1] != NUM_LOCAL_FEATURES:
        raise ValueError(
            f"features: expected {NUM_LOCAL_FEATURES} on the last dim, got shape {tuple(features.shape)}"
        )
    return features.reshape(*features.shape[:-1], NUM_LOCAL_POINTS, 2)


def features_to_keypoints(features, neck, legs=None):
    """[..., 246] local features -> [..., 134, 2] pixels (see ``skeleton.local.from_local``)."""
    return from_local(features_to_local(features), neck, legs)


def _mean_std(like, stats: Mapping):
    for key in ("mean", "std"):
        if key not in stats:
            raise KeyError(f"stats: missing '{key}' (expected mean and std of shape [{NUM_LOCAL_FEATURES}])")
    mean, std = stats["mean"], stats["std"]
    if isinstance(like, torch.Tensor):
        mean = torch.as_tensor(mean, dtype=like.dtype, device=like.device)
        std = torch.as_tensor(std, dtype=like.dtype, device=like.device)
    else:
        mean = np.asarray(mean, dtype=like.dtype if np.issubdtype(like.dtype, np.floating) else np.float32)
        std = np.asarray(std, dtype=mean.dtype)
    if tuple(mean.shape) != (NUM_LOCAL_FEATURES,) or tuple(std.shape) != (NUM_LOCAL_FEATURES,):
        raise ValueError(
            f"stats: mean/std must have shape [{NUM_LOCAL_FEATURES}], "
            f"got {tuple(mean.shape)}, {tuple(std.shape)}"
        )
    if like.shape[-1] != NUM_LOCAL_FEATURES:
        raise ValueError(
            f"features: expected {NUM_LOCAL_FEATURES} on the last dim, got shape {tuple(like.shape)}"
        )
    return mean, std


def normalize(features, stats: Mapping):
    """[..., 246] local features -> z-scores ``(x - mean) / std``."""
    mean, std = _mean_std(features, stats)
    return (features - mean) / std


def denormalize(z, stats: Mapping):
    """Inverse of :func:`normalize`: [..., 246] z-scores -> local features in pixels."""
    mean, std = _mean_std(z, stats)
    return z * std + mean


def load_stats(source) -> dict[str, np.ndarray]:
    """Read ``stats.npz`` (a file path, a shard dir holding one, or a binary file object).

    Keys: ``mean`` [246], ``std`` [246], ``count`` [246] (confident samples per feature),
    ``reference_keypoints`` [134, 2], ``reference_scores`` [134], ``reference_clip_id`` (0-d str),
    ``reference_frame`` (0-d int), ``num_frames`` (0-d int, train frames seen).
    """
    where = getattr(source, "name", "stats.npz")
    if isinstance(source, (str, os.PathLike)):
        source = Path(source)
        if source.is_dir():
            source = source / STATS_FILENAME
        if not source.is_file():
            raise FileNotFoundError(
                f"normalisation statistics not found: {source} (written by `csg-data shard`)"
            )
        where = str(source)
    with np.load(source, allow_pickle=False) as data:
        stats = {key: data[key] for key in data.files}
    for key in ("mean", "std"):
        if key not in stats or stats[key].shape != (NUM_LOCAL_FEATURES,):
            raise ValueError(f"{where}: '{key}' must be an array of shape [{NUM_LOCAL_FEATURES}]")
    return stats
