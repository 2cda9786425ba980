"""Gesture metrics on synthetic skeletons whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csg_lightning.metrics.beat_consistency import BeatConsistency
from csg_lightning.metrics.diversity import Diversity, L1Div, mean_pair_l1
from csg_lightning.metrics.fgd import FGD, SkeletonClipFeatures
from csg_lightning.metrics.hand_metrics import HKC, HKV
from csg_lightning.metrics.lip_sync import LipSync
from csg_lightning.metrics.paired_error import MPJPE, PCK
from csg_lightning.models.skeleton_autoencoder import SkeletonAutoencoder
from csg_lightning.skeleton.layout import SkeletonLayout

FPS, SR, SPF = 25, 16000, 640


def base_pose(seed: int = 0) -> torch.Tensor:
    """A fixed random 134-point pose [134, 2] in a 512-pixel frame."""
    return torch.from_numpy(np.random.default_rng(seed).uniform(150, 350, size=(134, 2)).astype(np.float32))


def swaying(frames: int, period: float, phase: float, amplitude: float = 20.0) -> torch.Tensor:
    """[1, T, 134, 2]: the whole skeleton sways in x as A cos(pi (t - phase) / period): speed minima at
    phase + k * period seconds."""
    t = torch.arange(frames) / FPS
    dx = amplitude * torch.cos(torch.pi * (t - phase) / period)
    kp = base_pose()[None].repeat(frames, 1, 1)
    kp[..., 0] += dx[:, None]
    return kp[None]


def clicks(frames: int, times: list[float]) -> torch.Tensor:
    """[1, T * 640] audio: silence with short noise bursts starting at ``times`` (seconds)."""
    audio = np.zeros(frames * SPF, np.float32)
    rng = np.random.default_rng(0)
    for t in times:
        s = int(t * SR)
        audio[s : s + 1600] = rng.normal(0, 0.5, 1600) * np.exp(-np.arange(1600) / 400)
    return torch.from_numpy(audio)[None]


def test_bc_is_high_when_motion_beats_coincide_with_onsets_and_falls_with_shift():
    frames, period = 125, 0.8
    audio = clicks(frames, [0.8, 1.6, 2.4, 3.2, 4.0])
    scores = torch.ones(1, frames, 134)
    values = []
    for shift in (0.0, 0.1, 0.2, 0.4):
        bc = BeatConsistency()
        bc.update(swaying(frames, period, shift), scores, audio)
        values.append(float(bc.compute()))
    assert values[0] > 0.8, values
    assert all(a > b for a, b in zip(values, values[1:], strict=False)), values
    assert values[-1] < 0.1, values
    still = BeatConsistency()
    still.update(base_pose()[None, None].repeat(1, frames, 1, 1), scores, audio)
    assert float(still.compute()) == 0.0  # no motion beats at all
    assert still.per_window().shape == (1,)


def test_bc_ignores_unconfident_points_and_checks_shapes():
    frames = 100
    kp = swaying(frames, 0.8, 0.0)
    with pytest.raises(ValueError, match="audio must be"):
        BeatConsistency().update(kp, torch.ones(1, frames, 134), torch.zeros(1, 10))
    with pytest.raises(ValueError, match="keypoints must be"):
        BeatConsistency().update(kp[..., :133, :], torch.ones(1, frames, 133), torch.zeros(1, frames * SPF))


def _encoder_features() -> SkeletonClipFeatures:
    torch.manual_seed(0)
    encoder = SkeletonAutoencoder(hidden=16, latent_dim=8, clip_frames=16)
    return SkeletonClipFeatures(
        encoder, {"mean": np.zeros(246, np.float32), "std": np.full(246, 10.0, np.float32)}
    )


def test_diversity_is_zero_for_identical_samples_and_positive_otherwise():
    features = _encoder_features()
    same = swaying(48, 0.8, 0.0).repeat(4, 1, 1, 1)
    scores = torch.ones(4, 48, 134)
    div = Diversity(features)
    div.update(same[:, :16], scores[:, :16])  # one clip per window: identical features
    assert float(div.compute()) == pytest.approx(0.0, abs=1e-6)
    varied = same + torch.randn(same.shape, generator=torch.Generator().manual_seed(0)) * 5
    div = Diversity(features)
    div.update(varied, scores)
    assert float(div.compute()) > 0.01
    # random pairs (fixed seed) when there are more pairs than max_pairs
    f = torch.randn(50, 3)
    assert float(mean_pair_l1(f, max_pairs=100, seed=0)) == float(mean_pair_l1(f, max_pairs=100, seed=0))


def test_l1div_and_hkv_are_zero_for_a_still_pose_and_grow_with_motion():
    still = base_pose()[None, None].repeat(2, 30, 1, 1)
    scores = torch.ones(2, 30, 134)
    for metric in (L1Div(), HKV()):
        metric.update(still, scores)
        assert float(metric.compute()) == pytest.approx(0.0, abs=1e-9)
    moving = still.clone()
    hands = torch.as_tensor(SkeletonLayout.HANDS)
    moving[:, :, hands, 1] += torch.linspace(0, 10, 30)[None, :, None]  # fingers move relative to wrists
    l1, hkv = L1Div(), HKV()
    l1.update(moving, scores)
    hkv.update(moving, scores)
    ramp = torch.linspace(0, 10, 30).double()
    assert float(l1.compute()) == pytest.approx(float((ramp - ramp.mean()).abs().mean()) * 42 / 246, rel=1e-5)
    # variance of a linear ramp 0..10 over 30 frames (unbiased)
    assert float(hkv.compute()) == pytest.approx(float(torch.linspace(0, 10, 30).double().var()), rel=1e-5)
    low = scores.clone()
    low[:, :, hands] = 0.3  # unconfident hands are left out
    hkv = HKV()
    hkv.update(moving, low)
    assert torch.isnan(hkv.compute())
    hkc = HKC()
    hkc.update(moving, low)
    assert float(hkc.compute()) == pytest.approx(0.3)


def test_paired_errors():
    gt = swaying(20, 0.8, 0.0)
    scores = torch.ones(1, 20, 134)
    mpjpe, pck = MPJPE(), PCK()
    mpjpe.update(gt, gt, scores)
    pck.update(gt, gt, scores)
    assert float(mpjpe.compute()) == 0.0 and float(pck.compute()) == 1.0
    pred = gt.clone()
    pred[:, :, SkeletonLayout.FACE] += torch.tensor([3.0, 4.0])  # face moves 5 px relative to the nose
    mpjpe, pck = MPJPE(), PCK(alpha=1e-3)
    mpjpe.update(pred, gt, scores)
    pck.update(pred, gt, scores)
    assert float(mpjpe.compute()) == pytest.approx(5.0 * 68 / 123, rel=1e-5)
    assert float(pck.compute()) == pytest.approx(55 / 123, rel=1e-6)
    translated = gt + 50.0  # a global shift is no error in the local representation
    mpjpe = MPJPE()
    mpjpe.update(translated, gt, scores)
    assert float(mpjpe.compute()) == pytest.approx(0.0, abs=1e-4)


def test_lip_sync_is_high_when_the_mouth_follows_loudness():
    frames = 100
    loud = (1 + np.sin(np.arange(frames) / 4.0)).astype(np.float32)
    audio = torch.from_numpy(np.repeat(loud, SPF) * np.random.default_rng(0).choice([-1, 1], frames * SPF))[
        None
    ]
    kp = base_pose()[None, None].repeat(1, frames, 1, 1)
    kp[0, :, SkeletonLayout.LOWER_INNER_LIP, 1] += torch.from_numpy(loud) * 5
    scores = torch.ones(1, frames, 134)
    synced, frozen = LipSync(), LipSync()
    synced.update(kp, scores, audio)
    frozen.update(base_pose()[None, None].repeat(1, frames, 1, 1), scores, audio)
    assert float(synced.compute()) > 0.95
    assert float(frozen.compute()) == 0.0


def test_fgd_is_zero_for_the_same_set_and_positive_for_another():
    features = _encoder_features()
    gen = torch.Generator().manual_seed(1)
    real = swaying(64, 0.8, 0.0).repeat(6, 1, 1, 1) + torch.randn(6, 64, 134, 2, generator=gen) * 3
    scores = torch.ones(6, 64, 134)
    fgd = FGD(features)
    fgd.update(real, scores, real=True)
    fgd.update(real, scores, real=False)
    assert float(fgd.compute()) == pytest.approx(0.0, abs=1e-6)
    fgd = FGD(features)
    fgd.update(real, scores, real=True)
    fgd.update(real * 1.3, scores, real=False)
    assert float(fgd.compute()) > 1e-3
    with pytest.raises(ValueError, match="shorter than clip_frames"):
        fgd.update(real[:, :8], scores[:, :8], real=True)
