"""Tiny `SkeletonDiffusion` models for tests, built the way the YAMLs build them (``class_path`` dicts).

``tiny_skeleton_config(**overrides)`` -> the ``model.init_args`` dict of a tiny model (the
``denoiser/tiny.yaml`` sizes, a small mel encoder); ``tiny_skeleton_diffusion(**overrides)`` builds it
with ``SkeletonDiffusion.from_config``, so its checkpoints rebuild with ``load_from_checkpoint(path)``.
Overrides: the sizes and strategies by name (``audio_dim``, ``fusion`` = ``concat`` | ``cross_attention``
| a class path, ``timestep_conditioning``, ``prediction_type``, ``num_inference_steps``,
``guidance_scale``, ``lr``, ``warmup_steps``, ``velocity_weight``), everything else goes to the module
(``crossfade_frames``, ``ema_decay``, ``use_prefix``, ``local_representation``, ``window_frames`` ...).
"""

from __future__ import annotations

FUSIONS = {"concat": "csg_lightning.models.fusion.ConcatFusion",
           "cross_attention": "csg_lightning.models.fusion.CrossAttentionFusion"}  # fmt: skip


def tiny_skeleton_config(audio_dim: int = 16, fusion: str = "concat", timestep_conditioning: str = "token",
                         prediction_type: str = "sample", num_inference_steps: int = 25,
                         guidance_scale: float = 3.5, lr: float = 1e-4, warmup_steps: int = 1,
                         velocity_weight: float = 0.0, **module_args) -> dict:  # fmt: skip
    return {
        "audio_encoder": {"class_path": "csg_lightning.models.mel_audio_encoder.MelAudioEncoder",
                          "init_args": {"dim": audio_dim, "dropout": 0.0}},
        "denoiser": {"class_path": "csg_lightning.models.denoiser.SkeletonDenoiser",
                     "init_args": {"width": 32, "depth": 1, "num_heads": 2, "ff_dim": 64, "dropout": 0.0,
                                   "fusion": {"class_path": FUSIONS.get(fusion, fusion)},
                                   "timestep_conditioning": timestep_conditioning}},
        "diffusion": {"class_path": "csg_lightning.models.diffusion.DiffusionProcess",
                      "init_args": {"prediction_type": prediction_type, "num_inference_steps": num_inference_steps}},
        "guider": {"class_path": "csg_lightning.pipelines.guider.ConstantGuider", "init_args": {"scale": guidance_scale}},
        "loss": {"class_path": "csg_lightning.models.loss.DiffusionLoss", "init_args": {"velocity_weight": velocity_weight}},
        "optimizer": {"class_path": "torch.optim.AdamW", "init_args": {"lr": lr, "weight_decay": 0.01}},
        "lr_scheduler": {"class_path": "csg_lightning.models.lr_schedule.WarmupCosineLR",
                         "init_args": {"warmup_steps": warmup_steps}},
        **module_args,
    }  # fmt: skip


def tiny_skeleton_diffusion(**overrides):
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    return SkeletonDiffusion.from_config(tiny_skeleton_config(**overrides))


def train_tiny_checkpoint(root, window: int = 20, num_prefix: int = 5, **overrides):
    """A real (tiny) Stage 1 checkpoint after one training step on synthetic windows (no EMA by default)
    -> ``root/checkpoints/last.ckpt``."""
    from pathlib import Path

    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from stage1_data import SyntheticSkeletonData

    root = Path(root)
    torch.manual_seed(0)
    model = tiny_skeleton_diffusion(**{"crossfade_frames": 5, "num_inference_steps": 2, "ema_decay": 0.0, **overrides})
    trainer = L.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=0, default_root_dir=str(root),
                        callbacks=[ModelCheckpoint(dirpath=root / "checkpoints", save_last=True)])  # fmt: skip
    trainer.fit(model, SyntheticSkeletonData(window=window, num_prefix=num_prefix, batch_size=2))
    return root / "checkpoints" / "last.ckpt"
