"""Shared machinery of the sample callbacks: a fixed validation batch, rank gating, W&B video logging."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import WandbLogger

from csg_lightning.callbacks.batch_slice import take_samples


class ValidationSampleCallback(pl.Callback):
    """Caches the first ``num_samples`` items of validation batch 0 once (on CPU) and, at the end of
    each validation that :meth:`due` accepts, lets :meth:`sample_and_write` generate from them.

    Only global rank 0 samples and writes (``sample_batch`` runs on the plain module, so no
    collective is involved and other ranks never wait); ``all_ranks=True`` makes every rank sample,
    as a sharded (FSDP) model needs. Written paths are logged to W&B under ``wandb_key`` when the
    trainer has a ``WandbLogger``.
    """

    wandb_key = "samples"

    def __init__(self, num_samples: int, seed: int = 0, all_ranks: bool = False) -> None:
        super().__init__()
        self.num_samples, self.seed, self.all_ranks = num_samples, seed, all_ranks
        self._batch: dict[str, Any] | None = None

    def due(self, trainer: pl.Trainer) -> bool:
        """Whether this validation gets samples (subclasses set the interval)."""
        return True

    def sample_and_write(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> list[Path]:
        """Generate from ``self._batch``; on global rank 0 write the videos and return their paths."""
        raise NotImplementedError

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if self._batch is None and batch_idx == 0 and dataloader_idx == 0:
            self._batch = take_samples(batch, self.num_samples)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self._batch is None or not self.due(trainer):
            return
        if not (trainer.is_global_zero or self.all_ranks):
            return
        if not hasattr(pl_module, "sample_batch"):
            raise AttributeError(
                f"{type(self).__name__}: {type(pl_module).__name__} has no sample_batch(batch, ...) method"
            )
        paths = self.sample_and_write(trainer, pl_module)
        if trainer.is_global_zero and paths:
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_video(
                        self.wandb_key, [str(p) for p in paths], step=trainer.global_step,
                        caption=[p.stem for p in paths], format=["mp4"] * len(paths),
                    )  # fmt: skip


def sample_name(clip_ids: list, i: int) -> str:
    """A file-name-safe name for item ``i`` (its clip id, made unique when the id repeats)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(clip_ids[i]))
    return f"{name}_{i}" if clip_ids.count(clip_ids[i]) > 1 else name
