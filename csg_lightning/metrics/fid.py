"""FID: Fréchet Inception Distance of video frames, with the Inception network from a local TorchScript file.

Definition: features of every real and generated frame (uint8 [N, 3, H, W]) from the feature network;
FID = Fréchet distance (``frechet.py``, float64) between the Gaussians of both sets. Lower is better.

The accumulation (and DDP sync) is torchmetrics' ``FrechetInceptionDistance`` given our module as
``feature``; only the final distance uses the project's shared Fréchet code. The weight file is a
TorchScript module taking uint8 images [N, 3, H, W] and returning [N, D] features, e.g. the
``inception-2015-12-05.pt`` of the StyleGAN2-ADA metrics with ``forward_kwargs={"return_features": True}``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from csg_lightning.metrics.frechet import frechet_distance, moments_to_mean_cov
from csg_lightning.metrics.weights import ScriptedFeatures, load_torchscript

FID_WEIGHTS_HINT = (
    "a TorchScript Inception feature network (uint8 [N, 3, H, W] -> [N, 2048]), e.g. inception-2015-12-05.pt "
    "from the StyleGAN2-ADA metrics (with forward_kwargs return_features: true)"
)


class FID(FrechetInceptionDistance):
    """``update(frames uint8 [N, 3, H, W], real: bool)``; ``compute()`` -> FID (float64)."""

    def __init__(
        self,
        weights: str | Path,
        forward_kwargs: dict | None = None,
        probe_size: int = 299,
        **kwargs,
    ) -> None:
        module = load_torchscript(weights, "FID", FID_WEIGHTS_HINT)
        probe = torch.zeros(1, 3, probe_size, probe_size, dtype=torch.uint8)
        super().__init__(feature=ScriptedFeatures(module, probe, forward_kwargs), normalize=False, **kwargs)
        self.weights_path = str(weights)

    def compute(self) -> torch.Tensor:
        real = moments_to_mean_cov(
            self.real_features_sum, self.real_features_cov_sum, self.real_features_num_samples
        )
        fake = moments_to_mean_cov(
            self.fake_features_sum, self.fake_features_cov_sum, self.fake_features_num_samples
        )
        return torch.tensor(frechet_distance(*real, *fake), dtype=torch.float64)
