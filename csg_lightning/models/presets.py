"""Denoiser size presets: ``demo`` (CPU-sized) and ``paper`` (the released model, ~200M params)."""

from __future__ import annotations

DENOISER_PRESETS: dict[str, dict[str, float | int]] = {
    "demo": {"width": 128, "depth": 4, "num_heads": 4, "ff_dim": 512, "dropout": 0.1},
    "paper": {"width": 1024, "depth": 16, "num_heads": 16, "ff_dim": 4096, "dropout": 0.1},
    "tiny": {"width": 32, "depth": 1, "num_heads": 2, "ff_dim": 64, "dropout": 0.0},
}


def resolve_preset(preset: str, **overrides) -> dict:
    """Preset values with every non-None override applied on top."""
    if preset not in DENOISER_PRESETS:
        raise ValueError(f"model.preset: expected one of {sorted(DENOISER_PRESETS)}, got {preset!r}")
    config = dict(DENOISER_PRESETS[preset])
    config.update({k: v for k, v in overrides.items() if v is not None})
    return config
