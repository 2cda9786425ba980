"""``fitted_vae``: the Stage-2 VAE part from a :class:`~csg_lightning.video.vae_autoencoder.VAEAutoencoder`
checkpoint (``experiments/video/vae_demo.yaml``), as ``experiments/video/demo.yaml`` names it::

    vae:
      class_path: csg_lightning.video.fitted_vae.fitted_vae
      init_args: {checkpoint: runs/vae-demo/latest/checkpoints/last.ckpt}

The checkpoint is read safely (``checkpoints.safe_load``: ``weights_only``, and it must be one of
``VAEAutoencoder``), the ``AutoencoderKLTemporalDecoder`` is rebuilt from its saved ``class_path`` entry
and its weights loaded. The latent spread measured while fitting (``latent_std`` per channel) is folded
into the weights: the mean and log-variance outputs of ``quant_conv`` are scaled by ``a = 1 /
(scaling_factor x std)`` (log-variance shifted by 2 log a) and the decoder's ``conv_in`` by ``1 / a``, so
the returned VAE reconstructs exactly as fitted while its latents x ``scaling_factor`` (0.18215, as SVD)
have unit spread per channel. The result is an ordinary diffusers VAE: a Stage-2 checkpoint that keeps
its frozen parts (``frozen_in_checkpoint: true``) holds these weights.
"""

from __future__ import annotations

import os

import torch
from diffusers import AutoencoderKLTemporalDecoder
from diffusers.models.modeling_utils import ModelMixin

from csg_lightning.checkpoints.safe_load import CheckpointError, load_module
from csg_lightning.video.demo_vae import DemoVAE

FITTABLE = (AutoencoderKLTemporalDecoder, DemoVAE)


def fitted_vae(checkpoint: str | os.PathLike, normalize: bool = True) -> ModelMixin:
    """The fitted VAE (``AutoencoderKLTemporalDecoder`` or ``DemoVAE``) of a ``VAEAutoencoder`` checkpoint, latents normalised (``normalize``) -> eval mode,
    no gradients. A missing file raises ``FileNotFoundError`` naming it and the recipe that writes it."""
    from csg_lightning.video.vae_autoencoder import VAEAutoencoder

    try:
        module = load_module(VAEAutoencoder, checkpoint, map_location="cpu")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"fitted VAE checkpoint not found: {checkpoint} (model.init_args.vae.init_args.checkpoint); fit one "
            "with `csg fit --config experiments/video/vae_demo.yaml` (make train-vae), or stack "
            "experiments/components/video/parts_tiny.yaml for random tiny parts"
        ) from None
    vae = module.vae
    if not isinstance(vae, FITTABLE):
        raise CheckpointError(
            f"{checkpoint}: its vae is a {type(vae).__name__}, expected diffusers AutoencoderKLTemporalDecoder or DemoVAE"
        )
    if normalize:
        if int(module.stats_seen) == 0:
            raise CheckpointError(
                f"{checkpoint}: no latent statistics (stats_seen = 0: the VAE was never trained); fit it first"
            )
        fold_latent_scale(vae, module.latent_std)
    return vae.requires_grad_(False).eval()


@torch.no_grad()
def fold_latent_scale(vae: AutoencoderKLTemporalDecoder | DemoVAE, latent_std: torch.Tensor) -> torch.Tensor:
    """Scale ``vae``'s latent channels in place so latents x ``scaling_factor`` have spread 1 where they had
    ``latent_std`` [C] (decoding is unchanged) -> the per-channel factors a [C]."""
    channels = int(vae.config.latent_channels)
    std = torch.as_tensor(latent_std, dtype=torch.float32).reshape(-1)
    if std.numel() != channels or not torch.isfinite(std).all() or (std <= 0).any():
        raise ValueError(f"fold_latent_scale: expected {channels} positive finite stds, got {std.tolist()}")
    a = 1.0 / (float(vae.config.scaling_factor) * std)
    quant, conv_in = vae.quant_conv, vae.decoder.conv_in
    dtype = quant.weight.dtype
    quant.weight[:channels] *= a.view(-1, 1, 1, 1).to(dtype)  # posterior mean
    quant.bias[:channels] *= a.to(dtype)
    quant.bias[channels:] += (2.0 * torch.log(a)).to(dtype)  # log-variance: var x a^2
    conv_in.weight.mul_((1.0 / a).view(1, -1, 1, 1).to(conv_in.weight.dtype))
    return a
