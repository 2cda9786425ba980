"""A drill callback: after every train batch, append the step held by ``last.ckpt`` (-1: none yet) to a file."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch


class LastCheckpointProbe(L.Callback):
    def __init__(self, path: str, out: str, delay: float = 0.0) -> None:
        self.path, self.out, self.delay = Path(path), Path(out), delay

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = -1
        if self.path.is_file():
            step = int(torch.load(self.path, map_location="cpu", weights_only=True, mmap=True)["global_step"])
        with open(self.out, "a") as f:
            f.write(f"{step}\n")
        if self.delay:
            time.sleep(self.delay)
