"""The latent grid of Stage 2: one latent cell per ``LATENT_DOWNSAMPLE`` x ``LATENT_DOWNSAMPLE`` pixels.

The SVD VAE and the PoseNet both down-sample frames exactly 8x; the pose-video datamodule needs the same
factor for its latent-resolution hand masks and its frame-size checks, so the constant lives here, below
both (data -> networks).
"""

from __future__ import annotations

LATENT_DOWNSAMPLE = 8  # pixels per latent cell, each side (SVD VAE, PoseNet)
