"""Per-frame audio-skeleton fusion and the audio conditioning tokens (with the CFG null embedding)."""

from __future__ import annotations

import torch
from torch import nn

FUSIONS = ("concat", "cross_attention")


class AudioConditioning(nn.Module):
    """Projects audio features to conditioning tokens; handles the reference prefix and CFG dropout.

    forward(audio [B, T, C_audio], drop [B] bool, num_prefix P) -> [B, T, D]
    - the first P frames (clean reference/prefix frames) get a zero audio token (paper),
    - samples with ``drop[b] = True`` get the learned null embedding on every window frame
      (classifier-free guidance: the unconditional branch).
    ``drop_prob`` is the training-time probability of ``drop`` (see :meth:`sample_drop`).
    """

    def __init__(self, audio_dim: int, width: int, drop_prob: float = 0.1) -> None:
        super().__init__()
        self.proj = nn.Sequential(nn.Linear(audio_dim, width), nn.GELU(), nn.Linear(width, width))
        self.null = nn.Parameter(torch.randn(width) * 0.02)
        self.drop_prob = float(drop_prob)

    def sample_drop(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """[B] bool, True with probability ``drop_prob`` (draws from the global torch RNG)."""
        return torch.rand(batch_size, device=device) < self.drop_prob

    def forward(self, audio: torch.Tensor, drop: torch.Tensor, num_prefix: int) -> torch.Tensor:
        tokens = self.proj(audio)
        null = self.null.to(tokens.dtype).expand_as(tokens)
        tokens = torch.where(drop[:, None, None], null, tokens)
        if num_prefix > 0:
            keep = torch.arange(tokens.shape[1], device=tokens.device) >= num_prefix
            tokens = tokens * keep[None, :, None].to(tokens.dtype)
        return tokens


class ConcatFusion(nn.Module):
    """The paper's fusion: [pose token ; audio token] per frame -> MLP -> width.

    forward(pose [B, T, D], audio [B, T, D]) -> [B, T, D]
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * width, width), nn.GELU(), nn.Linear(width, width))

    def forward(self, pose: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([pose, audio], dim=-1))
