"""Classifier-free guidance with the conditional and unconditional passes in one batched forward."""

from __future__ import annotations

import torch
from torch import nn


def guided_prediction(
    denoiser: nn.Module,
    x: torch.Tensor,
    timesteps: torch.Tensor,
    audio: torch.Tensor,
    num_prefix: int,
    guidance_scale: float,
) -> torch.Tensor:
    """uncond + s * (cond - uncond) of the denoiser output.

    x [B, P+W, F], timesteps [B], audio [B, P+W, C] -> [B, W, F]. The conditional (audio) and
    unconditional (null audio) inputs are stacked into one batch of 2B. With s == 1 the
    guided prediction is the conditional one, so only the conditional half is run.
    """
    b = x.shape[0]
    if guidance_scale == 1.0:
        drop = torch.zeros(b, dtype=torch.bool, device=x.device)
        return denoiser(x, timesteps, audio, drop, num_prefix)
    drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(x.device)
    out = denoiser(
        torch.cat([x, x]), torch.cat([timesteps, timesteps]), torch.cat([audio, audio]), drop, num_prefix
    )
    cond, uncond = out.chunk(2)
    return uncond + guidance_scale * (cond - uncond)
