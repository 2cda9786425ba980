"""Frames <-> scaled SVD latents with the (frozen) ``AutoencoderKLTemporalDecoder``, in chunks of frames.

Latents of frames are the VAE posterior sample (or mode) times ``vae.config.scaling_factor`` (0.18215);
decoding divides by it. The temporal decoder mixes the frames of one chunk, so chunks never cross two
items of a batch. Everything returned is float32; inputs are cast to the VAE's dtype.
"""

from __future__ import annotations

import torch
from torch import nn


def vae_downsample(vae: nn.Module) -> int:
    """Pixels per latent cell of ``vae``, each side: 2 ** (its widths - 1), as diffusers' ``vae_scale_factor``
    (8 for SVD's VAE; the demo VAE with three widths: 4)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def _vae_dtype(vae: nn.Module) -> torch.dtype:
    return next(vae.parameters()).dtype


def encode_frames(
    vae: nn.Module,
    frames: torch.Tensor,
    chunk_size: int = 8,
    sample: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """frames [B, F, 3, H, W] in [-1, 1] -> scaled latents [B, F, 4, H/8, W/8]."""
    if frames.ndim != 5:
        raise ValueError(f"encode_frames: expected frames [B, F, 3, H, W], got {tuple(frames.shape)}")
    b, f = frames.shape[:2]
    flat = frames.flatten(0, 1).to(_vae_dtype(vae))
    out = []
    for start in range(0, flat.shape[0], chunk_size):
        dist = vae.encode(flat[start : start + chunk_size]).latent_dist
        out.append(dist.sample(generator) if sample else dist.mode())
    latents = torch.cat(out).float() * float(vae.config.scaling_factor)
    return latents.reshape(b, f, *latents.shape[1:])


def decode_latents(vae: nn.Module, latents: torch.Tensor, chunk_size: int = 8) -> torch.Tensor:
    """scaled latents [B, F, 4, h, w] -> frames [B, F, 3, 8h, 8w] in about [-1, 1]."""
    if latents.ndim != 5:
        raise ValueError(f"decode_latents: expected latents [B, F, C, h, w], got {tuple(latents.shape)}")
    scaled = (latents / float(vae.config.scaling_factor)).to(_vae_dtype(vae))
    items = []
    for item in scaled:
        chunks = [
            vae.decode(item[s : s + chunk_size], num_frames=item[s : s + chunk_size].shape[0]).sample
            for s in range(0, item.shape[0], chunk_size)
        ]
        items.append(torch.cat(chunks).float())
    return torch.stack(items)
