"""``BatchRecorder``: a callback that writes down what each training step saw (for the resume drills).

Per step it records ``{"step", "epoch", "rank", "clip_id": [B] str, "start": [B] int}`` (the
global step the batch is about to train, the trainer epoch, the DDP rank, the batch's clip ids
and window starts), keeps the records in ``self.records`` and, given ``path``, appends them as
JSON lines to ``path`` (``{path}.rank{r}`` for ranks > 0), flushed per line so a SIGKILL loses
nothing written. At the end of fit it saves the raw trainable weights (before EMA is swapped in)
to ``{path}.weights.pt`` (rank 0) and keeps them in ``self.final_weights``.

``hold_at_step``: when that step is reached (after its record is written) the process sleeps
up to ``hold_seconds``, so that a drill can SIGKILL it at a known step. ``crash_at_step``: that
step raises :class:`DrillCrash` before it trains (an in-process stand-in for a crash: nothing is
saved on the way out).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from lightning.pytorch import Callback


class DrillCrash(RuntimeError):
    """Raised by ``BatchRecorder(crash_at_step=...)``."""


class BatchRecorder(Callback):
    def __init__(
        self,
        path: str | None = None,
        hold_at_step: int | None = None,
        hold_seconds: float = 120.0,
        crash_at_step: int | None = None,
    ) -> None:
        self.path, self.hold_at_step, self.hold_seconds = path, hold_at_step, hold_seconds
        self.crash_at_step = crash_at_step
        self.records: list[dict] = []
        self.final_weights: dict[str, torch.Tensor] = {}

    def _file(self, rank: int, suffix: str = "") -> Path:
        return Path(f"{self.path}{'' if rank == 0 else f'.rank{rank}'}{suffix}")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.crash_at_step is not None and trainer.global_step == self.crash_at_step:
            raise DrillCrash(f"drill crash before step {trainer.global_step}")
        record = {
            "step": int(trainer.global_step),
            "epoch": int(trainer.current_epoch),
            "rank": int(trainer.global_rank),
            "clip_id": list(batch["clip_id"]),
            "start": [int(s) for s in batch["start"]],
        }
        self.records.append(record)
        if self.path is not None:
            with open(self._file(trainer.global_rank), "a") as fh:
                fh.write(json.dumps(record) + "\n")
                fh.flush()
        if self.hold_at_step is not None and trainer.global_step == self.hold_at_step:
            time.sleep(self.hold_seconds)

    def on_train_end(self, trainer, pl_module) -> None:
        # Callback hooks run before the module's on_train_end, which swaps the EMA weights in.
        self.final_weights = {k: v.detach().cpu().clone() for k, v in pl_module.named_parameters()}
        if self.path is not None and trainer.global_rank == 0:
            torch.save(self.final_weights, self._file(0, ".weights.pt"))


def read_records(path: str | Path) -> list[dict]:
    """The complete JSON lines a ``BatchRecorder(path)`` wrote so far (a missing file: no records)."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text().split("\n")[:-1]  # a line still being written has no newline yet
    return [json.loads(line) for line in lines if line.strip()]
