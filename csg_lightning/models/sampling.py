"""The reverse-diffusion loop for one window (the caller owns the loop, diffusers owns the step)."""

from __future__ import annotations

import inspect

import torch
from torch import nn

from csg_lightning.models.diffusion import DiffusionProcess
from csg_lightning.models.guidance import guided_prediction


@torch.no_grad()
def sample_window(
    denoiser: nn.Module,
    process: DiffusionProcess,
    prefix: torch.Tensor,
    audio: torch.Tensor,
    window: int,
    num_steps: int = 25,
    guidance_scale: float = 3.5,
    generator: torch.Generator | None = None,
    sampler: str | None = None,
    eta: float = 0.0,
) -> torch.Tensor:
    """Denoise ``window`` frames following a clean prefix.

    prefix [B, P, F] clean (normalised) frames (P may be 0), audio [B, P+W, C] frame-rate audio
    features -> [B, W, F] normalised features. Initial noise is drawn on the CPU from
    ``generator`` so a seed gives the same samples on every device.
    """
    b, p, f = prefix.shape
    scheduler = process.make_sampler(sampler)
    scheduler.set_timesteps(num_steps, device=prefix.device)
    noise = torch.randn((b, window, f), generator=generator, dtype=torch.float32)
    x = noise.to(prefix.device) * scheduler.init_noise_sigma
    step_kwargs = {}
    step_params = inspect.signature(scheduler.step).parameters
    if "eta" in step_params:
        step_kwargs["eta"] = eta
    if "generator" in step_params:
        step_kwargs["generator"] = generator
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(x, t)
        model_in = torch.cat([prefix.to(x_in.dtype), x_in], dim=1)
        timesteps = torch.full((b,), int(t), device=prefix.device, dtype=torch.long)
        pred = guided_prediction(denoiser, model_in, timesteps, audio, p, guidance_scale).float()
        x = scheduler.step(pred, t, x, **step_kwargs).prev_sample
    return x
