"""The latent grid of Stage 2: one latent cell per ``LATENT_DOWNSAMPLE`` x ``LATENT_DOWNSAMPLE`` pixels.

The SVD VAE and the PoseNet both down-sample frames exactly 8x; the pose-video datamodule needs the same
factor for its latent-resolution hand masks and its frame-size checks, so the constant lives here, below
both (data -> networks). A VAE on another grid (the demo VAE at 1/4 size: ``DemoVAE`` with three widths)
gives its factor to PoseNet (``downsample``) and to the datamodule (``latent_downsample``);
``PoseGuidedUNet`` and ``VideoGenerator`` check that the three agree.
"""

from __future__ import annotations

LATENT_DOWNSAMPLE = 8  # pixels per latent cell, each side (SVD VAE, PoseNet)


def check_latent_downsample(value: int, height: int, width: int) -> int:
    """``value`` (pixels per latent cell: 2, 4 or 8) checked against the frame size -> int."""
    if value not in (2, 4, 8):
        raise ValueError(f"latent_downsample must be 2, 4 or 8 (the VAE's latent grid), got {value}")
    if height % value or width % value:
        raise ValueError(f"height and width must be multiples of latent_downsample {value}, got {height} x {width}")
    return int(value)
