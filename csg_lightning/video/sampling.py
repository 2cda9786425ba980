"""The Euler sampling loop of the pose-guided video model (diffusers ``EulerDiscreteScheduler``).

Per step: every tile of frames (see :mod:`~csg_lightning.video.latent_fusion`; one tile for short
clips) is evaluated by the :class:`~csg_lightning.video.pose_injection.PoseGuidedUNet` with and without
the reference conditions (CLIP embedding and reference latent zeroed, as in training's condition
dropout; the pose is always kept); the two outputs are mixed per frame with a guidance scale that
rises linearly from ``min_guidance`` (first frame) to ``max_guidance`` (last frame); tiles are fused
and the scheduler takes one Euler step on the whole clip.
"""

from __future__ import annotations

import copy

import torch

from csg_lightning.video.latent_fusion import fuse_tiles, tile_indices
from csg_lightning.video.pose_injection import PoseGuidedUNet


def frame_guidance_scales(num_frames: int, min_guidance: float, max_guidance: float) -> torch.Tensor:
    """float32 [num_frames], linear from ``min_guidance`` to ``max_guidance``."""
    return (
        torch.linspace(min_guidance, max_guidance, num_frames)
        if num_frames > 1
        else torch.tensor([max_guidance])
    )


@torch.no_grad()
def sample_latents(
    net: PoseGuidedUNet,
    scheduler,
    pose_images: torch.Tensor,
    clip_embeds: torch.Tensor,
    ref_latents: torch.Tensor,
    time_ids: torch.Tensor,
    num_steps: int = 25,
    min_guidance: float = 1.0,
    max_guidance: float = 3.0,
    tile_size: int | None = None,
    tile_overlap: int = 4,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Denoise a clip from pure noise.

    pose_images [B, F, 3, H, W] in [-1, 1]; clip_embeds [B, 1, D]; ref_latents [B, 4, H/8, W/8]
    (unscaled VAE mode); time_ids [B, 3]. ``tile_size`` None: the whole clip at once. ``dtype``: the
    UNet's compute dtype for its inputs (default: its parameters'). Returns scaled latents [B, F, 4, h, w]
    (float32).
    """
    scheduler = copy.deepcopy(scheduler)  # step state is per call
    device = pose_images.device
    b, f = pose_images.shape[:2]
    dtype = dtype or next(net.parameters()).dtype
    h, w = ref_latents.shape[-2:]
    scheduler.set_timesteps(num_steps, device=device)
    noise = torch.randn((b, f, 4, h, w), generator=generator, device=generator.device if generator else "cpu")
    latents = noise.to(device) * scheduler.init_noise_sigma

    guided = max(min_guidance, max_guidance) != 1.0 or min(min_guidance, max_guidance) != 1.0
    scales = frame_guidance_scales(f, min_guidance, max_guidance).to(device).view(1, f, 1, 1, 1)
    pose_features = net.encode_pose(pose_images.to(dtype))
    pose_features = pose_features.view(b, f, *pose_features.shape[1:])
    if guided:
        clip_in = torch.cat([torch.zeros_like(clip_embeds), clip_embeds]).to(dtype)
        ref_in = torch.cat([torch.zeros_like(ref_latents), ref_latents])
        ids_in = torch.cat([time_ids, time_ids])
        pose_in = torch.cat([pose_features, pose_features])
    else:
        clip_in, ref_in, ids_in, pose_in = clip_embeds.to(dtype), ref_latents, time_ids, pose_features
    tiles = tile_indices(f, tile_size, tile_overlap) if tile_size else [torch.arange(f).numpy()]

    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(latents, t)

        def predict(idx, model_input=model_input, t=t):
            n, idx = len(idx), torch.as_tensor(idx, device=device)
            x = model_input[:, idx]
            if guided:
                x = torch.cat([x, x])
            refs = ref_in[:, None].expand(-1, n, -1, -1, -1)
            sample = torch.cat([x, refs], dim=2).to(dtype)
            timestep = t.reshape(1).to(device).expand(sample.shape[0])
            out = net(
                sample, timestep, clip_in, ids_in.to(dtype), pose_features=pose_in[:, idx].flatten(0, 1)
            ).float()
            if guided:
                uncond, cond = out.chunk(2)
                out = uncond + scales[:, idx] * (cond - uncond)
            return out

        model_output = fuse_tiles(predict, f, tiles)
        latents = scheduler.step(model_output, t, latents).prev_sample
    return latents.float()
