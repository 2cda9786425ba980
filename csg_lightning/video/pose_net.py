"""PoseNet: a small convolutional encoder of rendered pose images into UNet ``conv_in`` features.

Eight 3x3/4x4 convolutions with SiLU (3->3, 3->16 s2, 16->16, 16->32 s2, 32->32, 32->64 s2, 64->64,
64->128), then a 1x1 projection 128->C (C = the UNet's ``block_out_channels[0]``, 320 for SVD) times a
learnable scalar initialised to 2.0. Convolutions are He-normal initialised with zero bias; the final
projection is zero-initialised, so an untrained PoseNet outputs zeros and leaves the UNet unchanged
(``zero_init=False``: He-normal like the rest, for a UNet trained from scratch: a zero projection passes no
gradient to the convolutions until it has grown, which costs a short CPU training most of its steps).
Downsamples exactly 8x (H, W must be divisible by 8), MimicMotion's grid; ``downsample`` 4 or 2 (not
MimicMotion's: for a VAE at 1/4 or 1/2 size, e.g. the demo's 16 x 16 latent) turns the last one or two
stride-2 convolutions into 3x3 stride-1 ones. About 0.2M parameters for C = 320.

Parameter names (``conv_layers.{0,2,...,14}``, ``final_proj``, ``scale``) follow MimicMotion's released
checkpoints so they load without renaming.

``reference_pose=True`` (not MimicMotion's: its first convolution then takes 6 channels, so MimicMotion
weights do not load) reads each frame's pose image stacked with the reference pose image, so the network
sees directly which limbs moved relative to the reference frame. :class:`~csg_lightning.video.pose_injection.
PoseGuidedUNet` does the stacking: the reference is frame 0 of every training example (``reference_first``
data) and of every sampling tile (tiles all start with frame 0, as MimicMotion's).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from csg_lightning.data.latent_grid import LATENT_DOWNSAMPLE

# (in, out, kernel, stride) of the eight convolutions; padding 1 each.
_LAYERS = (
    (3, 3, 3, 1), (3, 16, 4, 2), (16, 16, 3, 1), (16, 32, 4, 2),
    (32, 32, 3, 1), (32, 64, 4, 2), (64, 64, 3, 1), (64, 128, 3, 1),
)  # fmt: skip


class PoseNet(nn.Module):
    """Pose images [N, 3, H, W] (values in [-1, 1]; [N, 6, H, W] with ``reference_pose``: the frame's pose
    image, then the reference's) -> features [N, C, H/d, W/d], d = ``downsample`` (8: MimicMotion's)."""

    def __init__(self, out_channels: int = 320, init_scale: float = 2.0, reference_pose: bool = False,
                 zero_init: bool = True, downsample: int = LATENT_DOWNSAMPLE) -> None:  # fmt: skip
        super().__init__()
        if downsample not in (2, 4, 8):
            raise ValueError(f"PoseNet: downsample must be 2, 4 or 8 (the VAE's latent grid), got {downsample}")
        self.reference_pose, self.zero_init = bool(reference_pose), bool(zero_init)
        self.in_channels = 6 if self.reference_pose else 3
        self.downsample = int(downsample)
        strided = [i for i, layer in enumerate(_LAYERS) if layer[3] == 2]
        kept = strided[: self.downsample.bit_length() - 1]  # 8: all three, 4: the first two, 2: the first
        layers: list[nn.Module] = []
        for i, (c_in, c_out, k, s) in enumerate(_LAYERS):
            c_in = self.in_channels if i == 0 else c_in
            if s == 2 and i not in kept:
                k, s = 3, 1
            layers += [nn.Conv2d(c_in, c_out, kernel_size=k, stride=s, padding=1), nn.SiLU()]
        self.conv_layers = nn.Sequential(*layers)
        self.final_proj = nn.Conv2d(_LAYERS[-1][1], out_channels, kernel_size=1)
        self.scale = nn.Parameter(torch.full((1,), float(init_scale)))
        self.out_channels = out_channels
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """He-normal convolutions with zero bias; the final 1x1 projection all zeros (``zero_init``), else
        He-normal as well."""
        for m in self.conv_layers:
            if isinstance(m, nn.Conv2d):
                fan_in = m.kernel_size[0] * m.kernel_size[1] * m.in_channels
                m.weight.normal_(0.0, math.sqrt(2.0 / fan_in))
                m.bias.zero_()
        self.final_proj.bias.zero_()
        if self.zero_init:
            self.final_proj.weight.zero_()
        else:
            self.final_proj.weight.normal_(0.0, math.sqrt(2.0 / self.final_proj.in_channels))

    def forward(self, pose_images: torch.Tensor) -> torch.Tensor:
        if pose_images.ndim != 4 or pose_images.shape[1] != self.in_channels:
            what = "pose ++ reference pose images [N, 6, H, W]" if self.reference_pose else "pose images [N, 3, H, W]"
            raise ValueError(f"PoseNet: expected {what}, got {tuple(pose_images.shape)}")
        h, w = pose_images.shape[-2:]
        if h % self.downsample or w % self.downsample:
            raise ValueError(f"PoseNet: H and W must be divisible by {self.downsample}, got {h} x {w}")
        return self.final_proj(self.conv_layers(pose_images)) * self.scale
