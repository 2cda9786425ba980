"""The tiny video generator learns: it overfits one fixed batch; condition dropout and EMA behave."""

from __future__ import annotations

import numpy as np
import torch

from csg_lightning.video.video_generator import VideoGenerator


def _batch(b=2, f=4, size=32, seed=0) -> dict:
    """A smooth moving blob video with matching 'pose' images (uint8, as the datamodule gives)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    frames = np.zeros((b, f, 3, size, size), dtype=np.uint8)
    poses = np.zeros_like(frames)
    for i in range(b):
        color = rng.integers(60, 255, size=3)
        for t in range(f):
            cx, cy = 8 + 3 * t + 4 * i, 12 + 2 * t
            blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 30.0)
            frames[i, t] = (blob[None] * color[:, None, None]).astype(np.uint8)
            poses[i, t, 1] = ((np.abs(xx - cx) + np.abs(yy - cy)) < 4) * 255
    mask = np.zeros((b, f, size // 8, size // 8), dtype=np.float32)
    mask[:, :, 1, 1] = 1
    return {
        "frames": torch.from_numpy(frames), "reference": torch.from_numpy(frames[:, 0].copy()),
        "poses": torch.from_numpy(poses), "reference_pose": torch.from_numpy(poses[:, 0].copy()),
        "hand_mask": torch.from_numpy(mask),
    }  # fmt: skip


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = VideoGenerator.from_preset("tiny", ema_decay=0, cond_drop_prob=0.0)
    batch = _batch()

    def fixed_loss():
        losses = [
            model.diffusion_loss(batch, torch.Generator().manual_seed(s))["loss"].item() for s in range(4)
        ]
        return float(np.mean(losses))

    model.train()
    start = fixed_loss()
    opt = torch.optim.AdamW(model.net.parameters(), lr=2e-3)
    for step in range(120):
        g = torch.Generator().manual_seed(step % 4)  # the same four noise draws, over and over
        loss = model.diffusion_loss(batch, g)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = fixed_loss()
    assert end < 0.3 * start, (start, end)


def test_frozen_parts_get_no_gradients_and_stay_in_eval():
    model = VideoGenerator.from_preset("tiny", ema_decay=0)
    model.train()
    assert not model.vae.training and not model.image_encoder.training
    loss = model.diffusion_loss(_batch())["loss"]
    loss.backward()
    assert all(p.grad is None for p in model.vae.parameters())
    assert all(p.grad is None for p in model.image_encoder.parameters())
    assert all(p.grad is not None for p in model.net.parameters())


def test_condition_dropout_zeroes_clip_and_reference_together():
    from csg_lightning.video.conditioning import drop_conditions

    clip, ref = torch.ones(3, 1, 4), torch.ones(3, 4, 2, 2)
    c, r = drop_conditions(clip, ref, torch.tensor([True, False, True]))
    assert c[:, 0, 0].tolist() == [0, 1, 0] and r[:, 0, 0, 0].tolist() == [0, 1, 0]


def test_validation_loss_is_deterministic():
    torch.manual_seed(0)
    model = VideoGenerator.from_preset("tiny", ema_decay=0).eval()
    batch = _batch()
    a = model.diffusion_loss(batch, torch.Generator().manual_seed(3))["loss"]
    b = model.diffusion_loss(batch, torch.Generator().manual_seed(3))["loss"]
    assert torch.equal(a, b)


def test_reference_residual_trains_on_the_difference_to_the_reference_latent():
    """``reference_residual`` s: the loss sees (frame latents - scaled reference latent) / s."""
    import pytest

    from csg_lightning.video.edm_loss import EDMLoss
    from csg_lightning.video.pixel_range import to_model_range
    from csg_lightning.video.vae_latents import encode_frames

    class Recording(EDMLoss):
        def __call__(self, denoise, x0, hand_mask=None, generator=None):
            self.x0 = x0
            return super().__call__(denoise, x0, hand_mask, generator)

    torch.manual_seed(0)
    batch = _batch()
    model = VideoGenerator.from_preset("tiny", ema_decay=0, reference_residual=0.25)
    model.loss = Recording()
    model.diffusion_loss(batch, torch.Generator().manual_seed(5))
    with torch.no_grad():
        g = torch.Generator().manual_seed(5)  # the latents are the posterior sample drawn first from it
        frames = encode_frames(model.vae, to_model_range(batch["frames"]), sample=True, generator=g)
        ref = model.vae.encode(to_model_range(batch["reference"])).latent_dist.mode() * model.vae.config.scaling_factor
    assert torch.allclose(model.loss.x0, (frames - ref[:, None]) / 0.25, atol=1e-4)
    assert not torch.allclose(model.loss.x0, frames, atol=1e-2)
    with pytest.raises(ValueError, match="reference_residual"):
        VideoGenerator.from_preset("tiny", reference_residual=0.0)
