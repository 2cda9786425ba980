"""Confidence-masked regression loss on the diffusion target, with per-part terms for logging."""

from __future__ import annotations

import torch

from csg_lightning.skeleton.local import LOCAL_GROUPS


def point_mask_to_features(mask: torch.Tensor) -> torch.Tensor:
    """[B, T, J] point mask -> [B, T, 2J] feature mask (x, y interleaved per point)."""
    return mask.repeat_interleave(2, dim=-1)


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the confident points only.

    prediction, target: [B, T, 2J]; mask: [B, T, J] (1 = confident, 0 = ignored). Masked
    points contribute nothing (neither to the sum nor to the count). Returns a scalar.
    """
    fmask = point_mask_to_features(mask).to(prediction.dtype)
    err = (prediction - target) ** 2 * fmask
    return err.sum() / fmask.sum().clamp_min(1.0)


def velocity_mse(x0_hat: torch.Tensor, x0: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked MSE of frame-to-frame differences; a difference counts when both frames are confident.

    x0_hat, x0: [B, T, 2J]; mask [B, T, J] -> scalar.
    """
    vel_mask = mask[:, 1:] * mask[:, :-1]
    return masked_mse(x0_hat[:, 1:] - x0_hat[:, :-1], x0[:, 1:] - x0[:, :-1], vel_mask)


def part_losses(
    prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Masked MSE per body part of the 123-point local layout: {"body", "face", "hands"}."""
    out = {}
    for name, points in LOCAL_GROUPS.items():
        feats = slice(2 * points.start, 2 * points.stop)
        out[name] = masked_mse(prediction[..., feats], target[..., feats], mask[..., points])
    return out


class DiffusionLoss:
    """The Stage-1 training loss: masked MSE on the diffusion target (+ ``velocity_weight`` x the masked
    MSE of the frame-to-frame differences of the predicted x0). Built from the YAML
    (``experiments/components/skeleton/loss/*.yaml``).

    __call__(prediction, target, mask, predicted_x0=None, x0=None) -> {"loss", "loss_target",
    "loss_body", "loss_face", "loss_hands"[, "loss_velocity"]}; ``predicted_x0`` / ``x0`` are needed only
    when ``needs_x0`` (velocity_weight > 0).
    """

    def __init__(self, velocity_weight: float = 0.0) -> None:
        self.velocity_weight = float(velocity_weight)

    @property
    def needs_x0(self) -> bool:
        return self.velocity_weight > 0

    def __call__(self, prediction, target, mask, predicted_x0=None, x0=None) -> dict[str, torch.Tensor]:
        losses = {"loss_target": masked_mse(prediction, target, mask)}
        losses.update({f"loss_{k}": v for k, v in part_losses(prediction, target, mask).items()})
        loss = losses["loss_target"]
        if self.needs_x0:
            losses["loss_velocity"] = velocity_mse(predicted_x0, x0, mask)
            loss = loss + self.velocity_weight * losses["loss_velocity"]
        losses["loss"] = loss
        return losses

    def __repr__(self) -> str:
        return f"DiffusionLoss(velocity_weight={self.velocity_weight})"
