"""A 2-process CPU DDP (gloo) fit of the Stage-1 demo recipe through the `csg` console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from experiment_catalog import TINY_SKELETON_MODEL

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_process_ddp_fit(demo_shards, tmp_path):
    csg = Path(sys.executable).parent / "csg"
    args = [
        str(csg), "fit", "--config", str(ROOT / "experiments/skeleton/demo.yaml"),
        f"--data.init_args.data_dir={demo_shards}", "--data.init_args.batch_size=1",
        "--data.init_args.num_workers=0", "--data.init_args.window=50", "--data.init_args.num_prefix=10",
        *TINY_SKELETON_MODEL, "--model.init_args.crossfade_frames=5",
        "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp",
        "--trainer.max_steps=3", "--trainer.val_check_interval=2", "--trainer.limit_val_batches=1",
        f"--runs_root={tmp_path}", "--run=ddp",
    ]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    run_dir = tmp_path / "skeleton-demo" / "ddp"
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 3
    assert (run_dir / "config.yaml").is_file()
    # the datamodule's resumable loader position travels in the checkpoint
    assert "SkeletonAudioDataModule" in ckpt
