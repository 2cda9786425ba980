"""`ReleaseDenoiser`: the Stage-1 network of the paper's code release, in our denoiser interface.

The release (MPI-Lab/Democratizing-CSG, ``2d_kp_generation/model/mdm.py``, ``--arch trans_enc
--cond audio_concat,long_video``) is a post-norm transformer encoder over
``[timestep token ; P prefix frames ; W window frames]``. Per frame: ``Linear(246 -> D)`` of the
features, concatenated with the audio token (``Linear(768 -> D)`` of the frame-rate wav2vec2 features;
zero on the prefix frames; a learned vector on every window frame for the unconditional branch) and
mixed by ``Linear(2D -> 4D) - GELU - Linear(4D -> D)``. The timestep token is
``Linear - SiLU - Linear`` of the interleaved sinusoid ``pe[t]`` (sin on even, cos on odd channels); the
same table ``pe[0 : 1 + P + W]`` is added to the whole sequence, then dropout, then ``depth``
``nn.TransformerEncoderLayer`` (post-norm, GELU, no final norm) and ``Linear(D -> 246)`` on the window
frames. Our :class:`~csg_lightning.models.denoiser.SkeletonDenoiser` differs (pre-norm, 2-layer audio
projection, a 2D -> D fusion MLP, segment embeddings, a final norm), so release weights need this class.

``csg import-release`` maps a release ``state_dict`` onto it (``csg_lightning/release/``). It differs from
the release in one respect: no key-padding mask (our windows are always full; the release masks the
padded frames of clips shorter than a window in attention).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from csg_lightning.skeleton.local import NUM_LOCAL_FEATURES

MAX_POSITIONS = 5000  # the release's PositionalEncoding(max_len=5000)


def release_position_table(width: int, max_len: int = MAX_POSITIONS) -> torch.Tensor:
    """[max_len, width] float32 sinusoids as the release builds them: channel 2i = sin(p * w_i),
    2i + 1 = cos(p * w_i), w_i = 10000^(-2i / width)."""
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    freqs = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(max_len, width)
    table[:, 0::2] = torch.sin(position * freqs)
    table[:, 1::2] = torch.cos(position * freqs)
    return table


class ReleaseAudioConditioning(nn.Module):
    """Audio tokens of the release: ``Linear(audio_dim -> width)``; the learned ``null`` vector on every
    frame of a dropped sample (CFG); zero on the first ``num_prefix`` frames.

    forward(audio [B, T, C], drop [B] bool, num_prefix) -> [B, T, D]. ``sample_drop`` as our
    :class:`~csg_lightning.models.fusion.AudioConditioning` (training-time CFG dropout).
    """

    def __init__(self, audio_dim: int, width: int, drop_prob: float = 0.1) -> None:
        super().__init__()
        self.proj = nn.Linear(audio_dim, width)
        self.null = nn.Parameter(torch.randn(width))
        self.drop_prob = float(drop_prob)

    def sample_drop(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """[B] bool, True with probability ``drop_prob`` (draws from the global torch RNG)."""
        return torch.rand(batch_size, device=device) < self.drop_prob

    def forward(self, audio: torch.Tensor, drop: torch.Tensor, num_prefix: int) -> torch.Tensor:
        tokens = self.proj(audio)
        tokens = torch.where(drop[:, None, None], self.null.to(tokens.dtype).expand_as(tokens), tokens)
        if num_prefix > 0:
            tokens = torch.cat([torch.zeros_like(tokens[:, :num_prefix]), tokens[:, num_prefix:]], dim=1)
        return tokens


class ReleaseDenoiser(nn.Module):
    """The release's network (see the module docstring) with :class:`SkeletonDenoiser`'s interface.

    forward(x [B, P+W, F], timesteps [B] int, audio [B, P+W, C], drop_audio [B] bool, num_prefix P)
    -> [B, W, F]. Built by ``SkeletonDiffusion`` as ``denoiser(audio_dim)``; the YAML
    (``experiments/components/skeleton/denoiser/release.yaml``) gives the sizes: the release's are width
    1024, depth 16, 16 heads, FF 4096, dropout 0.1, CFG drop 0.1.
    """

    def __init__(
        self,
        audio_dim: int,
        feature_dim: int = NUM_LOCAL_FEATURES,
        width: int = 1024,
        depth: int = 16,
        num_heads: int = 16,
        ff_dim: int = 4096,
        dropout: float = 0.1,
        cond_drop_prob: float = 0.1,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        if width % num_heads:
            raise ValueError(f"denoiser.num_heads: width {width} is not divisible by num_heads {num_heads}")
        if width % 2:
            raise ValueError(f"denoiser.width: the release's sinusoids need an even width, got {width}")
        self.width, self.feature_dim = int(width), int(feature_dim)
        self.pose_in = nn.Linear(feature_dim, width)
        self.audio = ReleaseAudioConditioning(audio_dim, width, cond_drop_prob)
        self.fusion = nn.Sequential(nn.Linear(2 * width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.timestep = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.register_buffer("positions", release_position_table(width), persistent=False)
        self.position_dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(width, num_heads, ff_dim, dropout, activation, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
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
            raise ValueError(f"ReleaseDenoiser: audio {tuple(audio.shape)} does not match frames {tuple(x.shape)}")
        if t + 1 > self.positions.shape[0]:
            raise ValueError(f"ReleaseDenoiser: {t} frames exceed the {self.positions.shape[0] - 1} positions")
        h = self.fusion(torch.cat([self.pose_in(x), self.audio(audio, drop_audio, num_prefix)], dim=-1))
        t_token = self.timestep(self.positions[timesteps.long()].to(h.dtype))  # [B, D]
        seq = torch.cat([t_token[:, None], h], dim=1) + self.positions[: t + 1].to(h.dtype)
        seq = self.encoder(self.position_dropout(seq))
        return self.head(seq[:, 1 + num_prefix :])
