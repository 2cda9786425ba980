"""Diffusion process, samplers, guidance, loss, windowed generation, EMA and LR schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from csg_lightning.models.denoiser import SkeletonDenoiser
from csg_lightning.models.diffusion import DiffusionProcess
from csg_lightning.models.ema import EMAWeights
from csg_lightning.models.loss import DiffusionLoss, masked_mse, part_losses, velocity_mse
from csg_lightning.models.lr_schedule import WarmupCosineLR, warmup_cosine
from csg_lightning.pipelines.guider import ConstantGuider
from csg_lightning.pipelines.skeleton_pipeline import SkeletonPipeline
from csg_lightning.pipelines.window_chain import chain_windows as generate_long
from csg_lightning.pipelines.window_chain import crossfade, window_starts
from csg_lightning.skeleton.smoothing import savgol_smooth

B, P, W, C = 2, 4, 10, 8


def _net() -> SkeletonDenoiser:
    torch.manual_seed(0)
    return SkeletonDenoiser(audio_dim=C, width=32, depth=1, num_heads=2, ff_dim=64, dropout=0.0).eval()


def _pipeline(net, process, scale=3.5) -> SkeletonPipeline:
    return SkeletonPipeline(None, net, process, ConstantGuider(scale), None, window_frames=W, prefix_frames=P)


def sample_window(net, process, prefix, audio, window, steps, scale, generator, sampler=None):
    """The pipeline's sampling loop for one window (another diffusers sampler: ``sampler``)."""
    if sampler is not None:
        process = DiffusionProcess(prediction_type=process.prediction_type, sampler=sampler)
    return _pipeline(net, process, scale).denoise(prefix, audio, window, steps, generator=generator)


def guided_prediction(net, x, t, audio, num_prefix, scale):
    return _pipeline(net, DiffusionProcess()).guided_prediction(x, t, audio, num_prefix, ConstantGuider(scale))


def _cond():
    g = torch.Generator().manual_seed(0)
    return torch.randn(B, P, 246, generator=g), torch.randn(B, P + W, C, generator=g)


@pytest.mark.parametrize("steps", [10, 25, 50])
def test_ddim_steps_give_finite_windows(steps):
    process = DiffusionProcess(prediction_type="sample")
    prefix, audio = _cond()
    out = sample_window(_net(), process, prefix, audio, W, steps, 3.5, torch.Generator().manual_seed(0))
    assert out.shape == (B, W, 246) and torch.isfinite(out).all()
    sched = process.make_sampler()
    sched.set_timesteps(steps)
    assert len(sched.timesteps) == steps and int(sched.timesteps[0]) == 99  # trailing spacing


def test_same_seed_same_sample_and_other_samplers():
    process = DiffusionProcess()
    prefix, audio = _cond()
    net = _net()
    a = sample_window(net, process, prefix, audio, W, 5, 2.0, torch.Generator().manual_seed(3))
    b = sample_window(net, process, prefix, audio, W, 5, 2.0, torch.Generator().manual_seed(3))
    c = sample_window(net, process, prefix, audio, W, 5, 2.0, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    for name in ("EulerDiscreteScheduler", "DPMSolverMultistepScheduler", "DDPMScheduler"):
        out = sample_window(
            net, process, prefix, audio, W, 8, 2.0, torch.Generator().manual_seed(0), sampler=name
        )
        assert torch.isfinite(out).all(), name
    with pytest.raises(ValueError, match="diffusion.sampler"):
        DiffusionProcess(sampler="NotAScheduler")
    with pytest.raises(ValueError, match="prediction_type"):
        DiffusionProcess(prediction_type="x0")


def test_guidance_scale_one_is_the_conditional_prediction():
    net = _net()
    with torch.no_grad():
        net.audio.null.normal_()  # distinct unconditional branch
    prefix, audio = _cond()
    x = torch.cat([prefix, torch.randn(B, W, 246)], dim=1)
    t = torch.tensor([10, 60])
    no_drop, all_drop = torch.zeros(B, dtype=torch.bool), torch.ones(B, dtype=torch.bool)
    with torch.no_grad():
        cond = net(x, t, audio, no_drop, P)
        uncond = net(x, t, audio, all_drop, P)
        assert torch.allclose(guided_prediction(net, x, t, audio, P, 1.0), cond, atol=1e-6)
        guided = guided_prediction(net, x, t, audio, P, 3.5)  # one batched forward of 2B
    assert not torch.allclose(cond, uncond, atol=1e-4)
    assert torch.allclose(guided, uncond + 3.5 * (cond - uncond), atol=1e-4)


class _Oracle(nn.Module):
    """Knows the clean window: returns the exact target for its prediction type (a known-answer model)."""

    def __init__(self, process: DiffusionProcess, x0: torch.Tensor) -> None:
        super().__init__()
        self.process, self.x0 = process, x0

    def forward(self, x, t, audio, drop, num_prefix):
        x_t = x[:, num_prefix:]
        a, s = self.process._alphas(t, x_t)
        noise = (x_t - a * self.x0.repeat(x.shape[0] // self.x0.shape[0], 1, 1)) / s
        x0 = self.x0.repeat(x.shape[0] // self.x0.shape[0], 1, 1)
        return self.process.target(x0, noise, t)


@pytest.mark.parametrize("prediction_type", ["sample", "epsilon", "v_prediction"])
def test_sampler_recovers_the_clean_window_from_an_exact_model(prediction_type):
    process = DiffusionProcess(prediction_type=prediction_type)
    x0 = torch.randn(B, W, 246) * 2.5  # z-scores beyond [-1, 1] must not be clipped
    prefix, audio = _cond()
    out = sample_window(
        _Oracle(process, x0), process, prefix, audio, W, 10, 1.0, torch.Generator().manual_seed(0)
    )
    assert torch.allclose(out, x0, atol=1e-3)


@pytest.mark.parametrize("prediction_type", ["sample", "epsilon", "v_prediction"])
def test_targets_invert_to_x0(prediction_type):
    process = DiffusionProcess(prediction_type=prediction_type)
    x0, noise = torch.randn(3, 7, 246), torch.randn(3, 7, 246)
    t = torch.tensor([0, 50, 99])
    x_t = process.add_noise(x0, noise, t)
    assert torch.allclose(process.predicted_x0(process.target(x0, noise, t), x_t, t), x0, atol=1e-3)


def test_masked_points_do_not_affect_the_loss():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 6, 246, generator=g), torch.randn(2, 6, 246, generator=g)
    mask = (torch.rand(2, 6, 123, generator=g) > 0.3).float()
    loss = masked_mse(pred, target, mask)
    fmask = mask.repeat_interleave(2, -1).bool()
    moved = pred.clone()
    moved[~fmask] += 100.0
    assert torch.allclose(masked_mse(moved, target, mask), loss)
    moved = pred.clone()
    moved[fmask] += 1.0
    assert not torch.allclose(masked_mse(moved, target, mask), loss)
    expected = ((pred - target) ** 2)[fmask].mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    assert masked_mse(pred, target, torch.zeros_like(mask)) == 0
    parts = part_losses(pred, target, mask)
    assert set(parts) == {"body", "face", "hands"}
    moved = pred.clone()
    moved[..., 2 * 81 :] += 5  # hands only
    parts2 = part_losses(moved, target, mask)
    assert torch.allclose(parts2["face"], parts["face"]) and parts2["hands"] > parts["hands"]
    assert velocity_mse(target, target, mask) == 0


def test_window_starts_cover_everything():
    assert window_starts(20, 20, 5) == [0]
    for n in (1, 20, 21, 60, 61, 200):
        starts = window_starts(n, 20, 5)
        assert starts[-1] + 20 >= n and all(b - a == 15 for a, b in zip(starts, starts[1:], strict=False))


def test_crossfade_removes_seams_that_chaining_would_leave():
    """Each synthetic window continues smoothly from its prefix but is offset by a window-specific
    constant (as independent samples are); chained windows jump by the offset, blended ones do not."""
    window, prefix_len, overlap, offset = 20, 5, 5, 10.0

    def make_window(prefix: torch.Tensor, start: int) -> torch.Tensor:
        k = start // (window - overlap)
        ramp = 0.1 * torch.arange(start, start + window, dtype=torch.float32)[:, None]
        return ramp + (offset if k % 2 else 0.0)

    out = generate_long(make_window, 60, window, prefix_len, overlap, torch.zeros(prefix_len, 1))
    assert out.shape == (60, 1)
    jumps = (out[1:] - out[:-1]).abs()
    inner = 0.1
    # stated bound: a seam adds at most offset / (overlap + 1) to the inner frame-to-frame change
    assert jumps.max() <= inner + offset / (overlap + 1) + 1e-5
    chained = generate_long(make_window, 60, window, prefix_len, 0, torch.zeros(prefix_len, 1))
    assert (chained[1:] - chained[:-1]).abs().max() >= offset  # what the paper's chaining would do
    assert torch.allclose(crossfade(torch.zeros(3), torch.ones(3)), torch.tensor([0.25, 0.5, 0.75]))
    with pytest.raises(ValueError, match="num_prefix"):
        generate_long(make_window, 60, 20, 10, 15, torch.zeros(10, 1))


def test_savgol_smooth_keeps_shape_and_lines():
    x = np.cumsum(np.random.default_rng(0).normal(size=(40, 3, 2)), 0).astype(np.float32)
    y = savgol_smooth(x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.abs(np.diff(y, 2, 0)).mean() < np.abs(np.diff(x, 2, 0)).mean()
    line = np.linspace(0, 1, 30, dtype=np.float32)[:, None]
    assert np.allclose(savgol_smooth(line), line, atol=1e-5)
    assert savgol_smooth(x[:2]).shape == (2, 3, 2)


def test_ema_update_apply_restore():
    lin = nn.Linear(2, 2)
    params = dict(lin.named_parameters())
    ema = EMAWeights(params, decay=0.5)
    start = lin.weight.detach().clone()
    with torch.no_grad():
        lin.weight.add_(1.0)
    ema.update()
    d1 = min(0.5, 2 / 11)  # warm-up decay of the first update
    assert torch.allclose(ema.shadow["weight"], d1 * start + (1 - d1) * (start + 1.0), atol=1e-6)
    for _ in range(19):
        ema.update()
    remaining = d1 * np.prod([min(0.5, (1 + n) / (10 + n)) for n in range(2, 21)])
    assert ema.num_updates == 20
    assert torch.allclose(ema.shadow["weight"], start + 1.0 - remaining, atol=1e-6)
    current = lin.weight.detach().clone()
    ema.shadow["weight"] = torch.zeros_like(current)
    with ema.averaged():
        assert torch.equal(lin.weight, torch.zeros_like(current))
    assert torch.equal(lin.weight, current)


def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 10, 100) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 100) == pytest.approx(1.0)
    assert warmup_cosine(10, 10, 100) == pytest.approx(1.0)
    assert warmup_cosine(100, 10, 100, 0.1) == pytest.approx(0.1)
    assert 0.1 < warmup_cosine(55, 10, 100, 0.1) < 1.0
    assert warmup_cosine(10_000, 10, None) == 1.0


def test_warmup_cosine_lr_takes_the_total_from_the_trainer_and_resumes():
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(2))], lr=1.0)
    sched = WarmupCosineLR(opt, warmup_steps=2, min_lr_ratio=0.1)
    sched.set_total_steps(float("inf"))  # unknown length: no decay
    assert sched.total_steps is None
    sched.set_total_steps(10)
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    again = WarmupCosineLR(torch.optim.AdamW([nn.Parameter(torch.zeros(2))], lr=1.0), warmup_steps=2)
    again.load_state_dict(sched.state_dict())
    assert again.total_steps == 10


def test_diffusion_loss_adds_the_velocity_term_only_when_weighted():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 6, 246, generator=g), torch.randn(2, 6, 246, generator=g)
    mask = torch.ones(2, 6, 123)
    plain = DiffusionLoss()(pred, target, mask)
    assert not DiffusionLoss().needs_x0 and set(plain) == {"loss", "loss_target", "loss_body", "loss_face", "loss_hands"}
    weighted = DiffusionLoss(velocity_weight=2.0)(pred, target, mask, pred, target)
    assert torch.allclose(weighted["loss"], plain["loss"] + 2.0 * velocity_mse(pred, target, mask))
