"""``EDMLoss``: Stage 2's training objective as one object (sigma sampling, EDM weighting, hand amplification).

x_sigma = x0 + sigma * eps with log-normal sigma (``p_mean``, ``p_std``); the loss is
``mean(lambda(sigma) * (1 + (hand_amplification - 1) * hand mask) * (1 + (motion_amplification - 1) *
motion mask) * (D(x_sigma) - x0)^2)`` with lambda and the preconditioning of :mod:`~csg_lightning.video.edm`.
The motion mask (latent cells where the frame's skeleton differs from the reference's, from
:func:`~csg_lightning.video.motion_mask.latent_motion_mask`) puts the weight where the pose must be read:
elsewhere a copy of the reference is right. The module passes in a denoising
function, so this object holds only the strategy (given as a ``class_path`` in the experiment YAML).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from csg_lightning.video.edm import append_dims, edm_loss_weight, sample_sigmas


def hand_loss_weight(mask: torch.Tensor, amplification: float = 10.0) -> torch.Tensor:
    """Per-element loss weight ``1 + (amplification - 1) * mask`` (same shape as mask)."""
    return 1.0 + (amplification - 1.0) * mask


class EDMLoss:
    """EDM denoising loss of video latents [B, F, C, h, w]."""

    def __init__(self, p_mean: float = 0.7, p_std: float = 1.6, sigma_data: float = 1.0,
                 hand_amplification: float = 10.0, motion_amplification: float = 1.0) -> None:  # fmt: skip
        self.p_mean, self.p_std, self.sigma_data = float(p_mean), float(p_std), float(sigma_data)
        self.hand_amplification = float(hand_amplification)
        self.motion_amplification = float(motion_amplification)

    def sample_sigmas(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return sample_sigmas(batch_size, self.p_mean, self.p_std, generator=generator)

    def __call__(
        self,
        denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        x0: torch.Tensor,
        hand_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        motion_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``denoise(x_sigma, sigma)`` -> D [B, F, C, h, w]; x0 [B, F, C, h, w]; hand_mask and motion_mask
        [B, F, h, w] (motion_mask used when ``motion_amplification`` != 1).

        ``generator`` makes sigma and the noise deterministic (validation). -> {"loss", "mse"}.
        """
        device = x0.device
        gen_device = generator.device if generator is not None else device
        sigma = self.sample_sigmas(x0.shape[0], generator).to(device)
        noise = torch.randn(x0.shape, generator=generator, device=gen_device).to(device)
        x_sigma = x0 + append_dims(sigma, x0.ndim) * noise
        err = (denoise(x_sigma, sigma) - x0) ** 2
        weight = append_dims(edm_loss_weight(sigma, self.sigma_data), x0.ndim)
        if hand_mask is not None and self.hand_amplification != 1.0:
            weight = weight * hand_loss_weight(hand_mask.float()[:, :, None], self.hand_amplification)
        if motion_mask is not None and self.motion_amplification != 1.0:
            weight = weight * hand_loss_weight(motion_mask.float()[:, :, None], self.motion_amplification)
        return {"loss": (weight * err).mean(), "mse": err.mean().detach()}

    def __repr__(self) -> str:
        return (f"EDMLoss(p_mean={self.p_mean}, p_std={self.p_std}, sigma_data={self.sigma_data}, "
                f"hand_amplification={self.hand_amplification}, motion_amplification={self.motion_amplification})")  # fmt: skip
