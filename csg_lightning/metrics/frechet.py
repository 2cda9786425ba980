"""Fréchet distance between two Gaussians fitted to feature sets (shared by FGD, FID and FVD).

For features X (real) and Y (generated) with means mu_x, mu_y and covariances S_x, S_y:

    d^2 = ||mu_x - mu_y||^2 + Tr(S_x + S_y - 2 (S_x S_y)^(1/2))

computed in float64 with ``scipy.linalg.sqrtm``; when the product is near singular, eps * I is
added to both covariances (the usual remedy), and a negligible imaginary part from numerical error
is dropped. :class:`FrechetMoments` is the torchmetrics base that accumulates the moments
(sum, sum of outer products, count) of both sets; its states are summed across DDP ranks.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import torch
from torchmetrics import Metric


def _as_f64(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance of N(mu1 [D], sigma1 [D, D]) and N(mu2, sigma2) (numpy or torch; float64)."""
    mu1, mu2, sigma1, sigma2 = (
        _as_f64(mu1),
        _as_f64(mu2),
        np.atleast_2d(_as_f64(sigma1)),
        np.atleast_2d(_as_f64(sigma2)),
    )
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"frechet_distance: shapes mu {mu1.shape}/{mu2.shape}, sigma {sigma1.shape}/{sigma2.shape} disagree"
        )
    diff = mu1 - mu2
    with warnings.catch_warnings():  # near-singular products are handled below
        warnings.simplefilter("ignore")
        covmean, _ = scipy.linalg.sqrtm(sigma1 @ sigma2, disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def mean_cov(features) -> tuple[np.ndarray, np.ndarray]:
    """[N, D] features -> mean [D] and unbiased covariance [D, D] (float64)."""
    x = _as_f64(features)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"mean_cov: expected [N >= 2, D] features, got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def moments_to_mean_cov(total, outer, count) -> tuple[np.ndarray, np.ndarray]:
    """Sum [D], sum of outer products [D, D] and count of N samples -> mean, unbiased covariance."""
    total, outer, n = _as_f64(total), _as_f64(outer), float(_as_f64(count))
    if n < 2:
        raise ValueError(f"Fréchet distance needs at least 2 samples per set, got {int(n)}")
    mean = total / n
    cov = (outer - n * np.outer(mean, mean)) / (n - 1)
    return mean, cov


def frechet_distance_features(real, fake) -> float:
    """Fréchet distance between two feature sets [N, D] and [M, D]."""
    return frechet_distance(*mean_cov(real), *mean_cov(fake))


class FrechetMoments(Metric):
    """Accumulates the first two moments of real and generated features [N, D]; ``compute`` -> distance.

    Subclasses turn their inputs into features and call :meth:`update_features`. States are float64
    sums (summed over DDP ranks), so the result does not depend on how samples were split.
    """

    full_state_update = False
    higher_is_better = False

    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_features = int(num_features)
        d = self.num_features
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update_features(self, features: torch.Tensor, real: bool) -> None:
        """features [N, D] of real (``real=True``) or generated samples."""
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}: expected features [N, {self.num_features}], got {tuple(features.shape)}"
            )
        f = features.detach().to(torch.float64)
        side = "real" if real else "fake"
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + f.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + f.T @ f)
        setattr(self, f"{side}_count", getattr(self, f"{side}_count") + f.shape[0])

    def update(self, features: torch.Tensor, real: bool) -> None:
        """features [N, D] (subclasses take their own inputs and call :meth:`update_features`)."""
        self.update_features(features, real)

    def compute(self) -> torch.Tensor:
        real = moments_to_mean_cov(self.real_sum, self.real_outer, self.real_count)
        fake = moments_to_mean_cov(self.fake_sum, self.fake_outer, self.fake_count)
        return torch.tensor(frechet_distance(*real, *fake), dtype=torch.float64)
