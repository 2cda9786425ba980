"""SkeletonSampleCallback in a real Lightning fit: sample videos land in the run folder with audio."""

from __future__ import annotations

import os

import av
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from csg_lightning.callbacks.skeleton_samples import SkeletonSampleCallback
from csg_lightning.io.mp4 import read_frames

PREFIX, WINDOW, SPF = 5, 20, 640


def _pose(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A rough frontal skeleton [134, 2] in a 512 x 512 frame, all points confident."""
    kp = np.zeros((134, 2), np.float32)
    kp[:24] = rng.uniform(150, 360, (24, 2))
    kp[5], kp[6], kp[9], kp[10] = (190, 200), (320, 200), (180, 350), (330, 350)
    kp[17] = (kp[5] + kp[6]) / 2
    kp[24:92] = rng.uniform(230, 280, (68, 2))
    kp[92:113] = kp[9] + rng.uniform(-15, 15, (21, 2))
    kp[113:134] = kp[10] + rng.uniform(-15, 15, (21, 2))
    return kp, np.ones(134, np.float32)


class _Windows(Dataset):
    """Batches in the contract's layout (prefix + window frames, aligned 16 kHz audio)."""

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng(i)
        kp, sc = _pose(rng)
        frames = PREFIX + WINDOW
        wobble = 8 * np.sin(np.arange(frames) / 3.0)[:, None, None]
        keypoints = torch.from_numpy(kp[None] + wobble.astype(np.float32))
        t = np.arange(frames * SPF) / 16000
        return {
            "features": torch.randn(frames, 246),
            "keypoints": keypoints,
            "scores": torch.from_numpy(np.tile(sc, (frames, 1))),
            "audio": torch.from_numpy((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)),
            "clip_id": f"spk0{i}_clip000",
            "start": torch.tensor(0),
        }


class _Shifter(pl.LightningModule):
    """Stands in for the Stage 1 model: 'generates' the ground truth window shifted by 40 px."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(246, 1)
        self.calls = 0

    def training_step(self, batch, batch_idx):
        return self.layer(batch["features"]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.layer(batch["features"]).pow(2).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def sample_batch(self, batch, num_steps=None, guidance_scale=None, seed=0):
        self.calls += 1
        keypoints = batch["keypoints"][:, PREFIX:] + 40.0
        return keypoints, batch["scores"][:, PREFIX:]

    def pipeline(self):
        return self  # a stand-in pipeline: sample_batch above


def _fit(tmp_path, callback, logger=False, epochs=1) -> _Shifter:
    model = _Shifter()
    trainer = pl.Trainer(
        max_epochs=epochs, limit_train_batches=1, limit_val_batches=1, num_sanity_val_steps=1,
        accelerator="cpu", logger=logger, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, callbacks=[callback],
    )  # fmt: skip
    loader = DataLoader(_Windows(), batch_size=3)
    trainer.fit(model, loader, loader)
    return model


def test_writes_side_by_side_video_with_audio(tmp_path):
    size = 64
    model = _fit(tmp_path, SkeletonSampleCallback(num_samples=2, size=size, frame_size=(512, 512)))
    assert model.calls == 1  # not during the sanity check
    videos = sorted((tmp_path / "samples").glob("*.mp4"))
    assert [v.name for v in videos] == [
        "epoch000_step1_spk00_clip000.mp4",
        "epoch000_step1_spk01_clip000.mp4",
    ]
    frames = read_frames(videos[0])
    assert frames.shape == (WINDOW, size, 2 * size, 3)
    generated, truth = frames[:, :, :size].astype(float), frames[:, :, size:].astype(float)
    assert generated.mean() > 1 and truth.mean() > 1  # skeletons are drawn in both panels
    # generated = truth shifted by (40, 40) px of 512 (5 px at 64): shifting back aligns the panels
    s, top = round(40 * size / 512), 16  # rows above `top` hold the text labels
    aligned = np.abs(generated[:, top + s :, s:] - truth[:, top:-s, :-s]).mean()
    assert aligned < 0.5 * np.abs(generated[:, top + s :, s:] - truth[:, top + s :, s:]).mean()
    with av.open(str(videos[0])) as container:
        assert len(container.streams.audio) == 1
        audio = container.streams.audio[0]
        seconds = float(audio.duration * audio.time_base)
    assert seconds == pytest.approx(WINDOW / 25, abs=0.1)


def test_every_n_epochs_and_fitted_frame(tmp_path):
    callback = SkeletonSampleCallback(every_n_epochs=2, num_samples=1, size=32)  # no frame size: fitted
    model = _fit(tmp_path, callback, epochs=3)
    assert model.calls == 1  # epoch 1 (the second) only
    videos = list((tmp_path / "samples").glob("*.mp4"))
    assert [v.name for v in videos] == ["epoch001_step2_spk00_clip000.mp4"]
    assert read_frames(videos[0]).shape == (WINDOW, 32, 64, 3)


def test_logs_to_wandb(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    from lightning.pytorch.loggers import WandbLogger

    wandb.teardown()  # an earlier in-process run may have set wandb up with WANDB_MODE=disabled
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = WandbLogger(save_dir=str(tmp_path), project="csg-test", offline=True)
    _fit(tmp_path, SkeletonSampleCallback(num_samples=1, size=32, frame_size=(512, 512)), logger=logger)
    logger.experiment.finish()
    logged = [f for root, _, files in os.walk(tmp_path / "wandb") for f in files if f.endswith(".mp4")]
    assert len(logged) == 1, logged


def test_with_the_stage1_model(tmp_path):
    """The real (tiny) SkeletonDiffusion and a datamodule in the contract's batch format."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from stage1_data import SyntheticSkeletonData

    torch.manual_seed(0)
    from tiny_skeleton import tiny_skeleton_diffusion

    model = tiny_skeleton_diffusion(audio_dim=16, warmup_steps=1, num_inference_steps=2, ema_decay=0.0)
    data = SyntheticSkeletonData(window=20, num_prefix=5, batch_size=2)
    trainer = pl.Trainer(
        max_steps=1, val_check_interval=1, limit_val_batches=1, num_sanity_val_steps=0, logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        callbacks=[SkeletonSampleCallback(num_samples=2, num_steps=2, size=48)],
    )  # fmt: skip
    trainer.fit(model, data)
    videos = sorted((tmp_path / "samples").glob("epoch000_step1_*.mp4"))
    assert len(videos) == 2
    frames = read_frames(videos[0])
    assert frames.shape == (20, 48, 96, 3) and frames[:, 12:].mean() > 0.5
