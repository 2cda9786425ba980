"""Fixtures of the bad-input drills: real checkpoints that the drills never get to load."""

from __future__ import annotations

import pytest
from bad_inputs import MustNotLoad


@pytest.fixture(scope="session")
def stage1_checkpoint(tiny_stage1_checkpoint):
    """A real (tiny) Stage 1 checkpoint after one training step (tests/conftest.py)."""
    return tiny_stage1_checkpoint


@pytest.fixture(scope="session")
def video_checkpoint(tmp_path_factory):
    """A real tiny VideoGenerator checkpoint (weights + hyperparameters, as Lightning saves them)."""
    import lightning as L
    import torch

    from csg_lightning.video.video_generator import VideoGenerator

    torch.manual_seed(0)
    model = VideoGenerator.from_preset("tiny", image_height=64, image_width=64, ema_decay=0)
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
