"""Reference-image conditioning of the SVD UNet and its added time ids.

- CLIP path: the reference image (values in [-1, 1]) is resized to the encoder's input size
  (``resize="antialias"``: torch's antialiased bicubic, then clamped; ``resize="svd"``: SVD's / MimicMotion's
  Gaussian blur + bicubic with ``align_corners=True``, diffusers' ``_resize_with_antialiasing``, no clamp),
  mapped to [0, 1], normalised with CLIP's mean/std, and its projected
  ``image_embeds`` [B, D] become the single cross-attention token [B, 1, D].
- VAE path: the reference plus ``noise_aug_strength`` x Gaussian noise is encoded and the latent
  distribution's mode is taken, WITHOUT the 0.18215 scale; it is repeated over frames and concatenated
  on channels after the scaled noisy latents (UNet input channels 4 + 4 = 8).
- Added time ids, in SVD's order: ``[fps - 1, motion_bucket_id, noise_aug_strength]``.
- Classifier-free guidance drops the CLIP embedding and the reference latent together (zeros).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _dtype_of(module: nn.Module) -> torch.dtype:
    return next(module.parameters()).dtype


def clip_image_embeds(image_encoder: nn.Module, images: torch.Tensor, resize: str = "antialias") -> torch.Tensor:
    """images [B, 3, H, W] in [-1, 1] -> CLIP image embedding tokens [B, 1, D] (float32)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"clip_image_embeds: expected images [B, 3, H, W], got {tuple(images.shape)}")
    size = int(image_encoder.config.image_size)
    if resize == "svd":
        from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import (
            _resize_with_antialiasing,
        )

        x = (_resize_with_antialiasing(images.float(), (size, size)) + 1) / 2
    elif resize == "antialias":
        x = F.interpolate(images.float(), size=(size, size), mode="bicubic", align_corners=False, antialias=True)
        x = (x.clamp(-1, 1) + 1) / 2
    else:
        raise ValueError(f"clip_image_embeds: resize must be 'antialias' or 'svd', got {resize!r}")
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
    x = ((x - mean) / std).to(_dtype_of(image_encoder))
    return image_encoder(pixel_values=x).image_embeds.float()[:, None]


def reference_latents(
    vae: nn.Module,
    images: torch.Tensor,
    noise_aug_strength: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """images [B, 3, H, W] in [-1, 1] -> unscaled latent mode [B, 4, H/8, W/8] (float32)."""
    x = images.float()
    if noise_aug_strength > 0:
        noise = torch.randn(x.shape, generator=generator, device=generator.device if generator else x.device)
        x = x + noise_aug_strength * noise.to(x.device)
    return vae.encode(x.to(_dtype_of(vae))).latent_dist.mode().float()


def added_time_ids(
    batch_size: int,
    fps: int = 7,
    motion_bucket_id: int = 127,
    noise_aug_strength: float = 0.0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """[B, 3] float32: ``[fps - 1, motion_bucket_id, noise_aug_strength]`` per item."""
    ids = torch.tensor([fps - 1, motion_bucket_id, noise_aug_strength], dtype=torch.float32, device=device)
    return ids.expand(batch_size, 3).clone()


def drop_conditions(
    clip_embeds: torch.Tensor, ref_latents: torch.Tensor, drop: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero the CLIP tokens [B, 1, D] and reference latents [B, ...] of items where ``drop`` [B] is True."""
    keep = (~drop).to(clip_embeds.dtype)
    return clip_embeds * keep.view(-1, 1, 1), ref_latents * keep.view(-1, *([1] * (ref_latents.ndim - 1)))
