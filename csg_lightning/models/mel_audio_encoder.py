"""Trainable audio encoder from log-mel spectrograms (the demo default: needs no pretrained weights)."""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from csg_lightning.models.frame_alignment import SAMPLE_RATE, interpolate_to_frames


class _ResidualConv(nn.Module):
    """[B, C, T] -> [B, C, T]: per-frame LayerNorm -> GELU -> Conv1d, with a skip connection."""

    def __init__(self, channels: int, kernel_size: int = 5, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x.transpose(1, 2)).transpose(1, 2)
        return x + self.drop(self.conv(nn.functional.gelu(h)))


class MelAudioEncoder(nn.Module):
    """16 kHz waveform -> one feature vector per video frame.

    Log-mel spectrogram at 100 Hz (hop 160), a Conv1d stem, a stride-4 conv down to 25 Hz,
    residual temporal convolutions and a small transformer encoder. Output is linearly resampled
    to exactly ``num_frames`` frames.

    forward(audio [B, N] float in [-1, 1], num_frames) -> [B, num_frames, dim]
    """

    def __init__(
        self,
        dim: int = 256,
        n_mels: int = 80,
        num_conv_blocks: int = 2,
        num_transformer_layers: int = 1,
        num_heads: int = 4,
        dropout: float = 0.1,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=1024, win_length=400, hop_length=sample_rate // 100, n_mels=n_mels
        )
        self.stem = nn.Conv1d(n_mels, dim, kernel_size=3, padding=1)
        self.down = nn.Conv1d(dim, dim, kernel_size=4, stride=4)
        self.blocks = nn.Sequential(*[_ResidualConv(dim, 5, dropout) for _ in range(num_conv_blocks)])
        layer = nn.TransformerEncoderLayer(
            dim, num_heads, 4 * dim, dropout=dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.transformer = (
            nn.TransformerEncoder(layer, num_transformer_layers, enable_nested_tensor=False)
            if num_transformer_layers > 0
            else nn.Identity()
        )
        self.out_norm = nn.LayerNorm(dim)

    @property
    def output_dim(self) -> int:
        return self.dim

    def forward(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        if audio.dim() != 2:
            raise ValueError(f"MelAudioEncoder: expected audio [B, N], got shape {tuple(audio.shape)}")
        with torch.autocast(device_type=audio.device.type, enabled=False):
            mel = self.mel(audio.float())  # [B, n_mels, N/160 + 1]
            mel = torch.log(mel + 1e-5)
        x = nn.functional.gelu(self.stem(mel))
        x = nn.functional.gelu(self.down(x))  # [B, dim, ~25 Hz]
        x = self.blocks(x).transpose(1, 2)  # [B, T25, dim]
        x = self.out_norm(self.transformer(x))
        return interpolate_to_frames(x, num_frames)
