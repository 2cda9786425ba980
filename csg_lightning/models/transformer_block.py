"""Pre-norm transformer block on PyTorch SDPA, with an optional audio layer (from the fusion) and AdaLN."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention through ``F.scaled_dot_product_attention``.

    forward(x [B, T, D], context [B, S, D] | None) -> [B, T, D] (self-attention when context is None)
    """

    def __init__(self, width: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if width % num_heads:
            raise ValueError(f"Attention: width {width} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        b, t, d = x.shape
        context = x if context is None else context
        q = self.q(x).view(b, t, self.num_heads, -1).transpose(1, 2)
        k, v = self.kv(context).view(b, context.shape[1], 2, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, t, d))


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class TransformerBlock(nn.Module):
    """x [B, T, D] -> [B, T, D]: self-attention, an optional audio layer, feed-forward.

    ``audio_layer`` (a fusion's ``block_layer``) builds the layer applied after self-attention as
    ``x + layer(x, context)`` (e.g. cross-attention to the audio tokens); None or returning None: no layer.

    With ``adaln=True`` the block takes a conditioning vector ``cond`` [B, D] (the timestep
    embedding) that sets per-channel shift/scale/gate of the self-attention and feed-forward
    branches (zero-initialised, so each block starts as the identity).
    """

    def __init__(
        self,
        width: int,
        num_heads: int,
        ff_dim: int,
        dropout: float = 0.1,
        audio_layer: Callable[[], nn.Module | None] | None = None,
        adaln: bool = False,
    ) -> None:
        super().__init__()
        self.adaln = adaln
        self.norm1 = nn.LayerNorm(width, elementwise_affine=not adaln)
        self.attn = Attention(width, num_heads, dropout)
        self.audio_layer = audio_layer() if audio_layer is not None else None
        self.norm2 = nn.LayerNorm(width, elementwise_affine=not adaln)
        self.ff = nn.Sequential(
            nn.Linear(width, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, width)
        )
        self.drop = nn.Dropout(dropout)
        if adaln:
            self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
            nn.init.zeros_(self.modulation[1].weight)
            nn.init.zeros_(self.modulation[1].bias)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor | None = None, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.adaln:
            if cond is None:
                raise ValueError("TransformerBlock: adaln=True needs `cond` [B, D]")
            shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(cond).chunk(6, dim=-1)
            x = x + gate1[:, None] * self.drop(self.attn(_modulate(self.norm1(x), shift1, scale1)))
        else:
            x = x + self.drop(self.attn(self.norm1(x)))
        if self.audio_layer is not None:
            if context is None:
                raise ValueError("TransformerBlock: its audio layer needs `context` [B, S, D]")
            x = x + self.drop(self.audio_layer(x, context))
        if self.adaln:
            x = x + gate2[:, None] * self.drop(self.ff(_modulate(self.norm2(x), shift2, scale2)))
        else:
            x = x + self.drop(self.ff(self.norm2(x)))
        return x
