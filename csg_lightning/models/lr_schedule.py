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
