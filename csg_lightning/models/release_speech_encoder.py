"""`ReleaseSpeechEncoder`: frozen wav2vec2 features computed the way the paper's release computes them.

Three differences from :class:`~csg_lightning.models.pretrained_speech_encoder.PretrainedSpeechEncoder`
(whose loading, freezing and checkpointing it keeps):

- only the audio of the generated window is encoded: the first ``prefix_frames`` frames of a call are the
  prefix's (the release feeds its model the window's 10 s only; the prefix frames get zero audio tokens
  in the denoiser anyway), so their features are zeros;
- the features are the model's ``last_hidden_state``;
- the waveform is normalised per window with the population variance, as the release's
  ``Wav2Vec2Processor`` (``(x - mean) / sqrt(var + 1e-7)``);
- the 50 Hz hidden states are resampled to the frames with ``align_corners=True`` linear interpolation
  (``mdm.py: _audio_resize``), which maps the first and last encoder frames onto the first and last video
  frames.

forward(audio [B, N] 16 kHz covering ``num_frames`` frames, num_frames) -> [B, num_frames, hidden_size]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from csg_lightning.models.pretrained_speech_encoder import PretrainedSpeechEncoder
from csg_lightning.timing import SAMPLES_PER_FRAME


class ReleaseSpeechEncoder(PretrainedSpeechEncoder):
    """wav2vec2 (``path_or_hub_id``: a ``save_pretrained`` folder, e.g. the release's
    ``pretrained_weights/wav2vec2-base-960h``) on the window audio; see the module docstring."""

    def __init__(
        self,
        path_or_hub_id: str,
        prefix_frames: int = 25,
        train_top_layers: int = 0,
    ) -> None:
        super().__init__(path_or_hub_id, (-1,), train_top_layers, normalize_audio=True)
        if prefix_frames < 0:
            raise ValueError(f"audio_encoder.prefix_frames: expected >= 0, got {prefix_frames}")
        self.prefix_frames = int(prefix_frames)

    def forward(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        if audio.dim() != 2:
            raise ValueError(f"ReleaseSpeechEncoder: expected audio [B, N], got shape {tuple(audio.shape)}")
        p = self.prefix_frames
        if num_frames <= p:
            raise ValueError(
                f"ReleaseSpeechEncoder: {num_frames} frames but the first {p} (audio_encoder.prefix_frames) "
                "are the prefix's: nothing left to encode"
            )
        x = audio[:, p * SAMPLES_PER_FRAME :].float()
        x = (x - x.mean(dim=1, keepdim=True)) / torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-7)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            hidden = self.model(x).last_hidden_state  # [B, T50, C], as the release (mdm.py: _audio_2_hidden)
        window = F.interpolate(hidden.transpose(1, 2), size=num_frames - p, mode="linear", align_corners=True)
        window = window.transpose(1, 2).to(hidden.dtype)
        return torch.cat([window.new_zeros(window.shape[0], p, window.shape[2]), window], dim=1)
