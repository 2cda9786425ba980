"""A Stage-2 VAE on a finer latent grid (the demo VAE at 1/4 size): the VAE, PoseNet and the pose-video data
agree on it, a disagreement is refused by name, and the chain trains on it with a real Trainer."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from csg_lightning.data.rendered_pose_video import RenderedPoseVideoDataModule
from csg_lightning.video.demo_vae import DemoVAE
from csg_lightning.video.svd_parts import build_parts
from csg_lightning.video.vae_latents import vae_downsample
from csg_lightning.video.video_generator import VideoGenerator

QUARTER_VAE = {"class_path": "csg_lightning.video.demo_vae.DemoVAE",
               "init_args": {"block_out_channels": [16, 16, 16], "latent_channels": 4, "sample_size": 32}}  # fmt: skip


def test_demo_vae_at_quarter_size():
    vae = DemoVAE(block_out_channels=(16, 16, 16), latent_channels=4, sample_size=32).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    z = vae.encode(x).latent_dist.mode()
    assert z.shape == (2, 4, 8, 8) and vae.decode(z).sample.shape == (2, 3, 32, 32)
    assert vae_downsample(vae) == vae.downsample == 4
    assert vae_downsample(DemoVAE()) == 8 and vae_downsample(build_parts(preset="tiny").vae) == 8
    with pytest.raises(ValueError, match="multiples of 4"):
        vae.encode(torch.zeros(1, 3, 30, 32))
    with pytest.raises(ValueError, match="2 to 4 positive widths"):
        DemoVAE(block_out_channels=(16,))


def test_video_generator_puts_posenet_on_the_vae_grid_and_refuses_a_mismatch():
    model = VideoGenerator.from_preset("tiny", vae=QUARTER_VAE, ema_decay=0)
    assert model.latent_downsample == 4 and model.net.pose_net.downsample == 4  # the default PoseNet follows
    eight = {"class_path": "csg_lightning.video.pose_net.PoseNet", "init_args": {"out_channels": 32}}
    with pytest.raises(ValueError, match=r"1/4 of the frame size but PoseNet downsamples 8x.*downsample: 4"):
        VideoGenerator.from_preset("tiny", vae=QUARTER_VAE, pose_net=eight, ema_decay=0)


def _data(shards, grid: int) -> RenderedPoseVideoDataModule:
    return RenderedPoseVideoDataModule(data_dir=str(shards), num_workers=0, num_speakers=2, clip_seconds=1.0,
                                       batch_size=2, num_frames=3, frame_stride=2, height=32, width=32,
                                       reference_first=True, latent_downsample=grid)  # fmt: skip


def test_the_chain_trains_on_a_quarter_size_latent(demo_shards_video):
    dm = _data(demo_shards_video, 4)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["hand_mask"].shape == (2, 3, 8, 8)  # the hand masks on the 8 x 8 latent grid of 32 px frames
    model = VideoGenerator.from_preset("tiny", vae=QUARTER_VAE, ema_decay=0)
    before = [p.detach().clone() for p in model.net.pose_net.parameters()]
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, limit_val_batches=0, num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 2 and torch.isfinite(trainer.callback_metrics["train/loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.net.pose_net.parameters(), strict=True))
    wrong = VideoGenerator.from_preset("tiny", vae=QUARTER_VAE, ema_decay=0)
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, limit_val_batches=0, num_sanity_val_steps=0)  # fmt: skip
    with pytest.raises(ValueError, match=r"data.latent_downsample=8 but the VAE's latents are 1/4"):
        trainer.fit(wrong, datamodule=_data(demo_shards_video, 8))
