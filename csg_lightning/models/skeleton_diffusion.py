"""`SkeletonDiffusion`: the Stage-1 LightningModule (audio + reference skeleton -> skeleton sequence).

Wires the parts together: audio encoder (``audio_encoders``), denoiser (``denoiser``), diffusers
noise schedule and samplers (``diffusion``, ``sampling``), masked loss (``loss``), windowed long
generation (``long_generation``) and an EMA of the trainable weights (``ema``).

A checkpoint alone can generate: the normalisation statistics and a default reference skeleton
are buffers (filled from ``trainer.datamodule`` in :meth:`setup`), the constructor arguments are
hyper-parameters (window and prefix length included), and ``state_dict`` holds the EMA weights.
"""

from __future__ import annotations

import os
from typing import Any

import lightning as L
import numpy as np
import torch

from csg_lightning.models.audio_encoders import build_audio_encoder
from csg_lightning.models.denoiser import SkeletonDenoiser
from csg_lightning.models.diffusion import DiffusionProcess
from csg_lightning.models.ema_hooks import EMAHooks
from csg_lightning.models.frame_alignment import SAMPLES_PER_FRAME
from csg_lightning.models.loss import masked_mse, part_losses, velocity_mse
from csg_lightning.models.lr_schedule import adamw_warmup_cosine
from csg_lightning.models.presets import resolve_preset
from csg_lightning.models.representation import (
    encode_keypoints,
    encode_mask,
)
from csg_lightning.models.skeleton_sampling import SkeletonSamplingMixin
from csg_lightning.skeleton.layout import NUM_KEYPOINTS
from csg_lightning.skeleton.local import NUM_LOCAL_FEATURES


def skeleton_batch_size(batch: dict) -> int:
    """Samples in a batch (for ``ThroughputMonitor(batch_size_fn=...)``)."""
    return int(batch["features"].shape[0])


def skeleton_batch_frames(batch: dict) -> int:
    """Skeleton frames in a batch, prefix included (for ``ThroughputMonitor(length_fn=...)``)."""
    return int(batch["features"].shape[0] * batch["features"].shape[1])


class SkeletonDiffusion(SkeletonSamplingMixin, EMAHooks, L.LightningModule):
    """Audio-conditioned skeleton diffusion (the paper's Stage 1) with DDIM sampling and CFG.

    Main arguments: ``preset`` (``demo`` | ``paper`` | ``tiny``; ``width``/``depth``/``num_heads``/
    ``ff_dim``/``dropout`` override it), ``fusion`` (``concat`` | ``cross_attention``),
    ``timestep_conditioning`` (``token`` | ``adaln``), ``audio_encoder`` (``mel`` | ``pretrained``
    with ``audio_encoder_path``), ``prediction_type`` (``sample`` | ``epsilon`` | ``v_prediction``),
    ``sampler`` (any diffusers scheduler class), ``use_prefix`` (False: no reference prefix),
    ``local_representation`` (False: absolute coordinates), ``window_frames``/``prefix_frames``
    (None: the datamodule's ``window``/``num_prefix``), ``crossfade_frames`` (overlap of generation
    windows), ``ema_decay`` (0 disables EMA).
    """

    def __init__(
        self,
        preset: str = "demo",
        width: int | None = None,
        depth: int | None = None,
        num_heads: int | None = None,
        ff_dim: int | None = None,
        dropout: float | None = None,
        fusion: str = "concat",
        timestep_conditioning: str = "token",
        audio_encoder: str = "mel",
        audio_encoder_path: str | None = None,
        audio_encoder_dim: int = 256,
        audio_layers: list[int] | None = None,
        audio_train_top_layers: int = 0,
        prediction_type: str = "sample",
        num_train_timesteps: int = 100,
        beta_schedule: str = "squaredcos_cap_v2",
        sampler: str = "DDIMScheduler",
        sampler_kwargs: dict[str, Any] | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = 3.5,
        cond_drop_prob: float = 0.1,
        use_prefix: bool = True,
        prefix_repeat_prob: float = 0.3,
        local_representation: bool = True,
        frame_size: int = 512,
        window_frames: int | None = None,
        prefix_frames: int | None = None,
        crossfade_frames: int = 25,
        lr: float = 1e-4,
        weight_decay: float = 0.01,
        warmup_steps: int = 500,
        min_lr_ratio: float = 0.1,
        velocity_weight: float = 0.0,
        ema_decay: float = 0.999,
        ema_start_step: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        net = resolve_preset(
            preset, width=width, depth=depth, num_heads=num_heads, ff_dim=ff_dim, dropout=dropout
        )
        self.audio_encoder = build_audio_encoder(
            audio_encoder,
            path=audio_encoder_path,
            dim=audio_encoder_dim,
            layers=audio_layers or [-1],
            train_top_layers=audio_train_top_layers,
            dropout=net["dropout"],
        )
        self.denoiser = SkeletonDenoiser(
            audio_dim=self.audio_encoder.output_dim,
            feature_dim=NUM_LOCAL_FEATURES,
            fusion=fusion,
            timestep_conditioning=timestep_conditioning,
            cond_drop_prob=cond_drop_prob,
            **net,
        )
        self.process = DiffusionProcess(
            num_train_timesteps, beta_schedule, prediction_type, sampler, sampler_kwargs
        )
        self.register_buffer("feature_mean", torch.zeros(NUM_LOCAL_FEATURES))
        self.register_buffer("feature_std", torch.ones(NUM_LOCAL_FEATURES))
        self.register_buffer("default_reference_keypoints", torch.zeros(NUM_KEYPOINTS, 2))
        self.register_buffer("default_reference_scores", torch.zeros(NUM_KEYPOINTS))
        self.register_buffer("has_stats", torch.tensor(False))
        self.init_ema()

    # ------------------------------------------------------------------ setup and sizes
    @property
    def model_prefix(self) -> int:
        """Prefix frames the denoiser sees (0 for the "no reference prefix" ablation)."""
        return int(self.hparams.prefix_frames) if self.hparams.use_prefix else 0

    def setup(self, stage: str) -> None:
        trainer = self._trainer
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        if dm is None:
            return
        # (own names: Lightning refuses equal hparam keys with different initial values in model and data)
        for name, dm_name in (("window_frames", "window"), ("prefix_frames", "num_prefix")):
            value = getattr(dm, dm_name, None)
            if value is None:
                continue
            mine = self.hparams.get(name)
            if mine is not None and int(mine) != int(value):
                raise ValueError(
                    f"model.{name}={mine} but the datamodule's {dm_name} is {value}; make them equal"
                )
            self.hparams[name] = int(value)
        stats = getattr(dm, "stats", None)
        if stats is not None:
            self.feature_mean.copy_(torch.as_tensor(np.asarray(stats["mean"]), dtype=torch.float32))
            self.feature_std.copy_(
                torch.as_tensor(np.asarray(stats["std"]), dtype=torch.float32).clamp_min(1e-6)
            )
            self.has_stats.fill_(True)
        reference = getattr(dm, "default_reference", None)
        if reference is not None:
            kp, sc = reference
            self.default_reference_keypoints.copy_(torch.as_tensor(np.asarray(kp), dtype=torch.float32))
            self.default_reference_scores.copy_(torch.as_tensor(np.asarray(sc), dtype=torch.float32))
        if self.hparams.local_representation and stats is None and not bool(self.has_stats):
            raise ValueError(
                "SkeletonDiffusion: the datamodule has no `stats` (mean/std [246]) for the local features"
            )

    # ------------------------------------------------------------------ features of a batch
    def _batch_features(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """-> features [B, P+W, 246], mask [B, P+W, 123] in the model's representation."""
        if self.hparams.local_representation:
            feats, mask = batch["features"], batch["mask"]
        else:
            feats = encode_keypoints(
                batch["keypoints"], False, self.feature_mean, self.feature_std, self.hparams.frame_size
            )
            mask = encode_mask(batch["scores"], False)
        mask = mask * torch.isfinite(feats).view(*mask.shape, 2).all(-1)
        return torch.nan_to_num(feats.float(), nan=0.0, posinf=0.0, neginf=0.0), mask.float()

    def _split(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> prefix [B, P_model, F], window x0 [B, W, F], window mask [B, W, 123], audio features."""
        feats, mask = self._batch_features(batch)
        if self.hparams.prefix_frames is None:
            raise ValueError(
                "SkeletonDiffusion: prefix_frames is unknown; set model.prefix_frames or use a datamodule "
                "with a `num_prefix` attribute"
            )
        p_data = int(self.hparams.prefix_frames)
        p = self.model_prefix
        audio = batch["audio"].float()
        if p < p_data:  # no-prefix ablation: drop the data prefix and its audio
            audio = audio[:, (p_data - p) * SAMPLES_PER_FRAME :]
        audio_feats = self.audio_encoder(audio, feats.shape[1] - p_data + p)
        return feats[:, p_data - p : p_data], feats[:, p_data:], mask[:, p_data:], audio_feats

    # ------------------------------------------------------------------ training
    def _diffusion_loss(
        self, batch: dict, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        prefix, x0, mask, audio = self._split(batch)
        b, dev = x0.shape[0], x0.device
        if self.training and prefix.shape[1] > 0 and self.hparams.prefix_repeat_prob > 0:
            repeat = torch.rand(b, device=dev) < self.hparams.prefix_repeat_prob
            prefix = torch.where(repeat[:, None, None], prefix[:, -1:].expand_as(prefix), prefix)
        if generator is None:
            noise = torch.randn_like(x0)
            t = self.process.sample_timesteps(b, dev)
            drop = self.denoiser.audio.sample_drop(b, dev)
        else:  # deterministic validation loss
            noise = torch.randn(x0.shape, generator=generator).to(dev)
            t = torch.randint(0, self.process.num_train_timesteps, (b,), generator=generator).to(dev)
            drop = torch.zeros(b, dtype=torch.bool, device=dev)
        x_t = self.process.add_noise(x0, noise, t)
        pred = self.denoiser(torch.cat([prefix, x_t], dim=1), t, audio, drop, prefix.shape[1]).float()
        target = self.process.target(x0, noise, t)
        losses = {"loss_target": masked_mse(pred, target, mask)}
        losses.update({f"loss_{k}": v for k, v in part_losses(pred, target, mask).items()})
        loss = losses["loss_target"]
        if self.hparams.velocity_weight > 0:
            losses["loss_velocity"] = velocity_mse(self.process.predicted_x0(pred, x_t, t), x0, mask)
            loss = loss + self.hparams.velocity_weight * losses["loss_velocity"]
        losses["loss"] = loss
        return losses

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        """Training noise from (run seed, step, micro-batch, rank), not the RNG's history: a resume redraws it.

        The micro-batch is the position inside gradient accumulation, not ``batch_idx``: a run resumed
        from an epoch-end checkpoint (final, SIGTERM) counts ``batch_idx`` on from the old epoch."""
        micro = batch_idx % max(1, int(self.trainer.accumulate_grad_batches))
        seed = (int(os.getenv("PL_GLOBAL_SEED", 0)), self.global_step, micro, self.global_rank)
        torch.manual_seed(hash(seed))  # hash of a tuple of ints: the same in every process

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        losses = self._diffusion_loss(batch)
        bs = skeleton_batch_size(batch)
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=bs)
        self.log_dict({f"train/{k}": v for k, v in losses.items() if k != "loss"}, batch_size=bs)
        return losses["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(1000 + batch_idx)
        losses = self._diffusion_loss(batch, generator)
        self.log_dict(
            {f"val/{k}": v for k, v in losses.items() if k != "loss"},
            sync_dist=True,
            batch_size=skeleton_batch_size(batch),
        )
        self.log(
            "val/loss", losses["loss"], prog_bar=True, sync_dist=True, batch_size=skeleton_batch_size(batch)
        )
        return losses["loss"]

    def configure_optimizers(self):
        hp = self.hparams
        return adamw_warmup_cosine(
            self.parameters(), hp.lr, hp.weight_decay, hp.warmup_steps, hp.min_lr_ratio,
            self.trainer.estimated_stepping_batches,
        )  # fmt: skip

