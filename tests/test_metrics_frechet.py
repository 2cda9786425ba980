"""The shared Fréchet distance (FGD / FID / FVD) against a direct scipy computation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from csg_lightning.metrics.frechet import (
    FrechetMoments,
    frechet_distance,
    frechet_distance_features,
    mean_cov,
)


def _scipy_frechet(x: np.ndarray, y: np.ndarray) -> float:
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))


def test_frechet_distance_equals_a_scipy_computation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    y = rng.normal(loc=0.5, scale=1.5, size=(150, 8)) @ rng.normal(size=(8, 8))
    expected = _scipy_frechet(x, y)
    assert frechet_distance_features(x, y) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(*mean_cov(torch.from_numpy(x)), *mean_cov(y)) == pytest.approx(expected, rel=1e-9)
    assert expected > 1.0


def test_same_features_give_zero_and_shift_gives_squared_norm():
    x = np.random.default_rng(1).normal(size=(100, 4))
    assert frechet_distance_features(x, x) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance_features(x, x + 2.0) == pytest.approx(4 * 4.0, rel=1e-6)


def test_moments_metric_matches_direct_computation_in_batches():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(90, 6)), rng.normal(1.0, 2.0, size=(70, 6))
    metric = FrechetMoments(6)
    for chunk in np.array_split(x, 4):
        metric.update(torch.from_numpy(chunk).float(), real=True)
    for chunk in np.array_split(y, 3):
        metric.update(torch.from_numpy(chunk).float(), real=False)
    expected = _scipy_frechet(
        x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)
    )
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match=r"features \[N, 6\]"):
        metric.update(torch.zeros(3, 5), real=True)


def test_too_few_samples_is_a_clear_error():
    metric = FrechetMoments(3)
    metric.update(torch.zeros(1, 3), real=True)
    metric.update(torch.zeros(5, 3), real=False)
    with pytest.raises(ValueError, match="at least 2 samples"):
        metric.compute()
