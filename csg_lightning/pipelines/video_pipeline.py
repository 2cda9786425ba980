"""``VideoPipeline``: reference image + skeletons -> frames (Stage 2), with the models passed in.

The caller owns nothing but the inputs; the pipeline owns the loop and the scheduler (diffusers'
``EulerDiscreteScheduler``) owns the step. Per step every tile of frames (progressive latent fusion,
:mod:`~csg_lightning.video.latent_fusion`, MimicMotion's tiles and weights; one tile for short clips) is
evaluated by the :class:`~csg_lightning.video.pose_injection.PoseGuidedUNet` with the reference conditions
and, when the guider needs it, without them (CLIP token and reference latent zeroed). The two passes are
mixed by ``Guider.combine`` (the per-frame linear ramp of
:class:`~csg_lightning.pipelines.guider.LinearRampGuider`, over the whole clip as MimicMotion's); tiles
are fused and the scheduler takes one Euler step on the whole clip.

Memory: PoseNet features are computed per tile inside the step (never for the whole clip: ~5 GB in bf16
for 35 s at 576x1024) and one copy serves both CFG passes; pose images stay where the caller keeps them
(uint8 on the CPU from :meth:`VideoPipeline.__call__`) and only a tile's are moved to the device. The two passes run one after the other
(``cfg_batch=False``, as MimicMotion: half the activation memory) or as one batch of two
(``cfg_batch=True``: faster for small tiles on a GPU; the features are broadcast, not copied).

Options where MimicMotion (``Tencent/MimicMotion``, ``pipeline_mimicmotion.py``) and ours differ
(``tests/test_mimicmotion_parity.py`` shows the same latents with MimicMotion's settings):

- ``uncond_pose``: True (ours) keeps the pose in the unconditional pass; False (MimicMotion) gives it
  none (``pose_latents=None``). Ours is the default for our models because our training's condition
  dropout drops only the CLIP token and reference latent, never the pose, so "no pose" is an input the
  model never saw; :class:`~csg_lightning.video.video_generator.VideoGenerator` picks False when
  MimicMotion weights are loaded.
- ``initial_noise``: "independent" (ours) draws every frame's noise; "mimicmotion" reproduces its
  draws from the same seed: the noise-augmentation noise is always drawn first (even at strength 0),
  then one tile of noise [B, tile_size, 4, h, w] repeated with period ``tile_size`` (frames ``k`` and
  ``k + tile_size`` start equal; ours keeps them independent, which fused tiles need no less).
- ``clip_resize``: "antialias" (ours, what our models were trained with) or "svd" (SVD's/MimicMotion's
  resize of the reference for CLIP; use it with SVD/MimicMotion weights).
- Kept from ours: guidance combined per tile before fusion (MimicMotion fuses both passes, then
  combines; equal by linearity, one accumulator instead of two); fusion accumulated in float32 under
  bf16; a scale of 1 runs one pass (MimicMotion's indexing breaks without CFG); clips shorter than a
  tile run as one tile.

Shapes: reference [B, 3, H, W] and poses [B, F, 3, H, W] in [-1, 1]; latents [B, F, C, H/8, W/8] (C: the VAE's latent channels, 4 for SVD).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from csg_lightning.pipelines.guider import Guider
from csg_lightning.video.conditioning import added_time_ids, clip_image_embeds, reference_latents
from csg_lightning.video.latent_fusion import fuse_tiles, tile_indices
from csg_lightning.video.motion_mask import motion_mask
from csg_lightning.video.pixel_range import to_model_range, to_uint8
from csg_lightning.video.vae_latents import decode_latents

INITIAL_NOISE = ("independent", "mimicmotion")


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
    tile_overlap: int = 4  # MimicMotion's meaning: frames two tiles share, frame 0 included
    vae_chunk_size: int = 8
    uncond_pose: bool = True
    cfg_batch: bool = False
    initial_noise: str = "independent"
    clip_resize: str = "antialias"
    reference_residual: float | None = None  # see VideoGenerator: latents = reference latent + s x sample
    detail_transfer: bool = False  # see render(): frames = reference photo + D(z_t) - D(z_0)
    motion_mask_radius: float | None = None  # see render(): the change only near where the skeleton moved (pixels)
    motion_mask_blur: float | None = None  # the mask's Gaussian sigma (pixels; None: radius / 2)

    def __post_init__(self) -> None:
        if self.initial_noise not in INITIAL_NOISE:
            raise ValueError(
                f"VideoPipeline: initial_noise must be one of {INITIAL_NOISE}, got {self.initial_noise!r}"
            )
        if self.motion_mask_radius is not None and not (self.detail_transfer and self.motion_mask_radius >= 0):
            raise ValueError(
                f"VideoPipeline: motion_mask_radius={self.motion_mask_radius} needs detail_transfer and a radius >= 0 "
                "pixels (it masks the change rendered onto the photo); set it to null otherwise"
            )
        if self.motion_mask_blur is not None and self.motion_mask_radius is None:
            raise ValueError("VideoPipeline: motion_mask_blur needs motion_mask_radius (the mask it blurs)")
        if self.motion_mask_radius == 0 and not (self.motion_mask_blur or 0) > 0:
            raise ValueError("VideoPipeline: motion_mask_radius 0 needs a motion_mask_blur > 0 (else nothing may change)")

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @torch.no_grad()
    def encode_reference(self, reference: torch.Tensor, generator: torch.Generator | None = None):
        """reference [B, 3, H, W] in [-1, 1] -> (CLIP tokens [B, 1, D], unscaled reference latents [B, 4, h, w])."""
        clip = clip_image_embeds(self.image_encoder, reference, resize=self.clip_resize)
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
                       guider: Guider | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """reference [B, 3, H, W], poses [B, F, 3, H, W] (both in [-1, 1]; poses may also be uint8, on any
        device: each tile is moved and converted when it is used) -> scaled latents [B, F, 4, h, w]
        (float32). Unset arguments take the pipeline's (``tile_size=None``: no tiling). ``noise``: the
        initial noise [B, F, 4, h, w] (before ``init_noise_sigma``), default drawn from ``seed``."""
        device = self.device
        generator = torch.Generator("cpu").manual_seed(seed)
        if self.initial_noise == "mimicmotion" and self.noise_aug_strength == 0:
            torch.randn(reference.shape, generator=generator)  # MimicMotion always draws it
        clip, ref = self.encode_reference(reference.to(device), generator)
        tile_size = self.tile_size if tile_size == -1 else tile_size
        tile_overlap = self.tile_overlap if tile_overlap is None else tile_overlap
        if noise is None:
            noise = self.draw_noise(generator, poses.shape[:2], ref.shape[-3:], tile_size)
        sample = self.denoise(poses, clip, ref, self.time_ids(len(reference)), num_steps or self.num_steps,
                              guider or self.guider, tile_size, tile_overlap, noise)  # fmt: skip
        return self.from_residual(sample, ref)

    def to_residual(self, latents: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """Scaled latents [B, F, C, h, w] -> what the model diffuses: themselves, or with ``reference_residual``
        s, (latents - scaled reference latent) / s (``ref``: unscaled reference latents [B, C, h, w])."""
        if self.reference_residual is None:
            return latents
        return (latents - self._reference_base(ref, latents.device)) / float(self.reference_residual)

    def from_residual(self, sample: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`to_residual`: a denoised sample -> scaled latents [B, F, C, h, w]."""
        if self.reference_residual is None:
            return sample
        return sample * float(self.reference_residual) + self._reference_base(ref, sample.device)

    def _reference_base(self, ref: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Unscaled reference latents [B, C, h, w] -> scaled float32 [B, 1, C, h, w] on ``device``."""
        return ref.to(device, torch.float32)[:, None] * float(self.vae.config.scaling_factor)

    def draw_noise(
        self, generator: torch.Generator, batch_frames, latent_shape, tile_size: int | None
    ) -> torch.Tensor:
        """float32 [B, F, C, h, w] from ``generator``; ``latent_shape`` (C, h, w): a reference latent's (C = the
        VAE's latent channels, 4 for SVD). See ``initial_noise`` in the module docstring."""
        b, f = (int(n) for n in batch_frames)
        period = tile_size if self.initial_noise == "mimicmotion" and tile_size else f
        noise = torch.randn((b, period, *latent_shape), generator=generator, device=generator.device)
        return noise.repeat(1, f // period + 1, 1, 1, 1)[:, :f] if period != f else noise

    @torch.no_grad()
    def denoise(self, poses, clip, ref, time_ids, num_steps, guider, tile_size, tile_overlap, noise):
        """The Euler loop from ``noise`` (see the module docstring)."""
        scheduler = copy.deepcopy(self.scheduler)
        device, dtype = self.device, next(self.net.parameters()).dtype
        b, f = poses.shape[:2]
        if tuple(noise.shape) != (b, f, *ref.shape[-3:]):
            raise ValueError(
                f"VideoPipeline: noise must be {(b, f, *ref.shape[-3:])}, got {tuple(noise.shape)}"
            )
        scheduler.set_timesteps(num_steps, device=device)
        latents = noise.to(device, torch.float32) * scheduler.init_noise_sigma
        tiles = self.tiles(f, tile_size, tile_overlap)
        guided = guider.needs_uncond
        cond = (clip.to(dtype), ref, time_ids.to(dtype))
        uncond = (torch.zeros_like(cond[0]), torch.zeros_like(ref), cond[2])
        for t in scheduler.timesteps:
            model_input = scheduler.scale_model_input(latents, t)

            def predict(idx, model_input=model_input, t=t):
                index = torch.as_tensor(idx, device=device)
                features = self._pose_features(poses[:, torch.as_tensor(idx, device=poses.device)], dtype)
                x = model_input[:, index]
                if not guided:
                    return self._unet(x, t, cond, features, 0)
                if self.cfg_batch:
                    both = tuple(torch.cat([u, c]) for u, c in zip(uncond, cond, strict=True))
                    out_u, out_c = self._unet(
                        torch.cat([x, x]), t, both, features, 0 if self.uncond_pose else b
                    ).chunk(2)
                else:
                    out_u = self._unet(x, t, uncond, features, 0 if self.uncond_pose else b)
                    out_c = self._unet(x, t, cond, features, 0)
                return guider.combine(out_c, out_u, frame_dim=1, frames=idx, num_frames=f)

            latents = scheduler.step(fuse_tiles(predict, f, tiles), t, latents).prev_sample
        return latents.float()

    def _unet(self, x, t, conditions, features, unposed_items) -> torch.Tensor:
        """One UNet pass on scaled latents x [B', n, 4, h, w] with (CLIP, reference latent, time ids) ->
        float32 [B', n, 4, h, w]; ``features`` serve the last ``B' - unposed_items`` items."""
        clip, ref, ids = conditions
        dtype = clip.dtype
        sample = torch.cat([x, ref[:, None].expand(-1, x.shape[1], -1, -1, -1)], dim=2).to(dtype)
        timestep = t.reshape(1).to(x.device).expand(sample.shape[0])
        return self.net(
            sample, timestep, clip, ids, pose_features=features, unposed_items=unposed_items
        ).float()

    def _pose_features(self, poses: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """poses of one tile [B, n, 3, H, W] ([-1, 1] or uint8) -> PoseNet features [B * n, C, h, w], computed
        inside the step (one tile at a time; one copy for both CFG passes)."""
        poses = poses.to(self.device)
        if poses.dtype == torch.uint8:
            poses = to_model_range(poses)
        return self.net.encode_pose(poses.to(dtype))

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """scaled latents [B, F, 4, h, w] -> uint8 frames [B, F, H, W, 3]."""
        return to_uint8(decode_latents(self.vae, latents, self.vae_chunk_size)).permute(0, 1, 3, 4, 2)

    @torch.no_grad()
    def render(self, latents: torch.Tensor, reference: torch.Tensor,
               poses: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """latents [B, 1 + F, C, h, w] whose frame 0 is the reference's slot, reference [B, 3, H, W] in [-1, 1]
        (+ the pose images [B, 1 + F, 3, H, W] in [-1, 1] they were sampled from) -> uint8 frames [B, F, H, W,
        3] of frames 1..F.

        ``detail_transfer`` off: the decoded latents. On: reference + D(z_t) - D(z_0), with z_0 the sampled
        latent of the reference's own slot. What the decoder and the model get wrong in every frame alike
        (the detail a small VAE loses, a colour shift, the blur of an undertrained model) cancels, the photo's
        detail is kept, and only what moved relative to frame 0 changes the photo. For a static camera (the
        demo, talking-head footage); where a limb leaves a detailed region the photo's detail stays behind
        as a faint ghost.

        ``motion_mask_radius`` r (with detail transfer): the change D(z_t) - D(z_0) is applied only within about r
        pixels (softened by a Gaussian of sigma ``motion_mask_blur``) of where frame t's pose image differs from
        the reference's
        (:func:`~csg_lightning.video.motion_mask.motion_mask`, from ``poses``); elsewhere every frame keeps the
        photo's pixels, not the small error the model makes there."""
        if not self.detail_transfer:
            return self.decode(latents[:, 1:])
        decoded = decode_latents(self.vae, latents, self.vae_chunk_size)
        moved = decoded[:, 1:] - decoded[:, :1]
        if self.motion_mask_radius is not None:
            if poses is None:
                raise ValueError(
                    "VideoPipeline.render: motion_mask_radius needs the pose images the latents were sampled from"
                )
            if poses.dtype == torch.uint8:
                poses = to_model_range(poses)
            mask = motion_mask(poses.to(moved.device), float(self.motion_mask_radius), self.motion_mask_blur)
            moved = moved * mask.to(moved.dtype)
        return to_uint8(reference.to(moved.device, moved.dtype)[:, None] + moved).permute(0, 1, 3, 4, 2)

    @torch.no_grad()
    def __call__(self, reference: torch.Tensor, poses: torch.Tensor, reference_pose: torch.Tensor | None = None,
                 **options) -> torch.Tensor:  # fmt: skip
        """uint8 reference [B, 3, H, W] + uint8 pose images [B, F, 3, H, W] (+ the reference's own pose image
        [B, 3, H, W]; float 0..255 accepted) -> uint8 frames [B, F, H, W, 3]. Pose images stay on their
        device. With ``reference_pose`` it is frame 0 of the denoised
        clip (as at inference) and dropped. ``options``: see :meth:`sample_latents`."""
        if reference_pose is None and self.detail_transfer:  # checked before sampling, not after
            raise ValueError("VideoPipeline: detail_transfer needs reference_pose (frame 0 = the reference's slot)")
        reference = to_model_range(reference).to(self.device)
        if reference_pose is not None:
            poses = torch.cat([reference_pose.to(poses.device, poses.dtype)[:, None], poses], dim=1)
        if poses.dtype != torch.uint8:  # float 0..255; uint8 stays uint8 (converted tile by tile)
            poses = to_model_range(poses)
        latents = self.sample_latents(reference, poses, **options)
        if reference_pose is None:  # frame 0 is a driving frame: every frame is an output
            return self.decode(latents)
        return self.render(latents, reference, poses)
