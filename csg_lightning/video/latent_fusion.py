"""Progressive latent fusion: denoise a long clip as overlapping tiles that all contain frame 0.

Frame 0 is the reference frame; every tile is ``[0] + a run of tile_size - 1 consecutive frames``,
consecutive runs overlapping by ``overlap`` frames, the last run ending at the clip's last frame.
At each denoising step every tile is evaluated and its output weighted per position by a triangular
weight (``min(i + 1, tile_size - i)``: small at the tile's ends, large in its middle); each frame's
result is the weighted mean over the tiles that contain it. A clip no longer than ``tile_size`` is
one tile, and the fusion is then exactly the plain pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def tile_indices(num_frames: int, tile_size: int, overlap: int) -> list[np.ndarray]:
    """Frame indices of each tile (each int64 [<= tile_size], starting with 0)."""
    if num_frames < 1 or tile_size < 2:
        raise ValueError(
            f"tile_indices: need num_frames >= 1 and tile_size >= 2, got {num_frames}, {tile_size}"
        )
    if num_frames <= tile_size:
        return [np.arange(num_frames)]
    run = tile_size - 1
    if not 0 <= overlap < run:
        raise ValueError(
            f"tile_indices: overlap must be in [0, {run - 1}] for tile_size {tile_size}, got {overlap}"
        )
    stride = run - overlap
    starts = list(range(1, num_frames - run, stride)) + [num_frames - run]
    starts = sorted(set(starts))
    return [np.concatenate([[0], np.arange(s, s + run)]) for s in starts]


def triangular_weights(length: int) -> torch.Tensor:
    """float32 [length]: ``min(i + 1, length - i)``."""
    i = torch.arange(length, dtype=torch.float32)
    return torch.minimum(i + 1, length - i)


def fuse_tiles(
    predict: Callable[[np.ndarray], torch.Tensor], num_frames: int, tiles: list[np.ndarray]
) -> torch.Tensor:
    """Weighted per-frame mean of tile predictions.

    ``predict(indices)`` returns the prediction for those frames, [B, len(indices), ...]. Returns
    [B, num_frames, ...]. Every frame must be in some tile.
    """
    total, norm = None, torch.zeros(num_frames)
    for idx in tiles:
        pred = predict(idx)
        w = triangular_weights(len(idx)).to(pred.device, pred.dtype)
        w = w.reshape(1, -1, *([1] * (pred.ndim - 2)))
        if total is None:
            total = pred.new_zeros((pred.shape[0], num_frames, *pred.shape[2:]))
        index = torch.as_tensor(idx, device=pred.device)
        total.index_add_(1, index, pred * w)
        norm.index_add_(0, torch.as_tensor(idx), triangular_weights(len(idx)))
    if total is None or (norm == 0).any():
        raise ValueError("fuse_tiles: some frames are in no tile")
    return total / norm.to(total.device, total.dtype).reshape(1, -1, *([1] * (total.ndim - 2)))
