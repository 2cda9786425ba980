"""Building the SVD parts: UNet, VAE, CLIP image encoder and Euler scheduler.

The experiment YAMLs name each part as a ``class_path`` (``experiments/components/video/``): the
functions below: :func:`svd_unet`, :func:`svd_vae`, :func:`clip_image_encoder` (random weights from a
config dict), :func:`pretrained_unet`, ... (a local SVD folder) and diffusers' ``EulerDiscreteScheduler``. :func:`preset_parts_config` gives the same entries in Python (for
``VideoGenerator.from_preset``). Two sources, same classes:

- a local diffusers SVD(-xt) folder (``save_pretrained`` layout: ``unet/``, ``vae/``,
  ``image_encoder/``, ``scheduler/``; e.g. a copy of stabilityai/stable-video-diffusion-img2vid-xt),
  loaded with ``from_pretrained(path, subfolder=...)``; nothing is downloaded;
- configs (``preset="tiny"`` for tests and the CPU demo, ``preset="svd-xt"`` for SVD-xt's shapes with
  random weights, e.g. for memory benchmarks).

:func:`save_parts` writes parts in the folder layout (so tiny parts can stand in for SVD).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
from torch import nn
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

SUBFOLDERS = ("unet", "vae", "image_encoder", "scheduler")

SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
    prediction_type="v_prediction", use_karras_sigmas=True, sigma_min=0.002, sigma_max=700.0,
    timestep_spacing="leading", timestep_type="continuous", steps_offset=1, interpolation_type="linear",
)  # fmt: skip

TINY_UNET = dict(
    sample_size=8, in_channels=8, out_channels=4,
    down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
    up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
    block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=32, num_attention_heads=(2, 4),
    addition_time_embed_dim=32, projection_class_embeddings_input_dim=96, num_frames=4,
)  # fmt: skip
TINY_VAE = dict(
    in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
    block_out_channels=(32, 32, 32, 32), layers_per_block=1, latent_channels=4, sample_size=64,
)  # fmt: skip
TINY_CLIP = dict(
    hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
    image_size=32, patch_size=4,
)  # fmt: skip

# stabilityai/stable-video-diffusion-img2vid-xt shapes (the diffusers UNet defaults are SVD's).
SVD_XT_UNET = dict(sample_size=96, num_frames=25)
SVD_XT_VAE = dict(
    in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, sample_size=768,
)  # fmt: skip
SVD_XT_CLIP = dict(  # ViT-H/14
    hidden_size=1280, projection_dim=1024, num_hidden_layers=32, num_attention_heads=16,
    intermediate_size=5120, image_size=224, patch_size=14, hidden_act="gelu",
)  # fmt: skip

PRESETS = {"tiny": (TINY_UNET, TINY_VAE, TINY_CLIP), "svd-xt": (SVD_XT_UNET, SVD_XT_VAE, SVD_XT_CLIP)}


@dataclass
class SVDParts:
    """The four parts of an SVD img2vid pipeline."""

    unet: nn.Module  # diffusers UNetSpatioTemporalConditionModel
    vae: nn.Module  # diffusers AutoencoderKLTemporalDecoder
    image_encoder: nn.Module  # transformers CLIPVisionModelWithProjection
    scheduler: object  # diffusers EulerDiscreteScheduler


def build_parts(path: str | os.PathLike | None = None, preset: str = "tiny") -> SVDParts:
    """Parts from a local SVD folder (``path``) or, when ``path`` is None, from the ``preset`` configs
    with random weights (the scheduler config is SVD's in both cases when the folder lacks one)."""
    if path is not None:
        return SVDParts(pretrained_unet(path), pretrained_vae(path), pretrained_image_encoder(path),
                        pretrained_scheduler(path))  # fmt: skip
    if preset not in PRESETS:
        raise ValueError(f"SVD parts: preset must be one of {sorted(PRESETS)}, got {preset!r}")
    unet_cfg, vae_cfg, clip_cfg = PRESETS[preset]
    return SVDParts(
        svd_unet(unet_cfg),
        svd_vae(vae_cfg),
        clip_image_encoder(clip_cfg),
        EulerDiscreteScheduler(**SCHEDULER_CONFIG),
    )


def save_parts(parts: SVDParts, path: str | os.PathLike) -> Path:
    """Write ``parts`` as a diffusers SVD folder (unet/, vae/, image_encoder/, scheduler/)."""
    root = Path(path)
    parts.unet.save_pretrained(root / "unet")
    parts.vae.save_pretrained(root / "vae")
    parts.image_encoder.save_pretrained(root / "image_encoder")
    parts.scheduler.save_pretrained(root / "scheduler")
    return root


def _svd_folder(path: str | os.PathLike, subfolder: str) -> Path:
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(
            f"SVD parts: {root} is not a folder; expected a local diffusers SVD folder with {SUBFOLDERS} "
            "(e.g. a copy of stabilityai/stable-video-diffusion-img2vid-xt)"
        )
    if subfolder != "scheduler" and not (root / subfolder).is_dir():
        raise FileNotFoundError(f"SVD parts: {root} lacks the subfolder {subfolder!r}; expected {SUBFOLDERS}")
    return root


def pretrained_unet(path: str) -> UNetSpatioTemporalConditionModel:
    """The UNet of a local diffusers SVD folder (``path/unet``)."""
    return UNetSpatioTemporalConditionModel.from_pretrained(_svd_folder(path, "unet"), subfolder="unet")


def pretrained_vae(path: str) -> AutoencoderKLTemporalDecoder:
    """The temporal-decoder VAE of a local diffusers SVD folder (``path/vae``)."""
    return AutoencoderKLTemporalDecoder.from_pretrained(_svd_folder(path, "vae"), subfolder="vae")


def pretrained_image_encoder(path: str) -> CLIPVisionModelWithProjection:
    """The CLIP image encoder of a local diffusers SVD folder (``path/image_encoder``)."""
    root = _svd_folder(path, "image_encoder")
    return CLIPVisionModelWithProjection.from_pretrained(root, subfolder="image_encoder")


def pretrained_scheduler(path: str) -> EulerDiscreteScheduler:
    """The folder's ``scheduler/`` config, or SVD's Euler config when the folder has none."""
    root = _svd_folder(path, "scheduler")
    if (root / "scheduler").is_dir():
        return EulerDiscreteScheduler.from_pretrained(root, subfolder="scheduler")
    return EulerDiscreteScheduler(**SCHEDULER_CONFIG)


def svd_unet(config: dict) -> UNetSpatioTemporalConditionModel:
    """A randomly initialised SVD UNet from a diffusers ``UNetSpatioTemporalConditionModel`` config
    (unset keys: SVD's shapes). A dict, because diffusers annotates its block lists as 1-tuples."""
    return UNetSpatioTemporalConditionModel(**_tuples(config))


def svd_vae(config: dict) -> AutoencoderKLTemporalDecoder:
    """A randomly initialised temporal-decoder VAE from a diffusers ``AutoencoderKLTemporalDecoder`` config."""
    return AutoencoderKLTemporalDecoder(**_tuples(config))


def clip_image_encoder(config: dict) -> CLIPVisionModelWithProjection:
    """A randomly initialised CLIP image encoder from a transformers ``CLIPVisionConfig`` dict (SVD-xt:
    :data:`SVD_XT_CLIP`, ViT-H/14 with ``hidden_act: gelu``)."""
    return CLIPVisionModelWithProjection(CLIPVisionConfig(**config))


def _tuples(config: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}


def preset_parts_config(preset: str = "tiny", path: str | None = None) -> dict[str, dict]:
    """The ``class_path`` entries of the four parts (as in ``experiments/components/video/``) -> a dict
    ``{"unet": {...}, "vae": {...}, "image_encoder": {...}, "scheduler": {...}}``."""
    if path is not None:
        loaders = ("pretrained_unet", "pretrained_vae", "pretrained_image_encoder", "pretrained_scheduler")
        keys = ("unet", "vae", "image_encoder", "scheduler")
        return {k: {"class_path": f"{__name__}.{f}", "init_args": {"path": str(path)}}
                for k, f in zip(keys, loaders, strict=True)}  # fmt: skip
    if preset not in PRESETS:
        raise ValueError(f"SVD parts: preset must be one of {sorted(PRESETS)}, got {preset!r}")
    unet_cfg, vae_cfg, clip_cfg = PRESETS[preset]
    return {
        "unet": {"class_path": f"{__name__}.svd_unet", "init_args": {"config": _plain(unet_cfg)}},
        "vae": {"class_path": f"{__name__}.svd_vae", "init_args": {"config": _plain(vae_cfg)}},
        "image_encoder": {
            "class_path": f"{__name__}.clip_image_encoder",
            "init_args": {"config": dict(clip_cfg)},
        },
        "scheduler": {"class_path": "diffusers.EulerDiscreteScheduler", "init_args": dict(SCHEDULER_CONFIG)},
    }


def _plain(config: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}
