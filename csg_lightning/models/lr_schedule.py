"""Linear warm-up then cosine decay (:class:`WarmupCosineLR`), and AdamW's weight-decay parameter groups."""

from __future__ import annotations

import math

import torch


def warmup_cosine(step: int, warmup_steps: int, total_steps: int | None, min_ratio: float = 0.1) -> float:
    """lr multiplier at optimizer step ``step``: 0 -> 1 linearly over ``warmup_steps``, then a cosine
    from 1 down to ``min_ratio`` at ``total_steps`` (constant 1 after warm-up when unknown)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if not total_steps or total_steps <= warmup_steps:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class WarmupCosineLR(torch.optim.lr_scheduler.LambdaLR):
    """``LambdaLR`` with the :func:`warmup_cosine` multiplier, stepped per optimizer step.

    ``total_steps`` None: the LightningModule sets it to ``trainer.estimated_stepping_batches`` (inf or
    unknown: no decay). Built from the YAML as an ``LRSchedulerCallable`` (``lr_scheduler:`` of the model).
    """

    def __init__(self, optimizer, warmup_steps: int = 500, min_lr_ratio: float = 0.1,
                 total_steps: int | None = None) -> None:  # fmt: skip
        self.warmup_steps, self.min_lr_ratio = int(warmup_steps), float(min_lr_ratio)
        self.total_steps = total_steps
        super().__init__(optimizer, lambda s: warmup_cosine(s, self.warmup_steps, self.total_steps, self.min_lr_ratio))

    def set_total_steps(self, total_steps: float | int | None) -> None:
        """Fill ``total_steps`` when unset (``trainer.estimated_stepping_batches``; inf / None: no decay)."""
        if self.total_steps is None and total_steps is not None and math.isfinite(total_steps):
            self.total_steps = int(total_steps)


def weight_decay_groups(params) -> list[dict]:
    """Trainable parameters as two optimizer groups: tensors with >= 2 dims (the optimizer's weight decay)
    and biases / norms (< 2 dims, no weight decay)."""
    params = [p for p in params if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2]},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
