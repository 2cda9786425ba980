"""The demo recipe shrunk for drills: argument lists for `csg fit` and an overlay of callbacks."""

from __future__ import annotations

from pathlib import Path

import yaml
from experiment_catalog import TINY_SKELETON_MODEL

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "experiments" / "skeleton" / "demo.yaml"


def fit_args(shards: Path, runs: Path, run: str, max_steps: int, overlay: Path | None = None) -> list[str]:
    """`csg fit` arguments: demo.yaml (+ ``overlay``) with a tiny model, 50-frame windows, CPU."""
    return ["fit", f"--config={DEMO}"] + ([f"--config={overlay}"] if overlay else []) + [
        f"--data.init_args.data_dir={shards}",
        "--data.init_args.batch_size=2",
        "--data.init_args.num_workers=0",
        "--data.init_args.window=50",
        "--data.init_args.num_prefix=10",
        *TINY_SKELETON_MODEL,
        "--model.init_args.crossfade_frames=5",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        f"--trainer.max_steps={max_steps}",
        "--trainer.max_time=null",
        "--trainer.val_check_interval=null",
        "--trainer.limit_val_batches=0",
        "--trainer.logger=false",
        "--trainer.deterministic=true",
        f"--runs_root={runs}",
        f"--run={run}",
    ]


def callbacks_overlay(path: Path, checkpoint: dict, extra: list[dict] | None = None) -> Path:
    """Write a YAML overlay whose ``trainer.callbacks`` are one CrashSafeModelCheckpoint + ``extra``."""
    callbacks = [{
        "class_path": "csg_lightning.callbacks.crash_safe_checkpoint.CrashSafeModelCheckpoint",
        "init_args": {"save_last": True, **checkpoint},
    }] + list(extra or [])  # fmt: skip
    path.write_text(yaml.safe_dump({"trainer": {"callbacks": callbacks}}))
    return path
