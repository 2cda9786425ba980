"""``motion_mask``: where a frame may differ from the reference photo, from the pose images alone.

A pixel may change when it lies within ``radius`` pixels of a pixel where the frame's pose image differs
from the reference's (a limb arrives there or leaves it; a limb that stays where it was draws the same
pixels in both); elsewhere the photo stays as it is. The edge is soft: the dilated difference is blurred
with a Gaussian of sigma ``blur`` (default ``radius / 2``). ``radius`` 0 with a ``blur``: no dilation,
the blurred difference alone. Used by
``VideoPipeline.render`` with ``detail_transfer`` and a static camera, where everything away from the
person (background, chair) is the photo's own pixels in every frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import gaussian_blur

THRESHOLD = 0.3  # a colour channel differing by more (of the [-1, 1] range, ~38 of 255) counts as changed


def motion_mask(poses: torch.Tensor, radius: float, blur: float | None = None) -> torch.Tensor:
    """poses [B, 1 + F, 3, H, W] in [-1, 1], frame 0 the reference's pose image -> float mask
    [B, F, 1, H, W] in [0, 1] (1 within ``radius`` px of where frame f's pose image differs from frame 0's,
    blurred with sigma ``blur`` px, default ``radius / 2``)."""
    if poses.ndim != 5 or poses.shape[1] < 2:
        raise ValueError(f"motion_mask: expected pose images [B, 1 + F, 3, H, W], got {tuple(poses.shape)}")
    sigma = radius / 2 if blur is None else blur
    if not (radius >= 0 and sigma >= 0 and radius + sigma > 0):
        raise ValueError(f"motion_mask: radius must be > 0 pixels, or 0 with a blur > 0; got radius {radius}, blur {blur}")
    b, n = poses.shape[:2]
    poses = poses.float()
    mask = ((poses[:, 1:] - poses[:, :1]).abs().amax(dim=2) > THRESHOLD).flatten(0, 1)[:, None].float()
    r = max(1, round(radius)) if radius > 0 else 0
    if r > 0:
        mask = F.max_pool2d(mask, kernel_size=2 * r + 1, stride=1, padding=r)  # [B F, 1, H, W]
    if sigma > 0:
        size = 2 * max(1, math.ceil(3 * sigma)) + 1  # +-3 sigma
        mask = gaussian_blur(mask, [size, size], [sigma, sigma])
    return mask.clamp(0, 1).reshape(b, n - 1, 1, *poses.shape[-2:])


def latent_motion_mask(poses: torch.Tensor, reference_pose: torch.Tensor, radius: float, downsample: int) -> torch.Tensor:
    """poses [B, F, 3, H, W] and reference_pose [B, 3, H, W] (uint8, or [-1, 1]) -> [B, F, H/d, W/d]: the
    mean of :func:`motion_mask` over each d x d latent cell (the loss weight of the moving cells)."""
    stacked = torch.cat([reference_pose[:, None].to(poses.dtype), poses], dim=1)
    if stacked.dtype == torch.uint8:
        stacked = stacked.float() / 127.5 - 1.0
    b, f = poses.shape[:2]
    mask = motion_mask(stacked, radius).flatten(0, 2)[:, None]  # [B F, 1, H, W]
    cells = F.avg_pool2d(mask, downsample)
    return cells.reshape(b, f, *cells.shape[-2:])
