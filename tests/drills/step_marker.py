"""A callback for drill subprocesses: writes the global step to a file after every train batch.

``delay`` (seconds of sleep per batch) slows a tiny run down enough for a parent process to signal
it at a chosen step; it does not change what is computed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import lightning as L


class StepMarker(L.Callback):
    def __init__(self, path: str, delay: float = 0.0) -> None:
        self.path, self.delay = Path(path), delay

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}")
        tmp.write_text(str(trainer.global_step))
        os.replace(tmp, self.path)
        if self.delay:
            time.sleep(self.delay)


def read_step(path: Path) -> int:
    try:
        return int(Path(path).read_text())
    except (FileNotFoundError, ValueError):
        return -1
