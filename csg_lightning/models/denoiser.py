"""The Stage-1 denoiser: a transformer over time fusing noisy skeleton frames with audio tokens."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from csg_lightning.models.fusion import AudioConditioning, AudioFusion, ConcatFusion
from csg_lightning.models.timestep import TimestepEmbedding, sinusoidal_embedding
from csg_lightning.models.transformer_block import TransformerBlock
from csg_lightning.skeleton.local import NUM_LOCAL_FEATURES

TIMESTEP_CONDITIONINGS = ("token", "adaln")


class SkeletonDenoiser(nn.Module):
    """Predicts the diffusion target of the window frames from noisy frames, prefix and audio.

    Inputs (P = clean prefix frames, W = window frames, F = feature size, 246 by default):
    - ``x`` [B, P+W, F]: P clean reference/prefix frames followed by W noisy frames,
    - ``timesteps`` [B] (int), ``audio`` [B, P+W, C_audio] frame-rate audio features,
    - ``drop_audio`` [B] bool: replace the audio by the learned null embedding (CFG).
    Output: [B, W, F] (prefix outputs are discarded).

    ``audio_dim`` is the audio encoder's ``output_dim`` (given by ``SkeletonDiffusion``, which builds
    the denoiser as ``denoiser(audio_dim)``; the YAML gives the rest,
    ``experiments/components/skeleton/denoiser/*.yaml``). ``fusion``: an :class:`AudioFusion` class,
    built as ``fusion(width, num_heads, dropout)`` (``ConcatFusion``: the paper's;
    ``CrossAttentionFusion``: audio attended in every block). ``timestep_conditioning='token'``
    (paper) prepends one timestep token; ``'adaln'`` modulates every block's norms by it.
    """

    def __init__(
        self,
        audio_dim: int,
        feature_dim: int = NUM_LOCAL_FEATURES,
        width: int = 256,
        depth: int = 4,
        num_heads: int = 4,
        ff_dim: int = 1024,
        dropout: float = 0.1,
        fusion: Callable[[int, int, float], AudioFusion] = ConcatFusion,
        timestep_conditioning: str = "token",
        cond_drop_prob: float = 0.1,
    ) -> None:
        super().__init__()
        if not callable(fusion):
            raise ValueError(f"denoiser.fusion: expected an AudioFusion class, got {fusion!r}")
        if timestep_conditioning not in TIMESTEP_CONDITIONINGS:
            raise ValueError(
                f"denoiser.timestep_conditioning: expected one of {TIMESTEP_CONDITIONINGS}, "
                f"got {timestep_conditioning!r}"
            )
        self.timestep_kind = timestep_conditioning
        self.width = width
        self.pose_in = nn.Linear(feature_dim, width)
        self.audio = AudioConditioning(audio_dim, width, cond_drop_prob)
        self.fusion = fusion(width, num_heads, dropout)
        if not isinstance(self.fusion, AudioFusion):
            raise ValueError(f"denoiser.fusion: {type(self.fusion).__name__} is not an AudioFusion")
        self.segment = nn.Embedding(2, width)  # 0 = clean prefix frame, 1 = noisy window frame
        self.timestep = TimestepEmbedding(width)
        adaln = timestep_conditioning == "adaln"
        self.blocks = nn.ModuleList(
            [
                TransformerBlock(width, num_heads, ff_dim, dropout, audio_layer=self.fusion.block_layer, adaln=adaln)
                for _ in range(depth)
            ]
        )
        self.norm_out = nn.LayerNorm(width, elementwise_affine=not adaln)
        if adaln:
            self.out_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
            nn.init.zeros_(self.out_modulation[1].weight)
            nn.init.zeros_(self.out_modulation[1].bias)
        self.head = nn.Linear(width, feature_dim)

    def forward(
        self,
        x: torch.Tensor,
        timesteps: torch.Tensor,
        audio: torch.Tensor,
        drop_audio: torch.Tensor,
        num_prefix: int,
    ) -> torch.Tensor:
        b, t, _ = x.shape
        if audio.shape[:2] != (b, t):
            raise ValueError(
                f"SkeletonDenoiser: audio {tuple(audio.shape)} does not match frames {tuple(x.shape)}"
            )
        positions = torch.arange(t, device=x.device)
        pos = sinusoidal_embedding(positions, self.width).to(x.dtype)
        segment = self.segment((positions >= num_prefix).long())
        audio_tokens = self.audio(audio, drop_audio, num_prefix)
        h = self.fusion.fuse_input(self.pose_in(x), audio_tokens)
        context = self.fusion.context(audio_tokens, pos)
        h = h + pos + segment
        t_emb = self.timestep(timesteps)  # [B, D]
        cond = None
        if self.timestep_kind == "token":
            h = torch.cat([t_emb[:, None].to(h.dtype), h], dim=1)
        else:
            cond = t_emb
        for block in self.blocks:
            h = block(h, context=context, cond=cond)
        h = self.norm_out(h)
        if cond is not None:
            shift, scale = self.out_modulation(cond).chunk(2, dim=-1)
            h = h * (1 + scale[:, None]) + shift[:, None]
        skip = 1 if self.timestep_kind == "token" else 0
        return self.head(h[:, skip + num_prefix :])
