"""``StepRecorder``: a Lightning callback that writes down, per optimizer step, the training loss the
module returned and the learning rate after the step, as JSON lines (one object per step).

Added to a `csg fit` run from the command line (``--trainer.callbacks+=...``, see ``tests/test_golden.py``),
so the recipe's own callbacks stay as they are. It reads only Lightning's callback contract
(``outputs`` of ``training_step``, ``trainer.optimizers``), none of the project's classes.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import torch


class StepRecorder(L.Callback):
    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_start(self, trainer, pl_module) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        record = {
            "step": int(trainer.global_step),  # after the optimizer step: 1 for the first batch
            "loss": float(torch.as_tensor(loss).detach().float().cpu()),
            "lr": float(trainer.optimizers[0].param_groups[0]["lr"]),
        }
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")


def read_records(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
