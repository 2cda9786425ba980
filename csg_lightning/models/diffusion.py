"""Forward diffusion and sampler construction with diffusers schedulers (we never write a scheduler).

Training noise comes from a ``DDPMScheduler`` (100 steps, ``squaredcos_cap_v2`` cosine schedule,
or the release's ``cosine_tau_2`` given as ``trained_betas`` (``noise_schedule.py``), no sample
clipping since features are z-scores). Samplers are any diffusers scheduler class,
built from the training scheduler's config with ``from_config`` so they share its betas and
prediction type.
"""

from __future__ import annotations

from typing import Any

import diffusers
import torch
from diffusers import DDPMScheduler

from csg_lightning.models.noise_schedule import named_trained_betas

PREDICTION_TYPES = ("sample", "epsilon", "v_prediction")


class DiffusionProcess:
    """Noise schedule, training targets and samplers for one prediction type (not an nn.Module).

    Built from the YAML (``experiments/components/skeleton/diffusion/*.yaml``); ``num_inference_steps``
    and ``eta`` are the sampler's defaults (the pipeline's ``num_steps`` overrides the former).
    """

    def __init__(
        self,
        num_train_timesteps: int = 100,
        beta_schedule: str = "squaredcos_cap_v2",
        prediction_type: str = "sample",
        sampler: str = "DDIMScheduler",
        sampler_kwargs: dict[str, Any] | None = None,
        num_inference_steps: int = 25,
        eta: float = 0.0,
    ) -> None:
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"diffusion.prediction_type: expected one of {PREDICTION_TYPES}, got {prediction_type!r}"
            )
        self.prediction_type = prediction_type
        self.num_inference_steps = int(num_inference_steps)
        self.eta = float(eta)
        self.train_scheduler = DDPMScheduler(
            num_train_timesteps=num_train_timesteps,
            beta_schedule=beta_schedule,
            prediction_type=prediction_type,
            clip_sample=False,
            trained_betas=named_trained_betas(beta_schedule, num_train_timesteps),  # cosine_tau_<x>; else None
        )
        self.sampler_name = sampler
        # "trailing" spacing makes few-step samplers start at the last training timestep.
        self.sampler_kwargs = {"timestep_spacing": "trailing", **(sampler_kwargs or {})}
        self.make_sampler()  # fail early on a bad sampler name

    @property
    def num_train_timesteps(self) -> int:
        return int(self.train_scheduler.config.num_train_timesteps)

    def sample_timesteps(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """[B] int64 uniform in [0, num_train_timesteps)."""
        return torch.randint(0, self.num_train_timesteps, (batch_size,), device=device)

    def _alphas(self, timesteps: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        acp = self.train_scheduler.alphas_cumprod.to(device=like.device, dtype=torch.float32)[timesteps]
        shape = (-1,) + (1,) * (like.dim() - 1)
        return acp.sqrt().view(shape), (1 - acp).sqrt().view(shape)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(a_t) x0 + sqrt(1 - a_t) noise; all [B, ...]."""
        return self.train_scheduler.add_noise(x0, noise, timesteps)

    def target(self, x0: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """The regression target of the network for the configured prediction type."""
        if self.prediction_type == "sample":
            return x0
        if self.prediction_type == "epsilon":
            return noise
        return self.train_scheduler.get_velocity(x0, noise, timesteps)

    def predicted_x0(
        self, prediction: torch.Tensor, x_t: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """Clean-sample estimate implied by a network prediction (for the velocity loss)."""
        if self.prediction_type == "sample":
            return prediction
        a, s = self._alphas(timesteps, x_t)
        if self.prediction_type == "epsilon":
            return (x_t - s * prediction) / a
        return a * x_t - s * prediction

    def make_sampler(self, name: str | None = None, **kwargs: Any):
        """A fresh diffusers scheduler instance (``diffusers.<name>``) sharing the training config."""
        name = name or self.sampler_name
        cls = getattr(diffusers, name, None)
        if cls is None or not hasattr(cls, "from_config"):
            raise ValueError(
                f"diffusion.sampler: '{name}' is not a diffusers scheduler class (e.g. DDIMScheduler)"
            )
        return cls.from_config(self.train_scheduler.config, **{**self.sampler_kwargs, **kwargs})
