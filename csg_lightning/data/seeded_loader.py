"""The training loader of an in-memory dataset (the demo's generated / rendered speakers): seeded random order.

These datamodules have no epoch position to save: a resumed run starts the seeded order over
(:class:`NoLoaderState`), where the shard datamodules resume exactly (``ResumableStreamingDataLoader``).
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler


def seeded_loader(dataset: Dataset, batch_size: int, seed: int, num_workers: int = 0,
                  persistent_workers: bool = False) -> DataLoader:  # fmt: skip
    """Batches of ``dataset`` in a random order drawn from ``seed`` (the last incomplete batch dropped)."""
    generator = torch.Generator().manual_seed(int(seed))
    return DataLoader(dataset, batch_size=batch_size, sampler=RandomSampler(dataset, generator=generator),
                      drop_last=True, num_workers=num_workers,
                      persistent_workers=persistent_workers and num_workers > 0)  # fmt: skip


class NoLoaderState:
    """Datamodule mixin: nothing to save in checkpoints about the training loader's position."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        return None
