"""Fixtures of the bad-input drills: real checkpoints that the drills never get to load."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from bad_inputs import MustNotLoad


@pytest.fixture(scope="session")
def stage1_checkpoint(tmp_path_factory):
    """A real (tiny) Stage 1 checkpoint after one training step, as in tests/test_sample_skeleton.py."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint

    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from stage1_data import SyntheticSkeletonData

    root = tmp_path_factory.mktemp("drill_stage1")
    torch.manual_seed(0)
    model = SkeletonDiffusion(preset="tiny", audio_encoder_dim=16, warmup_steps=1, crossfade_frames=5,
                              num_inference_steps=2, ema_decay=0.0)  # fmt: skip
    trainer = L.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, default_root_dir=str(root),
                        callbacks=[ModelCheckpoint(dirpath=root / "checkpoints", save_last=True)])  # fmt: skip
    trainer.fit(model, SyntheticSkeletonData(window=20, num_prefix=5, batch_size=2))
    return root / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def video_checkpoint(tmp_path_factory):
    """A real tiny VideoGenerator checkpoint (weights + hyperparameters, as Lightning saves them)."""
    import lightning as L
    import torch

    from csg_lightning.video.video_generator import VideoGenerator

    torch.manual_seed(0)
    model = VideoGenerator(preset="tiny", image_height=64, image_width=64, ema_decay=0)
    path = tmp_path_factory.mktemp("drill_video") / "video.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": L.__version__, "epoch": 0, "global_step": 0}, path)  # fmt: skip
    return path


@pytest.fixture
def no_stage1_loading(monkeypatch):
    """SkeletonDiffusion.load_from_checkpoint fails the test if a drill gets that far."""
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    guard = MustNotLoad()
    monkeypatch.setattr(SkeletonDiffusion, "load_from_checkpoint", guard)
    return guard


@pytest.fixture
def no_video_loading(monkeypatch):
    from csg_lightning.video.video_generator import VideoGenerator

    guard = MustNotLoad()
    monkeypatch.setattr(VideoGenerator, "load_from_checkpoint", guard)
    return guard
