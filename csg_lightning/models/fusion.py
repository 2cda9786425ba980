"""How audio enters the Stage-1 denoiser: the audio conditioning tokens and the fusion classes.

A fusion is one class (a subclass of :class:`AudioFusion`) built by the denoiser as
``fusion(width, num_heads, dropout)``; the YAML names it by ``class_path``
(``experiments/components/skeleton/fusion/*.yaml``). It has three hooks, each optional:

- ``fuse_input(pose [B, T, D], audio [B, T, D]) -> [B, T, D]``: mixes audio into the input tokens,
- ``context(audio [B, T, D], positions [T, D]) -> [B, S, D] | None``: what the block layers attend to,
- ``block_layer() -> nn.Module | None``: a layer each transformer block applies after its
  self-attention, as ``x + layer(x, context)`` (built inside the block, so it is the block's weight).
"""

from __future__ import annotations

import torch
from torch import nn

from csg_lightning.models.transformer_block import Attention


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


class AudioFusion(nn.Module):
    """Base class of the fusions: built as ``cls(width, num_heads, dropout)``; every hook a no-op."""

    def __init__(self, width: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.width, self.num_heads, self.dropout = int(width), int(num_heads), float(dropout)

    def fuse_input(self, pose: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return pose

    def context(self, audio: torch.Tensor, positions: torch.Tensor) -> torch.Tensor | None:
        return None

    def block_layer(self) -> nn.Module | None:
        return None


class ConcatFusion(AudioFusion):
    """The paper's fusion: [pose token ; audio token] per frame -> MLP -> width."""

    def __init__(self, width: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__(width, num_heads, dropout)
        self.mlp = nn.Sequential(nn.Linear(2 * width, width), nn.GELU(), nn.Linear(width, width))

    def fuse_input(self, pose: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([pose, audio], dim=-1))


class CrossAttentionLayer(nn.Module):
    """forward(x [B, T, D], context [B, S, D]) -> [B, T, D]: pre-norm cross-attention to ``context``."""

    def __init__(self, width: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.attention = Attention(width, num_heads, dropout)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.attention(self.norm(x), context)


class CrossAttentionFusion(AudioFusion):
    """Pose tokens attend to the audio token sequence (with positions) in every block."""

    def context(self, audio: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return audio + positions

    def block_layer(self) -> nn.Module:
        return CrossAttentionLayer(self.width, self.num_heads, self.dropout)
