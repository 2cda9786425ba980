"""``TrialMetrics``: a callback that writes a run's final metrics to ``<run dir>/metrics.json`` at the end of fit.

Sweep commands append it (``--trainer.callbacks+=csg_lightning.sweeps.trial_metrics.TrialMetrics``), so
``csg sweep-report`` reads every trial's last logged values (``val/loss``, ``train/loss`` ...) from one
small file, whatever logger the run used (W&B offline keeps its summary inside a binary ``.wandb``
file). Written atomically by global rank 0 only, and only when fit ends normally (a run stopped by
SIGTERM has no ``metrics.json``: its trial is not finished).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from csg_lightning.io.atomic import atomic_path

METRICS_FILE = "metrics.json"


class TrialMetrics(Callback):
    def __init__(self, filename: str = METRICS_FILE) -> None:
        self.filename = filename

    def on_fit_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        metrics = {}
        for key, value in trainer.callback_metrics.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            metrics[key] = number if math.isfinite(number) else None
        record = {"metrics": metrics, "global_step": int(trainer.global_step), "epoch": int(trainer.current_epoch),
                  "world_size": int(trainer.world_size), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
        path = Path(trainer.default_root_dir) / self.filename
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
