"""FSDP2 for the video stage (csg_lightning/video/fsdp_sharding.py, experiments/video/overlays/fsdp.yaml).

* in one process (a 1-rank gloo group, the real ``fully_shard``): the UNet blocks, PoseNet and root become
  FSDP units with DTensor parameters, a training step runs, the EMA shadows are DTensor shards and the
  checkpoint hook writes whole tensors (the averaged ones in ``state_dict``, the raw ones in ``ema_state``);
* two processes (gloo, ``csg fit`` with the overlay and ``--trainer.devices=2``, launched by Lightning as
  on a node): 2 steps with ``FullyShardedStrategy`` (ModelParallelStrategy, FSDP over all ranks); each rank holds half of the UNet; the single ``.ckpt``
  rank 0 writes loads on one device with ``load_module`` and generates frames.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import yaml

from csg_lightning.models.ema import EMAWeights
from csg_lightning.video.fsdp_sharding import UNetBlockSharding, is_sharded, local_numel, wrap_classes

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT / "experiments" / "video"
TINY_PARTS = ROOT / "experiments" / "components" / "video" / "parts_tiny.yaml"


@pytest.fixture
def one_rank_group(tmp_path):
    from torch.distributed.device_mesh import init_device_mesh

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield init_device_mesh("cpu", (1,), mesh_dim_names=("data_parallel",))
    finally:
        dist.destroy_process_group()


def test_sharding_makes_units_steps_and_writes_whole_ema_weights(one_rank_group):
    from csg_lightning.video.video_generator import VideoGenerator

    torch.manual_seed(0)
    model = VideoGenerator.from_preset("tiny", sharding={
        "class_path": "csg_lightning.video.fsdp_sharding.UNetBlockSharding",
        "init_args": {"param_dtype": "float32", "reduce_dtype": "float32"},
    })  # fmt: skip
    assert isinstance(model.sharding, UNetBlockSharding) and not is_sharded(model.net)
    units = model.sharding.units(model.net)
    assert len(units) == 2 + 2 + 1 + 2  # 2 down + 2 up blocks + mid, PoseNet, root
    assert sum(isinstance(u, wrap_classes()) for u in units) == 5
    model.sharding(model.net, one_rank_group)
    assert is_sharded(model.net) and type(model.net).__name__.startswith("FSDP")
    assert local_numel(model.net) == sum(p.numel() for p in model.net.parameters())  # 1 rank: all of it

    params = model._ema_params()
    ema = EMAWeights(params, decay=0.5)
    assert all(hasattr(s, "placements") for s in ema.shadow.values()), "EMA shadows should be DTensor shards"
    b, f, h, w = 1, 2, 64, 64
    batch = {
        "frames": torch.randint(0, 256, (b, f, 3, h, w), dtype=torch.uint8),
        "reference": torch.randint(0, 256, (b, 3, h, w), dtype=torch.uint8),
        "poses": torch.randint(0, 256, (b, f, 3, h, w), dtype=torch.uint8),
    }
    optimizer = torch.optim.AdamW([p for p in model.net.parameters() if p.requires_grad], lr=1e-2)
    loss = model.diffusion_loss(batch, torch.Generator().manual_seed(0))["loss"]
    loss.backward()
    optimizer.step()
    ema.update()
    name = next(iter(params))
    checkpoint = {"state_dict": {k: torch.zeros(()) for k in params}}
    ema.write_to_checkpoint(checkpoint)
    whole_param = params[name].full_tensor()
    saved, raw = checkpoint["state_dict"][name], checkpoint["ema_state"]["current"][name]
    assert type(saved) is torch.Tensor and type(raw) is torch.Tensor  # gathered, not DTensor
    assert torch.equal(raw, whole_param.detach())
    assert not torch.equal(saved.float(), raw.float()), "the averaged weights should lag the trained ones"
    assert torch.isfinite(loss)


def _tiny_args(shards: Path, runs: Path) -> list[str]:
    return [
        f"--config={VIDEO / 'demo.yaml'}", f"--config={TINY_PARTS}", f"--config={VIDEO / 'overlays' / 'fsdp.yaml'}",
        f"--data.init_args.data_dir={shards}", "--data.init_args.batch_size=1", "--data.init_args.num_workers=0",
        "--data.init_args.num_frames=2", "--data.init_args.height=32", "--data.init_args.width=32",
        "--model.init_args.num_inference_steps=2", "--model.init_args.ema_decay=0.5",
        "--model.init_args.sharding.init_args.param_dtype=float32",
        "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.max_steps=2", "--trainer.max_time=null",
        "--trainer.val_check_interval=null", "--trainer.limit_val_batches=0",
        "--trainer.enable_model_summary=false", "--torch_threads=1", f"--runs_root={runs}", "--run=fsdp",
    ]  # fmt: skip


@pytest.mark.slow  # two processes spawned, each importing the stack: ~2-3 min on 2 cores
def test_two_process_fsdp_fit_writes_a_checkpoint_that_generates(demo_corpus_video, tmp_path):
    from csg_lightning.data.shards import write_shards

    # 2 of the 3 speakers in train: one clip per rank
    shards = write_shards(demo_corpus_video, tmp_path / "shards", val_speakers=1, test_speakers=0, progress=False)
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "csg_lightning.cli", "fit", *_tiny_args(shards, tmp_path)]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    run_dir = tmp_path / "video-demo+fsdp" / "fsdp"
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["trainer"]["strategy"]["class_path"].endswith("FullyShardedStrategy")
    assert saved["model"]["init_args"]["sharding"]["class_path"].endswith("UNetBlockSharding")
    ckpts = sorted((run_dir / "checkpoints").glob("*.ckpt"))
    assert ckpts and ckpts[-1].is_file(), f"no single-file checkpoint in {run_dir / 'checkpoints'}"

    from csg_lightning.checkpoints.safe_load import load_checkpoint_file, load_module
    from csg_lightning.video.generate import generate_video
    from csg_lightning.video.video_generator import VideoGenerator

    raw = load_checkpoint_file(ckpts[-1], what="fsdp checkpoint")
    assert raw["global_step"] == 2 and raw["ema_state"]["num_updates"] == 2
    model = load_module(VideoGenerator, ckpts[-1], map_location="cpu").eval()
    assert not is_sharded(model.net)
    unsharded = VideoGenerator.from_preset("tiny")
    assert set(model.state_dict()) == set(unsharded.state_dict()), "the checkpoint should hold every weight"
    rng = np.random.default_rng(0)
    kp = rng.uniform(8, 56, (3, 134, 2)).astype(np.float32)
    frames = generate_video(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), (kp, np.ones((3, 134), np.float32)),
                            model=model, num_steps=2)  # fmt: skip
    assert frames.shape == (3, 32, 32, 3) and frames.dtype == np.uint8
