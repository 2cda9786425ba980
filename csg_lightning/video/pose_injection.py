"""Pose injection: PoseNet features added to the output of the UNet's ``conv_in``.

Stock diffusers ``UNetSpatioTemporalConditionModel`` has no pose argument, so
:class:`PoseGuidedUNet` owns the UNet and the PoseNet and adds the pose features through a forward
hook on ``unet.conv_in`` (MimicMotion's UNet adds ``pose_latents`` at the same place, right after
``conv_in``). Its state dict therefore has exactly the keys of MimicMotion checkpoints (``unet.*``,
``pose_net.*``). The hook is registered once; the features are set only for the duration of one
``forward`` call, so a bare ``unet(...)`` call elsewhere is never affected.

Batched classifier-free guidance without copying the features: the features of ``n = B x F`` frames are
added to every group of ``n`` rows of ``conv_in``'s output (a broadcast, no copy), and
``unposed_items`` leading items of the batch get no pose at all (MimicMotion's unconditional branch,
``pose_latents=None``).
"""

from __future__ import annotations

import torch
from torch import nn

from csg_lightning.data.latent_grid import LATENT_DOWNSAMPLE
from csg_lightning.video.pose_net import PoseNet


class PoseGuidedUNet(nn.Module):
    """A diffusers ``UNetSpatioTemporalConditionModel`` (``unet``) driven by a :class:`PoseNet` (``pose_net``;
    default: one sized to the UNet) on a latent grid of ``latent_downsample`` pixels per cell (the VAE's: 8 for
    SVD's)."""

    def __init__(self, unet: nn.Module, pose_net: PoseNet | None = None,
                 latent_downsample: int = LATENT_DOWNSAMPLE) -> None:  # fmt: skip
        super().__init__()
        self.unet = unet
        channels = int(unet.config.block_out_channels[0])
        self.pose_net = pose_net if pose_net is not None else PoseNet(channels, downsample=latent_downsample)
        if self.pose_net.downsample != latent_downsample:
            raise ValueError(
                f"PoseGuidedUNet: the VAE's latents are 1/{latent_downsample} of the frame size but PoseNet "
                f"downsamples {self.pose_net.downsample}x; set model.pose_net.init_args.downsample: {latent_downsample}"
            )
        if self.pose_net.out_channels != channels:
            raise ValueError(
                f"PoseGuidedUNet: PoseNet gives {self.pose_net.out_channels} channels but the UNet's conv_in "
                f"gives block_out_channels[0] = {channels}"
            )
        self._pose_features: torch.Tensor | None = None
        self._unposed_rows, self._frames = 0, 1
        self.unet.conv_in.register_forward_hook(self._add_pose)

    def _add_pose(self, module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor | None:
        features, skip, frames = self._pose_features, self._unposed_rows, self._frames
        if features is None:
            return None
        posed = output.shape[0] - skip
        n = features.shape[0]
        if features.shape[1:] != output.shape[1:] or n == 0 or n % frames or posed % n:
            raise ValueError(
                f"PoseGuidedUNet: pose features {tuple(features.shape)} do not match conv_in output "
                f"{tuple(output.shape)} with {skip} unposed rows (pose images must be "
                f"{self.pose_net.downsample}x the latent size, one per frame)"
            )
        posed_out = output[skip:].unflatten(0, (posed // n, n)) + features.to(output.dtype)
        posed_out = posed_out.flatten(0, 1)
        return posed_out if skip == 0 else torch.cat([output[:skip], posed_out])

    def encode_pose(self, pose_images: torch.Tensor) -> torch.Tensor:
        """pose_images [B, F, 3, H, W] in [-1, 1] -> features [B * F, C, H/d, W/d] (frame-major per item; d: PoseNet's downsample).

        With a ``reference_pose`` PoseNet each frame's image is stacked with frame 0's, the reference pose
        (frame 0 of every training example with ``reference_first`` data and of every sampling tile)."""
        if pose_images.ndim != 5:
            raise ValueError(
                f"PoseGuidedUNet: expected pose images [B, F, 3, H, W], got {tuple(pose_images.shape)}"
            )
        if self.pose_net.reference_pose:
            pose_images = torch.cat([pose_images, pose_images[:, :1].expand_as(pose_images)], dim=2)
        return self.pose_net(pose_images.flatten(0, 1))

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        pose_images: torch.Tensor | None = None,
        pose_features: torch.Tensor | None = None,
        unposed_items: int = 0,
    ) -> torch.Tensor:
        """One UNet evaluation.

        sample [B, F, 8, h, w] (scaled noisy latents ++ reference latents), timestep [B] (EDM c_noise),
        encoder_hidden_states [B, 1, D] (CLIP image embedding), added_time_ids [B, 3],
        pose_images [b, F, 3, 8h, 8w] or precomputed pose_features [b * F, C, h, w] for the last
        ``B - unposed_items`` items (``b`` divides them: with ``b`` = half of them, both CFG halves share
        one copy). ``unposed_items``: leading items with no pose (``unposed_items = B``: no pose at all).
        Returns the UNet output [B, F, 4, h, w].
        """
        batch = int(sample.shape[0])
        if not 0 <= unposed_items <= batch:
            raise ValueError(f"PoseGuidedUNet: unposed_items must be in [0, {batch}], got {unposed_items}")
        if unposed_items == batch:
            pose_features = None
        elif pose_features is None:
            if pose_images is None:
                raise ValueError("PoseGuidedUNet: give pose_images or pose_features")
            pose_features = self.encode_pose(pose_images)
        frames = int(sample.shape[1])
        self._pose_features, self._unposed_rows, self._frames = pose_features, unposed_items * frames, frames
        try:
            return self.unet(sample, timestep, encoder_hidden_states, added_time_ids, return_dict=False)[0]
        finally:
            self._pose_features, self._unposed_rows = None, 0
