"""Progressive latent fusion: denoise a long clip as overlapping tiles that all contain frame 0.

Exactly MimicMotion's tiling (``pipeline_mimicmotion.py``; pinned by ``tests/test_mimicmotion_parity.py``):

- Frame 0 is the reference frame. A tile is ``[0] + tile_size - 1 consecutive frames``; tile ``k``'s run
  starts at frame ``1 + k * (tile_size - overlap)`` while it fits, and if the last run does not end on
  the clip's last frame one more tile ``[0, num_frames - tile_size + 1, ..., num_frames - 1]`` is added.
- ``overlap`` is MimicMotion's ``tile_overlap``: the number of frames two neighbouring tiles share
  *counting frame 0*, so their consecutive runs share ``overlap - 1`` frames (valid: 1 <= overlap <
  tile_size). Until this change ours counted the runs' overlap only (ours ``k`` == MimicMotion's ``k + 1``).
- Weights per position ``i`` of a tile of length ``L``: ``w = (i + 0.5) * 2 / L``, ``min(w, 2 - w)``
  (triangular, ``1/L`` at both ends, ~1 in the middle; frame 0 gets the end weight in every tile).
  Each frame's result is the weighted mean over the tiles that contain it.

Kept where ours is better: a clip no longer than ``tile_size`` is one tile (MimicMotion raises an
IndexError for a clip shorter than ``tile_size``), and fusion is then exactly the plain pass; an
overlap that would leave frames in no tile (MimicMotion: ``overlap=0`` divides by zero -> NaN) raises.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def tile_indices(num_frames: int, tile_size: int, overlap: int) -> list[np.ndarray]:
    """Frame indices of each tile (each int64 [min(num_frames, tile_size)], starting with 0)."""
    if num_frames < 1 or tile_size < 2:
        raise ValueError(
            f"tile_indices: need num_frames >= 1 and tile_size >= 2, got {num_frames}, {tile_size}"
        )
    if not 1 <= overlap < tile_size:
        raise ValueError(
            f"tile_indices: tile_overlap must be in [1, {tile_size - 1}] for tile_size {tile_size} (the "
            f"frames two tiles share, frame 0 included, as MimicMotion's), got {overlap}"
        )
    if num_frames <= tile_size:
        return [np.arange(num_frames)]
    stride = tile_size - overlap
    tiles = [
        np.concatenate([[0], np.arange(i + 1, i + tile_size)])
        for i in range(0, num_frames - tile_size + 1, stride)
    ]
    if tiles[-1][-1] < num_frames - 1:
        tiles.append(np.concatenate([[0], np.arange(num_frames - tile_size + 1, num_frames)]))
    return tiles


def triangular_weights(length: int) -> torch.Tensor:
    """float32 [length]: MimicMotion's ``min(w, 2 - w)`` with ``w = (i + 0.5) * 2 / length``."""
    w = (torch.arange(length, dtype=torch.float32) + 0.5) * 2.0 / length
    return torch.minimum(w, 2 - w)


def fuse_tiles(
    predict: Callable[[np.ndarray], torch.Tensor], num_frames: int, tiles: list[np.ndarray]
) -> torch.Tensor:
    """Weighted per-frame mean of tile predictions.

    ``predict(indices)`` returns the prediction for those frames, [B, len(indices), ...]. Returns
    [B, num_frames, ...]. Every frame must be in some tile. Only one tile's prediction is alive at a
    time (``predict`` is called tile by tile), so peak memory is one tile's, not the clip's.
    """
    total, norm = None, torch.zeros(num_frames)
    for idx in tiles:
        pred = predict(idx)
        w = triangular_weights(len(idx))
        wp = w.to(pred.device, pred.dtype).reshape(1, -1, *([1] * (pred.ndim - 2)))
        if total is None:
            total = pred.new_zeros((pred.shape[0], num_frames, *pred.shape[2:]))
        total.index_add_(1, torch.as_tensor(idx, device=pred.device), pred * wp)
        norm.index_add_(0, torch.as_tensor(idx), w)
    if total is None or (norm == 0).any():
        raise ValueError("fuse_tiles: some frames are in no tile")
    return total / norm.to(total.device, total.dtype).reshape(1, -1, *([1] * (total.ndim - 2)))
