"""``DemoVAE``: a small convolutional VAE with the interface of SVD's ``AutoencoderKLTemporalDecoder``.

The CPU demo needs a VAE that can be fitted in minutes (``experiments/video/vae_demo.yaml``). The diffusers
VAE classes cannot: their GroupNorm has 32 groups whatever the width, so at the widths a 2-core CPU can
train (32-64 channels) every norm removes each channel's mean per image (the global colour of a flat
backdrop), and a step is ~0.4 s. Fitted for 5 minutes they reconstruct held-out demo speakers at ~19 dB,
below an 8 x 8 thumbnail (26.6 dB). This network has no norms and one stride-2 convolution each way per
width after the first: four widths give 1/8 size (like SVD's VAE; a step takes ~0.03 s and the same minutes
give ~28 dB), three give 1/4 size (a 16 x 16 latent for 64 x 64 frames, so that a forearm spans several
latent cells; PoseNet and the pose-video data then take ``downsample`` / ``latent_downsample`` 4).

Interface (what ``video.vae_latents``, ``video.conditioning`` and ``VAEAutoencoder`` call):
``encode(x [N, 3, H, W] in [-1, 1]).latent_dist`` (diffusers ``DiagonalGaussianDistribution`` over
[N, C, H/d, W/d], d = :attr:`DemoVAE.downsample`) and ``decode(z, num_frames=None).sample`` [N, 3, H, W]
(frames are decoded one by one: ``num_frames`` is accepted and unused). ``config.latent_channels`` / ``config.scaling_factor`` as diffusers;
``quant_conv`` (mean | log-variance) and ``decoder.conv_in`` are named as in diffusers, so
``fitted_vae.fold_latent_scale`` applies unchanged. A diffusers ``ModelMixin``: ``save_pretrained`` /
``from_pretrained`` work as for the SVD parts.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

INITIAL_LOGVAR = (
    -8.0
)  # the posterior starts nearly deterministic (std 0.02): sampling noise does not drown the fit


class DemoDecoder(nn.Module):
    """latents [N, C, h, w] -> pixels [N, out, d h, d w]: conv_in, then nearest x2 + conv per width after the
    first (d = 2 ** (len(widths) - 1))."""

    def __init__(self, latent_channels: int, out_channels: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(latent_channels, widths[-1], 3, padding=1)
        layers: list[nn.Module] = [nn.SiLU()]
        for w_in, w_out in zip(widths[:0:-1], widths[-2::-1], strict=True):
            layers += [
                nn.Upsample(scale_factor=2.0, mode="nearest"),
                nn.Conv2d(w_in, w_out, 3, padding=1),
                nn.SiLU(),
            ]
        self.up = nn.Sequential(*layers)
        self.conv_out = nn.Conv2d(widths[0], out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.up(self.conv_in(z)))


class DemoVAE(ModelMixin, ConfigMixin):
    """Norm-free conv VAE. ``block_out_channels`` (w0, w1, ...; 2 to 4 widths): w1.. are the widths after
    each stride-2 convolution of the encoder, so the latent is 1/2 ** (len - 1) size (4 widths: 1/8, as SVD's
    VAE); the decoder mirrors them and ends at w0 (full size)."""

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        block_out_channels: tuple[int, ...] = (32, 64, 64, 64),
        latent_channels: int = 16,
        sample_size: int = 64,
        scaling_factor: float = 0.18215,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in block_out_channels)
        if not 2 <= len(widths) <= 4 or min(widths) < 1:
            raise ValueError(
                "DemoVAE: block_out_channels must be 2 to 4 positive widths (latents at 1/2, 1/4 or 1/8 size), "
                f"got {block_out_channels}"
            )
        self.downsample = 2 ** (len(widths) - 1)
        layers: list[nn.Module] = []
        prev = in_channels
        for w in widths[1:]:
            layers += [nn.Conv2d(prev, w, 3, stride=2, padding=1), nn.SiLU()]
            prev = w
        layers.append(nn.Conv2d(prev, prev, 3, padding=1))
        self.encoder = nn.Sequential(*layers)
        self.quant_conv = nn.Conv2d(prev, 2 * latent_channels, 1)
        with torch.no_grad():
            self.quant_conv.bias[latent_channels:].fill_(INITIAL_LOGVAR)
        self.decoder = DemoDecoder(latent_channels, out_channels, widths)

    def encode(self, x: torch.Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple:
        """x [N, 3, H, W] in [-1, 1] (H, W multiples of d) -> posterior over [N, C, H/d, W/d] (d: downsample)."""
        d = self.downsample
        if x.ndim != 4 or x.shape[-1] % d or x.shape[-2] % d:
            raise ValueError(
                f"DemoVAE.encode: expected [N, 3, H, W] with H, W multiples of {d}, got {tuple(x.shape)}"
            )
        posterior = DiagonalGaussianDistribution(self.quant_conv(self.encoder(x)))
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    def decode(
        self, z: torch.Tensor, num_frames: int | None = None, return_dict: bool = True
    ) -> DecoderOutput | tuple:
        """z [N, C, h, w] -> pixels [N, 3, d h, d w] (``num_frames``: accepted for the SVD interface, unused)."""
        sample = self.decoder(z)
        return DecoderOutput(sample=sample) if return_dict else (sample,)
