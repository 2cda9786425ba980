"""A Lightning ``CheckpointIO`` whose saves are atomic and durable on local filesystems.

Lightning's ``TorchCheckpointIO`` serialises into memory and writes through an fsspec transaction
whose temporary file lives in ``$TMPDIR``: when that is another filesystem (tmpfs), the commit is a
copy, and a kill during it leaves a torn ``.ckpt``; on the same filesystem a kill leaves the temp
file behind. Here the checkpoint is streamed by ``torch.save`` into a temp file in the destination
folder, fsynced, renamed over the destination and the folder fsynced: at any instant the
destination is either the previous complete checkpoint or the new one. Temp files of writers that
were killed are removed before the next save; loads are always ``weights_only=True``. Remote paths (``s3://`` …) keep Lightning's behaviour.

``CrashSafeModelCheckpoint`` (every recipe's checkpoint callback) installs it with
:func:`use_atomic_checkpoint_io`; it can also be named in YAML:
``trainer.plugins: [{class_path: csg_lightning.checkpoints.atomic_io.AtomicCheckpointIO}]``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import fsspec
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from csg_lightning.checkpoints.safe_load import TRUSTED_GLOBALS
from csg_lightning.io.atomic import atomic_path, remove_stale_temps

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None):
        """Lightning's load, always ``weights_only=True`` (with our allow-list): resuming never runs pickles."""
        if weights_only is False:
            raise ValueError(f"{path}: csg-lightning never loads checkpoints with weights_only=False")
        with torch.serialization.safe_globals(TRUSTED_GLOBALS):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        fs, local = fsspec.core.url_to_fs(str(path))
        if not isinstance(fs, LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        if storage_options is not None:
            raise TypeError(
                f"{type(self).__name__}.save_checkpoint got storage_options={storage_options!r}; "
                "they apply to remote paths only"
            )
        dest = Path(local)
        for stale in remove_stale_temps(dest.parent):
            log.info("removed %s, a checkpoint temp file of a killed run", stale)
        with atomic_path(dest, durable=True) as tmp, open(tmp, "wb") as f:
            torch.save(checkpoint, f)


def use_atomic_checkpoint_io(trainer) -> None:
    """Give ``trainer``'s strategy an :class:`AtomicCheckpointIO` if it uses Lightning's plain
    ``TorchCheckpointIO`` (a user-given or strategy-specific CheckpointIO is left alone)."""
    strategy = trainer.strategy
    if type(strategy.checkpoint_io) is TorchCheckpointIO:
        strategy.checkpoint_io = AtomicCheckpointIO()
