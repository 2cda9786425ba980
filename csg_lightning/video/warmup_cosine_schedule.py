"""``WarmupCosineSchedule``: the LR schedule of Stage 2 as a callable given in the experiment YAML.

``schedule(optimizer, total_steps)`` -> a per-step ``LambdaLR`` (linear warm-up over ``warmup_steps``,
then a cosine down to ``min_lr_ratio`` at ``total_steps``; see
:func:`csg_lightning.models.lr_schedule.warmup_cosine`).
"""

from __future__ import annotations

import math

import torch

from csg_lightning.models.lr_schedule import warmup_cosine


class WarmupCosineSchedule:
    """Linear warm-up then cosine decay, built on an optimizer by ``configure_optimizers``."""

    def __init__(self, warmup_steps: int = 500, min_lr_ratio: float = 1.0) -> None:
        if warmup_steps < 0 or not 0.0 <= min_lr_ratio <= 1.0:
            raise ValueError(
                f"WarmupCosineSchedule: warmup_steps must be >= 0 and min_lr_ratio in [0, 1], "
                f"got {warmup_steps}, {min_lr_ratio}"
            )
        self.warmup_steps, self.min_lr_ratio = int(warmup_steps), float(min_lr_ratio)

    def __call__(self, optimizer: torch.optim.Optimizer, total_steps: float | int | None = None):
        """-> ``torch.optim.lr_scheduler.LambdaLR`` (step it every optimizer step)."""
        total = int(total_steps) if total_steps is not None and math.isfinite(total_steps) else None
        warmup, ratio = self.warmup_steps, self.min_lr_ratio
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, warmup, total, ratio))

    def __repr__(self) -> str:
        return f"WarmupCosineSchedule(warmup_steps={self.warmup_steps}, min_lr_ratio={self.min_lr_ratio})"
