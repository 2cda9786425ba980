"""Pretrained self-supervised speech encoder (wav2vec2 / HuBERT / WavLM) through transformers."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from csg_lightning.models.frame_alignment import interpolate_to_frames


class PretrainedSpeechEncoder(nn.Module):
    """Hidden states of a transformers speech model, resampled to one token per video frame.

    ``path_or_hub_id`` is a local folder written by ``save_pretrained`` (or a hub id already in
    the local cache; nothing is downloaded when ``HF_HUB_OFFLINE=1``). Frozen by default;
    ``train_top_layers=N`` makes the top N transformer layers trainable. ``layers`` picks the
    hidden states to use (indices into ``output_hidden_states``, -1 = last); several are averaged.

    forward(audio [B, N] 16 kHz float, num_frames) -> [B, num_frames, hidden_size]
    """

    def __init__(
        self,
        path_or_hub_id: str,
        layers: Sequence[int] = (-1,),
        train_top_layers: int = 0,
        normalize_audio: bool = True,
    ) -> None:
        super().__init__()
        from transformers import AutoModel

        try:
            self.model = AutoModel.from_pretrained(path_or_hub_id)
        except OSError as err:
            raise OSError(
                f"PretrainedSpeechEncoder: could not load '{path_or_hub_id}' (audio_encoder.init_args.path_or_hub_id). "
                "Expected a local folder written by save_pretrained (config.json + weights) or a hub id "
                "in the local cache."
            ) from err
        self.layers = [int(i) for i in layers]
        if not self.layers:
            raise ValueError("PretrainedSpeechEncoder: `layers` must name at least one hidden state")
        self.normalize_audio = normalize_audio
        self.train_top_layers = int(train_top_layers)
        self.model.requires_grad_(False)
        encoder_layers = self._encoder_layers()
        if self.train_top_layers > len(encoder_layers):
            raise ValueError(
                f"PretrainedSpeechEncoder: train_top_layers={self.train_top_layers} but the model has "
                f"{len(encoder_layers)} layers"
            )
        if self.train_top_layers > 0:
            for layer in encoder_layers[-self.train_top_layers :]:
                layer.requires_grad_(True)
        self.model.train(False)

    def _encoder_layers(self) -> nn.ModuleList:
        encoder = getattr(self.model, "encoder", None)
        layers = getattr(encoder, "layers", None)
        if layers is None:
            raise ValueError(f"PretrainedSpeechEncoder: {type(self.model).__name__} has no encoder.layers")
        return layers

    @property
    def output_dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def frozen(self) -> bool:
        return self.train_top_layers == 0

    def train(self, mode: bool = True) -> PretrainedSpeechEncoder:
        # A frozen backbone always runs in eval mode (no dropout / feature masking).
        super().train(mode)
        self.model.train(mode and not self.frozen)
        return self

    def forward(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        if audio.dim() != 2:
            raise ValueError(
                f"PretrainedSpeechEncoder: expected audio [B, N], got shape {tuple(audio.shape)}"
            )
        x = audio.float()
        if self.normalize_audio:
            x = (x - x.mean(dim=1, keepdim=True)) / torch.sqrt(x.var(dim=1, keepdim=True) + 1e-7)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            out = self.model(x, output_hidden_states=True)
        hidden = torch.stack([out.hidden_states[i] for i in self.layers]).mean(dim=0)  # [B, T50, C]
        return interpolate_to_frames(hidden, num_frames)
