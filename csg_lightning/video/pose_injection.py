"""Pose injection: PoseNet features added to the output of the UNet's ``conv_in``.

Stock diffusers ``UNetSpatioTemporalConditionModel`` has no pose argument, so
:class:`PoseGuidedUNet` owns the UNet and the PoseNet and adds the pose features through a forward
hook on ``unet.conv_in``. Its state dict therefore has exactly the keys of MimicMotion checkpoints
(``unet.*``, ``pose_net.*``). The hook is registered once; the features are set only for the
duration of one ``forward`` call, so a bare ``unet(...)`` call elsewhere is never affected.
"""

from __future__ import annotations

import torch
from torch import nn

from csg_lightning.video.pose_net import PoseNet


class PoseGuidedUNet(nn.Module):
    """A diffusers ``UNetSpatioTemporalConditionModel`` (``unet``) driven by a :class:`PoseNet` (``pose_net``)."""

    def __init__(self, unet: nn.Module, pose_net: PoseNet | None = None) -> None:
        super().__init__()
        self.unet = unet
        channels = int(unet.config.block_out_channels[0])
        self.pose_net = pose_net if pose_net is not None else PoseNet(channels)
        if self.pose_net.out_channels != channels:
            raise ValueError(
                f"PoseGuidedUNet: PoseNet gives {self.pose_net.out_channels} channels but the UNet's conv_in "
                f"gives block_out_channels[0] = {channels}"
            )
        self._pose_features: torch.Tensor | None = None
        self.unet.conv_in.register_forward_hook(self._add_pose)

    def _add_pose(self, module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor | None:
        features = self._pose_features
        if features is None:
            return None
        if features.shape != output.shape:
            raise ValueError(
                f"PoseGuidedUNet: pose features {tuple(features.shape)} do not match conv_in output "
                f"{tuple(output.shape)} (pose images must be 8x the latent size, one per frame)"
            )
        return output + features.to(output.dtype)

    def encode_pose(self, pose_images: torch.Tensor) -> torch.Tensor:
        """pose_images [B, F, 3, H, W] in [-1, 1] -> features [B * F, C, H/8, W/8] (frame-major per item)."""
        if pose_images.ndim != 5:
            raise ValueError(
                f"PoseGuidedUNet: expected pose images [B, F, 3, H, W], got {tuple(pose_images.shape)}"
            )
        return self.pose_net(pose_images.flatten(0, 1))

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        pose_images: torch.Tensor | None = None,
        pose_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One UNet evaluation.

        sample [B, F, 8, h, w] (scaled noisy latents ++ reference latents), timestep [B] (EDM c_noise),
        encoder_hidden_states [B, 1, D] (CLIP image embedding), added_time_ids [B, 3],
        pose_images [B, F, 3, 8h, 8w] or precomputed pose_features [B * F, C, h, w].
        Returns the UNet output [B, F, 4, h, w].
        """
        if pose_features is None:
            if pose_images is None:
                raise ValueError("PoseGuidedUNet: give pose_images or pose_features")
            pose_features = self.encode_pose(pose_images)
        self._pose_features = pose_features
        try:
            return self.unet(sample, timestep, encoder_hidden_states, added_time_ids, return_dict=False)[0]
        finally:
            self._pose_features = None
