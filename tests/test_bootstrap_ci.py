"""Bootstrap confidence intervals over evaluation windows (metrics/bootstrap.py) and their place in the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from csg_lightning.evaluation.report import markdown_table, write_report
from csg_lightning.metrics.beat_consistency import BeatConsistency
from csg_lightning.metrics.bootstrap import (
    WindowStates,
    bootstrap_mean,
    percentile_interval,
    resample_indices,
)
from csg_lightning.metrics.fgd import SkeletonClipFeatures
from csg_lightning.metrics.frechet import FrechetMoments
from csg_lightning.metrics.gesture_suite import METRIC_NAMES, GestureMetrics
from csg_lightning.metrics.hand_metrics import HKC
from csg_lightning.models.skeleton_autoencoder import SkeletonAutoencoder

FPS, SPF = 25, 640


def test_interval_of_a_mean_has_the_textbook_width_and_covers_the_truth():
    # 400 draws of N(3, 2^2): the 95 % interval of the mean is about +-1.96 * 2 / 20 = +-0.196
    values = np.random.default_rng(1).normal(3.0, 2.0, 400)
    lo, hi = bootstrap_mean(values, num_resamples=2000, seed=0)
    assert lo < values.mean() < hi
    assert lo < 3.0 < hi
    assert hi - lo == pytest.approx(2 * 1.96 * 2.0 / 20, rel=0.15)
    assert bootstrap_mean(values, seed=0) == bootstrap_mean(values, seed=0)  # fixed draws


def test_percentile_interval_drops_undefined_resamples_and_checks_the_level():
    assert percentile_interval(np.array([np.nan, 1.0, 2.0, 3.0]), 0.5) == (1.5, 2.5)
    assert all(np.isnan(percentile_interval(np.array([np.nan]))))
    with pytest.raises(ValueError, match="level"):
        percentile_interval(np.arange(3.0), 1.5)
    with pytest.raises(ValueError, match="0 windows"):
        resample_indices(0)


def test_window_states_reproduce_the_metric_and_a_plain_mean_bootstrap():
    # HKC per window: a RunningMean of equal counts, so its bootstrap is the bootstrap of the window means
    rng = np.random.default_rng(0)
    states, full, means = WindowStates(HKC()), HKC(), []
    for _ in range(30):
        scores = torch.from_numpy(rng.uniform(0, 1, (1, 10, 134)).astype(np.float32))
        kp = torch.zeros(1, 10, 134, 2)
        states.update(kp, scores)
        full.update(kp, scores)
        means.append(float(scores[0, :, 92:].double().mean()))
    assert states.value(range(30)) == pytest.approx(float(full.compute()), rel=1e-12)
    assert states.interval(500, seed=3) == pytest.approx(bootstrap_mean(np.array(means), 500, seed=3), rel=1e-9)


def test_window_states_of_a_frechet_distance_equal_the_full_computation():
    rng = np.random.default_rng(0)
    states, full = WindowStates(FrechetMoments(4)), FrechetMoments(4)
    for _ in range(12):
        real, fake = (torch.from_numpy(rng.normal(size=(3, 4))) for _ in range(2))
        fake = fake + 0.5

        def update(metric, real=real, fake=fake):
            metric.update(real, real=True)
            metric.update(fake, real=False)

        states.record(update)
        update(full)
    assert states.value(range(12)) == pytest.approx(float(full.compute()), rel=1e-9)
    lo, hi = states.interval(300)
    assert 0 < lo < hi


def test_bc_interval_is_a_ratio_of_sums_over_windows():
    # window k: 2 audio beats, motion beats that hit both (k even) or neither (k odd): BC = 0.5 exactly,
    # and a resample of 20 windows gives #hit windows / 20
    frames, sr = 100, 16000
    audio = np.zeros(frames * SPF, np.float32)
    burst = np.random.default_rng(0).normal(0, 0.5, 1600) * np.exp(-np.arange(1600) / 400)
    for t in (1.0, 3.0):
        audio[int(t * sr) : int(t * sr) + 1600] = burst
    audio = torch.from_numpy(audio)[None]
    t = torch.arange(frames) / FPS
    base = torch.from_numpy(np.random.default_rng(1).uniform(150, 350, (134, 2)).astype(np.float32))
    states, full = WindowStates(BeatConsistency()), BeatConsistency()
    for k in range(20):
        phase = 0.0 if k % 2 == 0 else 0.5  # speed minima at 1 s and 3 s (+ 0.5 s when k is odd)
        kp = base[None].repeat(frames, 1, 1)
        kp[..., 0] += 20 * torch.cos(torch.pi * (t - 1.0 - phase) / 2.0)[:, None]
        states.update(kp[None], torch.ones(1, frames, 134), audio)
        full.update(kp[None], torch.ones(1, frames, 134), audio)
    assert states.value(range(20)) == pytest.approx(float(full.compute()))
    lo, hi = states.interval(1000)
    assert lo < float(full.compute()) < hi and hi - lo > 0.2  # 20 windows of 0 or 1: a wide interval


def test_gesture_metrics_give_an_interval_for_every_metric_and_keep_their_values():
    torch.manual_seed(0)
    enc = SkeletonAutoencoder(hidden=16, latent_dim=8, clip_frames=16)
    features = SkeletonClipFeatures(enc, {"mean": np.zeros(246, np.float32), "std": np.full(246, 10.0, np.float32)})
    plain, per_window = GestureMetrics(features), GestureMetrics(features, per_window=True)
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        gt = 250 + 30 * torch.randn(3, 32, 134, 2, generator=g)
        pred = gt + 5 * torch.randn(3, 32, 134, 2, generator=g)
        sc = torch.ones(3, 32, 134)
        audio = 0.1 * torch.randn(3, 32 * SPF, generator=g)
        for m in (plain, per_window):
            m.update(pred, sc, gt, sc, audio)
    assert plain.compute() == per_window.compute()
    intervals = per_window.intervals(200)
    assert set(intervals) == set(METRIC_NAMES)
    for name, (lo, hi) in intervals.items():
        assert np.isfinite(lo) and np.isfinite(hi) and lo <= hi, name
    with pytest.raises(RuntimeError, match="per_window=True"):
        plain.intervals()


def test_report_shows_intervals_beside_every_value(tmp_path):
    rows = {"model": {"BC": 0.589, "FGD": 1.5}, "shuffled_audio": {"BC": 0.583, "FGD": float("nan")}}
    intervals = {"model": {"BC": [0.571, 0.607], "FGD": [1.2, 1.9]}, "shuffled_audio": {"BC": [0.565, 0.6]}}
    meta = {"intervals": {"description": "95% bootstrap", "rows": intervals}, "num_windows": 48}
    report = write_report(tmp_path, "t", rows, meta, ["FGD", "BC"])
    md = (tmp_path / "report.md").read_text()
    assert "| model | 1.5 [1.2, 1.9] | 0.589 [0.571, 0.607] |" in md
    assert "| shuffled_audio | – | 0.583 [0.565, 0.6] |" in md
    assert "In brackets: 95% bootstrap." in md and "- intervals:" not in md
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["meta"]["intervals"]["rows"]["model"]["BC"] == [0.571, 0.607]
    assert set(saved) == {"model", "shuffled_audio", "meta"} and report["model"]["BC"] == 0.589
    assert "[" not in markdown_table(rows, ["FGD", "BC"])  # without intervals: plain values
