"""Audio of any length -> one sequence, by overlapping windows that are cross-faded.

Window k starts at frame ``k * hop`` (``hop = window - overlap``) and is conditioned on the P
frames just before its start (the reference pose repeated for the first window; for later ones
the previous window's frames, which lie before the overlap because ``hop >= P``). The first
``overlap`` frames of window k are blended linearly with the end of window k-1 (weights
1/(O+1) ... O/(O+1) for the new window), so there is no jump at a seam.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def window_starts(num_frames: int, window: int, overlap: int) -> list[int]:
    """First frames of the windows needed to cover ``num_frames`` frames."""
    if window <= 0 or not 0 <= overlap < window:
        raise ValueError(f"window_starts: need window > 0 and 0 <= overlap < window, got {window}, {overlap}")
    hop = window - overlap
    starts = [0]
    while starts[-1] + window < num_frames:
        starts.append(starts[-1] + hop)
    return starts


def crossfade(previous: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
    """Linear blend over the overlap. previous, new: [O, ...] -> [O, ...] (ramps towards ``new``)."""
    o = previous.shape[0]
    w = torch.arange(1, o + 1, dtype=previous.dtype, device=previous.device) / (o + 1)
    w = w.view(-1, *([1] * (previous.dim() - 1)))
    return (1 - w) * previous + w * new


def chain_windows(
    sample_window: Callable[[torch.Tensor, int], torch.Tensor],
    num_frames: int,
    window: int,
    num_prefix: int,
    overlap: int,
    first_prefix: torch.Tensor,
) -> torch.Tensor:
    """Chain windows over ``num_frames`` frames.

    sample_window(prefix [P, F], start) -> [window, F] generates the frames
    [start, start + window); first_prefix: [P, F] (the reference frames). Returns [num_frames, F].
    """
    if window - overlap < num_prefix:
        raise ValueError(
            f"chain_windows: window ({window}) - overlap ({overlap}) must be >= num_prefix ({num_prefix}) "
            "so that each window's prefix is already final"
        )
    starts = window_starts(num_frames, window, overlap)
    total = starts[-1] + window
    out: torch.Tensor | None = None
    for k, start in enumerate(starts):
        prefix = first_prefix if k == 0 else out[start - num_prefix : start]
        frames = sample_window(prefix, start)
        if frames.shape[0] != window:
            raise ValueError(f"chain_windows: sample_window returned {frames.shape[0]} frames, expected {window}")
        if out is None:
            out = frames.new_zeros((total, *frames.shape[1:]))
            out[:window] = frames
            continue
        blend = min(overlap, window)
        out[start : start + blend] = crossfade(out[start : start + blend], frames[:blend])
        out[start + blend : start + window] = frames[blend:]
    return out[:num_frames]
