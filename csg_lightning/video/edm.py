"""EDM preconditioning (Karras et al. 2022) with SVD's v-parameterisation, sigma sampling and loss weight.

With data std ``sigma_data`` (1 for SVD latents)::

    c_in   = 1 / sqrt(sigma^2 + sigma_data^2)
    c_skip = sigma_data^2 / (sigma^2 + sigma_data^2)
    c_out  = -sigma * sigma_data / sqrt(sigma^2 + sigma_data^2)      (v-prediction sign, as SVD)
    c_noise = 0.25 * ln(sigma)                                       (the UNet's timestep)
    D(x_sigma) = c_skip * x_sigma + c_out * F(c_in * x_sigma, c_noise)
    lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2

diffusers' ``EulerDiscreteScheduler`` with ``prediction_type="v_prediction"`` and
``timestep_type="continuous"`` applies the same c_in / c_skip / c_out (sigma_data = 1) and passes
``0.25 ln(sigma)`` as the timestep, so training here and sampling there agree.
"""

from __future__ import annotations

import torch


def edm_scalings(sigma: torch.Tensor, sigma_data: float = 1.0) -> tuple[torch.Tensor, ...]:
    """sigma [...] -> (c_in, c_skip, c_out, c_noise), each [...]."""
    sigma = torch.as_tensor(sigma, dtype=torch.float32) if not torch.is_tensor(sigma) else sigma
    total = sigma**2 + sigma_data**2
    c_in = total.rsqrt()
    c_skip = sigma_data**2 / total
    c_out = -sigma * sigma_data * total.rsqrt()
    c_noise = 0.25 * sigma.log()
    return c_in, c_skip, c_out, c_noise


def edm_loss_weight(sigma: torch.Tensor, sigma_data: float = 1.0) -> torch.Tensor:
    """lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma * sigma_data)^2, same shape as sigma."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def sample_sigmas(
    batch_size: int,
    p_mean: float = 0.7,
    p_std: float = 1.6,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Log-normal training noise levels: sigma = exp(p_mean + p_std * n), n ~ N(0, 1) -> [batch_size]."""
    n = torch.randn(
        batch_size, generator=generator, device=generator.device if generator is not None else None
    )
    return (p_mean + p_std * n).exp().to(device)


def append_dims(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """[B] -> [B, 1, ..., 1] with ``ndim`` dims in total (to broadcast over latents)."""
    return x.reshape(x.shape + (1,) * (ndim - x.ndim))


def denoise(
    model_output: torch.Tensor, x_sigma: torch.Tensor, sigma: torch.Tensor, sigma_data: float = 1.0
) -> torch.Tensor:
    """D = c_skip * x_sigma + c_out * F: the denoised estimate from the network output F (sigma [B])."""
    _, c_skip, c_out, _ = edm_scalings(sigma, sigma_data)
    return append_dims(c_skip, x_sigma.ndim) * x_sigma + append_dims(c_out, x_sigma.ndim) * model_output
