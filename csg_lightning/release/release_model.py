"""A `SkeletonDiffusion` that generates as the paper's release does, filled with its weights, and saved.

:func:`release_model_config` is the ``model.init_args`` of such a model (the YAML fragments
``components/skeleton/{audio/release_wav2vec2,denoiser/release,diffusion/release_ddpm100}.yaml`` hold the
same parts): :class:`ReleaseSpeechEncoder` (window audio only, ``align_corners=True``),
:class:`ReleaseDenoiser`, the ``cosine_tau_2`` schedule with diffusers' ``DDPMScheduler`` (fixed-small
variance: the release's 100-step ancestral ``sample_xt``), CFG 3.5, 250-frame windows after a 25-frame
prefix chained without cross-fade (the release's long-video loop), unconfident prefix points at the
dataset mean, lips smoothed with windows 7 / 5, no EMA. :func:`write_checkpoint` saves a Lightning
checkpoint that ``SkeletonDiffusion.load_from_checkpoint`` (``weights_only``) rebuilds.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import numpy as np
import torch

from csg_lightning.io.atomic import atomic_path
from csg_lightning.release.point_order import feature_permutation
from csg_lightning.release.state_dict_map import ReleaseImportError
from csg_lightning.skeleton.layout import NUM_KEYPOINTS, SkeletonLayout
from csg_lightning.skeleton.local import LOCAL_INDICES, NUM_LOCAL_FEATURES, from_local

RELEASE_WINDOW, RELEASE_PREFIX = 250, 25  # data_loaders/audio_to_2dkp/config.py: sequence_length, initial_frames_num


def release_model_config(wav2vec2: str | os.PathLike, width: int, depth: int, num_heads: int, ff_dim: int,
                         dropout: float = 0.1, cond_drop_prob: float = 0.1, window_frames: int = RELEASE_WINDOW,
                         prefix_frames: int = RELEASE_PREFIX, guidance_scale: float = 3.5,
                         num_train_timesteps: int = 100, beta_schedule: str = "cosine_tau_2",
                         lr: float = 5e-5) -> dict:  # fmt: skip
    """``SkeletonDiffusion`` init args (``class_path`` dicts) of the release's Stage 1."""
    return {
        "audio_encoder": {"class_path": "csg_lightning.models.release_speech_encoder.ReleaseSpeechEncoder",
                          "init_args": {"path_or_hub_id": str(wav2vec2), "prefix_frames": int(prefix_frames)}},
        "denoiser": {"class_path": "csg_lightning.models.release_denoiser.ReleaseDenoiser",
                     "init_args": {"width": int(width), "depth": int(depth), "num_heads": int(num_heads),
                                   "ff_dim": int(ff_dim), "dropout": float(dropout),
                                   "cond_drop_prob": float(cond_drop_prob)}},
        "diffusion": {"class_path": "csg_lightning.models.diffusion.DiffusionProcess",
                      "init_args": {"num_train_timesteps": int(num_train_timesteps), "beta_schedule": beta_schedule,
                                    "prediction_type": "sample", "sampler": "DDPMScheduler",
                                    "sampler_kwargs": {"variance_type": "fixed_small"},
                                    "num_inference_steps": int(num_train_timesteps)}},
        "guider": {"class_path": "csg_lightning.pipelines.guider.ConstantGuider",
                   "init_args": {"scale": float(guidance_scale)}},
        "loss": {"class_path": "csg_lightning.models.loss.DiffusionLoss", "init_args": {"velocity_weight": 0.0}},
        "optimizer": {"class_path": "torch.optim.AdamW", "init_args": {"lr": float(lr), "weight_decay": 0.01}},
        "window_frames": int(window_frames),
        "prefix_frames": int(prefix_frames),
        "crossfade_frames": 0,
        "ema_decay": 0.0,
        "prefix_repeat_prob": 0.3,
        "prefix_low_confidence": "mean",
        "outer_lip_window": 7,
        "inner_lip_window": 5,
    }  # fmt: skip


def load_release_stats(path: str | os.PathLike, what: str) -> np.ndarray:
    """The release's ``Mean_*.npy`` / ``Std_*.npy`` -> [246] float32 in our feature order.

    Accepted: [..., 124, 2] (neck first, as the release stores them; its loader drops the neck),
    [..., 123, 2] or [..., 246], leading dimensions of size 1."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise ReleaseImportError(f"{path}: not a plain .npy array ({err})") from err
    shape = arr.shape
    if arr.size == 248 and shape[-2:] == (124, 2):
        arr = arr.reshape(124, 2)[1:]
    elif arr.size == NUM_LOCAL_FEATURES and (shape[-2:] == (123, 2) or shape[-1:] == (NUM_LOCAL_FEATURES,)):
        arr = arr.reshape(123, 2)
    else:
        raise ReleaseImportError(
            f"{path}: {what} of shape {shape}; expected [1, 124, 2] (the release's, neck first), [123, 2] or [246]"
        )
    arr = arr.reshape(-1).astype(np.float32)[feature_permutation()]
    if not np.isfinite(arr).all():
        raise ReleaseImportError(f"{path}: {what} holds NaN or inf")
    return arr


def mean_reference(mean: np.ndarray, frame_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """A default reference skeleton: the dataset-mean pose with its neck at the frame centre
    (-> keypoints [134, 2], scores [134]: 1 for the model's points and the neck, 0 for the legs)."""
    centre = torch.full((2,), frame_size / 2.0)
    kp = from_local(torch.as_tensor(mean, dtype=torch.float32).view(-1, 2), centre)
    kp[SkeletonLayout.LEGS] = centre
    scores = torch.zeros(NUM_KEYPOINTS)
    scores[LOCAL_INDICES] = 1.0
    scores[SkeletonLayout.NECK] = 1.0
    return kp, scores


def fill_model(model, weights: dict[str, torch.Tensor], mean: np.ndarray, std: np.ndarray) -> None:
    """Load mapped weights (strict for the denoiser; the audio encoder keeps its folder's weights unless
    given), the statistics and a mean-pose default reference into ``model``."""
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if unexpected:
        raise ReleaseImportError(f"weights with no place in the model: {unexpected[:6]}")
    not_loaded = [k for k in missing if k.startswith("denoiser.")]
    if not_loaded:
        raise ReleaseImportError(f"denoiser weights not loaded: {not_loaded[:6]}")
    model.codec.load_stats({"mean": mean, "std": std})
    kp, sc = mean_reference(mean, model.codec.frame_size)
    model.default_reference_keypoints.copy_(kp)
    model.default_reference_scores.copy_(sc)


def write_checkpoint(model, path: str | os.PathLike, note: dict | None = None) -> Path:
    """Save ``model`` (built with ``SkeletonDiffusion.from_config``) as a Lightning checkpoint, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": L.__version__,
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "release_import": dict(note or {}),
    }
    if getattr(model, "_hparams_name", None):
        checkpoint["hparams_name"] = model._hparams_name
    model.on_save_checkpoint(checkpoint)
    with atomic_path(path, durable=True) as tmp:
        torch.save(checkpoint, tmp)
    return path
