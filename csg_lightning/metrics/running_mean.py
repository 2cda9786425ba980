"""A metric that averages per-item values: float64 ``total`` and ``count`` states summed across ranks."""

from __future__ import annotations

import torch
from torchmetrics import Metric


class RunningMean(Metric):
    """Base for metrics defined as a mean; subclasses add to ``self.total`` and ``self.count`` in
    ``update``. ``compute`` returns ``total / count`` (NaN before any item was counted)."""

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def compute(self) -> torch.Tensor:
        if self.count > 0:
            return self.total / self.count
        return torch.tensor(float("nan"), dtype=torch.float64)
