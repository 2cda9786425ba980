"""FVD: Fréchet Video Distance with an I3D network from a local TorchScript file.

Definition: every video (uint8 [T, 3, H, W]) is cut into non-overlapping clips of ``clip_frames``
(default 16) frames, each clip resized to ``size`` x ``size`` (default 224), scaled to [-1, 1] and
laid out [N, 3, clip_frames, size, size] for the I3D network, which returns [N, D] features
(400 logits or the 400-d pre-softmax layer for the common ``i3d_torchscript.pt``, used with
``forward_kwargs={"rescale": False, "resize": False, "return_features": True}``). FVD = Fréchet
distance (``frechet.py``) between the Gaussians of real and generated clip features. Lower is better.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from csg_lightning.metrics.frechet import FrechetMoments
from csg_lightning.metrics.weights import ScriptedFeatures, load_torchscript

FVD_WEIGHTS_HINT = (
    "an I3D TorchScript file (float videos [N, 3, T, H, W] in [-1, 1] -> [N, D] features), e.g. the "
    "i3d_torchscript.pt used by StyleGAN-V / DIGAN"
)


def video_clips(video: torch.Tensor, clip_frames: int, size: int) -> torch.Tensor:
    """uint8 video [T, 3, H, W] -> float clips [T // clip_frames, 3, clip_frames, size, size] in [-1, 1]."""
    if video.ndim != 4 or video.shape[1] != 3:
        raise ValueError(f"FVD: expected a video [T, 3, H, W], got {tuple(video.shape)}")
    n = video.shape[0] // clip_frames
    frames = video[: n * clip_frames].float() / 127.5 - 1.0
    if frames.shape[-2:] != (size, size) and n > 0:
        frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)
    return frames.reshape(n, clip_frames, 3, size, size).transpose(1, 2)


class FVD(FrechetMoments):
    """``update(video uint8 [T, 3, H, W] or [B, T, 3, H, W], real: bool)``; ``compute()`` -> FVD."""

    def __init__(
        self,
        weights: str | Path,
        clip_frames: int = 16,
        size: int = 224,
        forward_kwargs: dict | None = None,
        **kwargs,
    ) -> None:
        module = load_torchscript(weights, "FVD", FVD_WEIGHTS_HINT)
        probe = torch.zeros(2, 3, clip_frames, size, size)
        features = ScriptedFeatures(module, probe, forward_kwargs)
        super().__init__(features.num_features, **kwargs)
        self.features, self.clip_frames, self.size = features, clip_frames, size

    def update(self, video: torch.Tensor, real: bool) -> None:
        videos = video[None] if video.ndim == 4 else video
        for v in videos:
            clips = video_clips(v, self.clip_frames, self.size)
            if clips.shape[0]:
                self.update_features(self.features(clips.to(self.device)), real)
