"""Classifier-free guidance as one small object, used by both stages' pipelines.

A guider says how many passes a step needs and mixes them: ``uncond + s * (cond - uncond)`` with a
scale ``s`` per frame. :class:`ConstantGuider` (Stage 1; the paper's 3.5) uses one scale for every
frame; :class:`LinearRampGuider` (Stage 2, as MimicMotion) rises linearly from ``min_scale`` on the
first frame to ``max_scale`` on the last: over the whole clip (frame 0 included), also when it is
denoised in tiles (``combine(..., frames=tile, num_frames=clip length)``), as MimicMotion's
``linspace(min, max, num_frames)``. A scale of exactly 1 everywhere needs only the
conditional pass (``needs_uncond`` is False), so the pipelines skip the unconditional half.
"""

from __future__ import annotations

import abc

import torch


class Guider(abc.ABC):
    """Per-frame guidance scales and the classifier-free mix."""

    @abc.abstractmethod
    def scales(self, num_frames: int) -> torch.Tensor:
        """float32 [num_frames]: the guidance scale of each frame."""

    @property
    @abc.abstractmethod
    def needs_uncond(self) -> bool:
        """False when every scale is 1 (the guided prediction is the conditional one)."""

    def combine(self, cond: torch.Tensor, uncond: torch.Tensor, frame_dim: int = 1,
                frames: torch.Tensor | None = None, num_frames: int | None = None) -> torch.Tensor:  # fmt: skip
        """``uncond + s * (cond - uncond)`` with ``s`` broadcast along ``frame_dim``.

        ``frames``: which frames of a ``num_frames`` clip the tensors hold (a tile), default all of them
        (``num_frames`` = ``cond.shape[frame_dim]``).
        """
        n = cond.shape[frame_dim] if num_frames is None else int(num_frames)
        s = self.scales(n).to(cond.device, torch.float32)
        if frames is not None:
            s = s[torch.as_tensor(frames, device=cond.device, dtype=torch.long)]
        if s.numel() != cond.shape[frame_dim]:
            raise ValueError(f"{type(self).__name__}: {s.numel()} scales for {cond.shape[frame_dim]} frames")
        shape = [1] * cond.dim()
        shape[frame_dim] = s.numel()
        s = s.view(shape)
        return (uncond.float() + s * (cond.float() - uncond.float())).to(cond.dtype)


class ConstantGuider(Guider):
    """One scale for every frame (Stage 1)."""

    def __init__(self, scale: float = 3.5) -> None:
        self.scale = float(scale)

    def scales(self, num_frames: int) -> torch.Tensor:
        return torch.full((int(num_frames),), self.scale, dtype=torch.float32)

    @property
    def needs_uncond(self) -> bool:
        return self.scale != 1.0

    def __repr__(self) -> str:
        return f"ConstantGuider(scale={self.scale})"


class LinearRampGuider(Guider):
    """Scales linear from ``min_scale`` (first frame) to ``max_scale`` (last frame) (Stage 2)."""

    def __init__(self, min_scale: float = 1.0, max_scale: float = 3.0) -> None:
        self.min_scale, self.max_scale = float(min_scale), float(max_scale)

    def scales(self, num_frames: int) -> torch.Tensor:
        if num_frames > 1:
            return torch.linspace(self.min_scale, self.max_scale, int(num_frames))
        return torch.tensor([self.max_scale], dtype=torch.float32)

    @property
    def needs_uncond(self) -> bool:
        return not (self.min_scale == 1.0 and self.max_scale == 1.0)

    def __repr__(self) -> str:
        return f"LinearRampGuider(min_scale={self.min_scale}, max_scale={self.max_scale})"
