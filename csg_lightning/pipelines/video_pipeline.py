"""``VideoPipeline``: reference image + skeletons -> frames (Stage 2), with the models passed in.

The caller owns nothing but the inputs; the pipeline owns the loop and the scheduler (diffusers'
``EulerDiscreteScheduler``) owns the step. Per step every tile of frames (progressive latent fusion,
:mod:`~csg_lightning.video.latent_fusion`; one tile for short clips) is evaluated by the
:class:`~csg_lightning.video.pose_injection.PoseGuidedUNet` with the reference conditions and, when the
guider needs it, without them (CLIP token and reference latent zeroed, as in training's condition
dropout; the pose is always kept). The two passes are mixed by ``Guider.combine`` (the per-frame linear
ramp of :class:`~csg_lightning.pipelines.guider.LinearRampGuider`); tiles are fused and the scheduler
takes one Euler step on the whole clip. PoseNet features are computed once per tile and frame, and
shared by the conditional and unconditional pass (not duplicated for CFG).

Shapes: reference [B, 3, H, W] and poses [B, F, 3, H, W] in [-1, 1]; latents [B, F, 4, H/8, W/8].
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from csg_lightning.pipelines.guider import Guider
from csg_lightning.video.conditioning import added_time_ids, clip_image_embeds, reference_latents
from csg_lightning.video.latent_fusion import fuse_tiles, tile_indices
from csg_lightning.video.pixel_range import to_model_range, to_uint8
from csg_lightning.video.vae_latents import decode_latents


@dataclass
class VideoPipeline:
    """The Stage-2 sampler: SVD parts + PoseNet-guided UNet + guider + tiling settings."""

    net: nn.Module  # PoseGuidedUNet
    vae: nn.Module
    image_encoder: nn.Module
    scheduler: object  # diffusers EulerDiscreteScheduler (deep-copied per call: step state)
    guider: Guider
    fps: int = 7
    motion_bucket_id: int = 127
    noise_aug_strength: float = 0.0
    num_steps: int = 25
    tile_size: int | None = 16
    tile_overlap: int = 4
    vae_chunk_size: int = 8

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def encode_reference(self, reference: torch.Tensor, generator: torch.Generator | None = None):
        """reference [B, 3, H, W] in [-1, 1] -> (CLIP tokens [B, 1, D], unscaled reference latents [B, 4, h, w])."""
        clip = clip_image_embeds(self.image_encoder, reference)
        return clip, reference_latents(self.vae, reference, self.noise_aug_strength, generator)

    def time_ids(self, batch_size: int) -> torch.Tensor:
        return added_time_ids(
            batch_size, self.fps, self.motion_bucket_id, self.noise_aug_strength, self.device
        )

    def tiles(self, num_frames: int, tile_size: int | None, tile_overlap: int):
        return (
            tile_indices(num_frames, tile_size, tile_overlap)
            if tile_size
            else [torch.arange(num_frames).numpy()]
        )

    @torch.no_grad()
    def sample_latents(self, reference: torch.Tensor, poses: torch.Tensor, num_steps: int | None = None,
                       tile_size: int | None = -1, tile_overlap: int | None = None, seed: int = 0,
                       guider: Guider | None = None) -> torch.Tensor:  # fmt: skip
        """reference [B, 3, H, W], poses [B, F, 3, H, W] (both in [-1, 1]) -> scaled latents [B, F, 4, h, w]
        (float32). Unset arguments take the pipeline's (``tile_size=None``: no tiling)."""
        device = self.device
        generator = torch.Generator("cpu").manual_seed(seed)
        clip, ref = self.encode_reference(reference.to(device), generator)
        tile_size = self.tile_size if tile_size == -1 else tile_size
        tile_overlap = self.tile_overlap if tile_overlap is None else tile_overlap
        return self.denoise(poses.to(device), clip, ref, self.time_ids(len(reference)), num_steps or self.num_steps,
                            guider or self.guider, tile_size, tile_overlap, generator)  # fmt: skip

    @torch.no_grad()
    def denoise(self, poses, clip, ref, time_ids, num_steps, guider, tile_size, tile_overlap, generator):
        """The Euler loop from pure noise (see the module docstring)."""
        scheduler = copy.deepcopy(self.scheduler)
        device, dtype = poses.device, next(self.net.parameters()).dtype
        b, f = poses.shape[:2]
        scheduler.set_timesteps(num_steps, device=device)
        noise = torch.randn((b, f, 4, *ref.shape[-2:]), generator=generator, device=generator.device)
        latents = noise.to(device) * scheduler.init_noise_sigma
        guided = guider.needs_uncond
        clip_in = (torch.cat([torch.zeros_like(clip), clip]) if guided else clip).to(dtype)
        ref_in = torch.cat([torch.zeros_like(ref), ref]) if guided else ref
        ids_in = (torch.cat([time_ids, time_ids]) if guided else time_ids).to(dtype)
        tiles = self.tiles(f, tile_size, tile_overlap)
        by_tile = {tuple(idx): self._pose_features(poses[:, torch.as_tensor(idx, device=device)], dtype)
                   for idx in tiles}  # fmt: skip
        for t in scheduler.timesteps:
            model_input = scheduler.scale_model_input(latents, t)

            def predict(idx, model_input=model_input, t=t, by_tile=by_tile):
                x = model_input[:, torch.as_tensor(idx, device=device)]
                features = by_tile[tuple(idx)]
                if guided:
                    x, features = torch.cat([x, x]), torch.cat([features, features])
                refs = ref_in[:, None].expand(-1, len(idx), -1, -1, -1)
                sample = torch.cat([x, refs], dim=2).to(dtype)
                timestep = t.reshape(1).to(device).expand(sample.shape[0])
                out = self.net(
                    sample, timestep, clip_in, ids_in, pose_features=features.flatten(0, 1)
                ).float()
                if not guided:
                    return out
                uncond, cond = out.chunk(2)
                return guider.combine(cond, uncond, frame_dim=1, frames=idx, num_frames=f)

            latents = scheduler.step(fuse_tiles(predict, f, tiles), t, latents).prev_sample
        return latents.float()

    def _pose_features(self, poses: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """poses [B, n, 3, H, W] -> PoseNet features [B, n, C, h, w] (once per tile, shared by both CFG passes)."""
        features = self.net.encode_pose(poses.to(dtype))
        return features.view(poses.shape[0], poses.shape[1], *features.shape[1:])

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """scaled latents [B, F, 4, h, w] -> uint8 frames [B, F, H, W, 3]."""
        return to_uint8(decode_latents(self.vae, latents, self.vae_chunk_size)).permute(0, 1, 3, 4, 2)

    @torch.no_grad()
    def __call__(self, reference: torch.Tensor, poses: torch.Tensor, reference_pose: torch.Tensor | None = None,
                 **options) -> torch.Tensor:  # fmt: skip
        """uint8 reference [B, 3, H, W] + uint8 pose images [B, F, 3, H, W] (+ the reference's own pose image
        [B, 3, H, W]) -> uint8 frames [B, F, H, W, 3]. With ``reference_pose`` it is frame 0 of the denoised
        clip (as at inference) and dropped. ``options``: see :meth:`sample_latents`."""
        device = self.device
        reference, poses = to_model_range(reference).to(device), to_model_range(poses).to(device)
        if reference_pose is not None:
            poses = torch.cat([to_model_range(reference_pose).to(device)[:, None], poses], dim=1)
        latents = self.sample_latents(reference, poses, **options)
        return self.decode(latents[:, 1:] if reference_pose is not None else latents)
