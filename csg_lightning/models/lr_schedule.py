"""Linear warm-up then cosine decay, as a per-step multiplier for ``LambdaLR``."""

from __future__ import annotations

import math


def warmup_cosine(step: int, warmup_steps: int, total_steps: int | None, min_ratio: float = 0.1) -> float:
    """lr multiplier at optimizer step ``step``: 0 -> 1 linearly over ``warmup_steps``, then a cosine
    from 1 down to ``min_ratio`` at ``total_steps`` (constant 1 after warm-up when unknown)."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if not total_steps or total_steps <= warmup_steps:
        return 1.0
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def adamw_warmup_cosine(
    params,
    lr: float,
    weight_decay: float,
    warmup_steps: int,
    min_lr_ratio: float,
    total_steps: float | int | None,
) -> dict:
    """AdamW (no weight decay on biases and norms, i.e. tensors with < 2 dims) with a per-step
    :func:`warmup_cosine` schedule, in the dict form ``configure_optimizers`` returns.

    ``total_steps`` is usually ``trainer.estimated_stepping_batches`` (inf / None: no decay).
    """
    import torch

    params = [p for p in params if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=lr,
    )
    total = int(total_steps) if total_steps is not None and math.isfinite(total_steps) else None
    warmup, ratio = int(warmup_steps), float(min_lr_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, warmup, total, ratio))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
