"""Keeping the first few samples of a batch dict for sample callbacks."""

from __future__ import annotations

from typing import Any

import torch


def take_samples(batch: dict[str, Any], n: int) -> dict[str, Any]:
    """The first ``n`` items of a batch dict, tensors detached and moved to CPU."""
    out = {}
    for key, value in batch.items():
        if torch.is_tensor(value):
            out[key] = value[:n].detach().cpu().clone() if value.ndim else value.detach().cpu()
        elif isinstance(value, (list, tuple)):
            out[key] = list(value[:n])
        else:
            out[key] = value
    return out
