"""Audio encoders the Stage-1 model can use, built by name from the experiment YAML."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from csg_lightning.models.mel_audio_encoder import MelAudioEncoder
from csg_lightning.models.pretrained_speech_encoder import PretrainedSpeechEncoder

AUDIO_ENCODERS = ("mel", "pretrained")

__all__ = ["AUDIO_ENCODERS", "MelAudioEncoder", "PretrainedSpeechEncoder", "build_audio_encoder"]


def build_audio_encoder(
    name: str,
    path: str | None = None,
    dim: int = 256,
    layers: Sequence[int] = (-1,),
    train_top_layers: int = 0,
    dropout: float = 0.1,
) -> nn.Module:
    """``mel`` -> :class:`MelAudioEncoder` (trainable, ``dim`` channels);
    ``pretrained`` -> :class:`PretrainedSpeechEncoder` loaded from ``path``."""
    if name == "mel":
        return MelAudioEncoder(dim=dim, dropout=dropout)
    if name == "pretrained":
        if not path:
            raise ValueError("model.audio_encoder_path: required when model.audio_encoder is 'pretrained'")
        return PretrainedSpeechEncoder(path, layers=layers, train_top_layers=train_top_layers)
    raise ValueError(f"model.audio_encoder: expected one of {AUDIO_ENCODERS}, got {name!r}")
