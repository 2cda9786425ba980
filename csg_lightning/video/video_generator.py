"""``VideoGenerator``: the MimicMotion-style pose-guided video model (Stage 2) and its fine-tuning.

Parts (see :mod:`~csg_lightning.video.parts`): an SVD UNet + PoseNet (``net``, trained), a VAE and a
CLIP image encoder (frozen, kept in ``frozen_dtype``, out of the optimizer and of the EMA) and an
Euler scheduler (sampling only). Built from a local diffusers SVD folder (``parts_path``) or from the
``preset`` configs with random weights; ``mimicmotion_checkpoint`` optionally loads ``unet.*`` /
``pose_net.*`` weights on top (the load report is kept in ``checkpoint_report``).

Training (EDM, v-parameterised as SVD; :mod:`~csg_lightning.video.edm`): x0 = VAE latent sample x
0.18215 of the F target frames, sigma log-normal (``p_mean``, ``p_std``), x_sigma = x0 + sigma * eps,
D = c_skip x_sigma + c_out UNet([c_in x_sigma, ref latent], c_noise, CLIP token, time ids, pose),
loss = mean(lambda(sigma) * (1 + (hand_amplification - 1) * hand mask) * (D - x0)^2). With probability
``cond_drop_prob`` per item the CLIP token and the reference latent are zeroed together (for
classifier-free guidance); the pose is never dropped.

Batches (from :class:`~csg_lightning.data.pose_video.PoseVideoDataModule`): "frames" uint8
[B, F, 3, H, W], "reference" uint8 [B, 3, H, W], "poses" uint8 [B, F, 3, H, W], "hand_mask" float32
[B, F, H/8, W/8]; ``sample_batch`` also uses "reference_pose" uint8 [B, 3, H, W].

Checkpoints hold the EMA weights of ``net`` in ``state_dict`` (the raw ones under ``ema_state`` for
resuming). The frozen VAE/CLIP are left out of checkpoints when they come from ``parts_path`` (they
are reloaded from there) and kept when they are random (tiny/demo parts).
"""

from __future__ import annotations

import logging
from typing import Any

import lightning.pytorch as L
import torch

from csg_lightning.models.ema_hooks import EMAHooks
from csg_lightning.models.lr_schedule import adamw_warmup_cosine
from csg_lightning.video import sampling
from csg_lightning.video.checkpoint_loading import load_mimicmotion_checkpoint
from csg_lightning.video.checkpointing import enable_checkpointing
from csg_lightning.video.conditioning import (
    added_time_ids,
    clip_image_embeds,
    drop_conditions,
    reference_latents,
)
from csg_lightning.video.edm import append_dims, edm_loss_weight, edm_scalings, sample_sigmas
from csg_lightning.video.framing import to_model_range, to_uint8
from csg_lightning.video.hand_mask import hand_loss_weight
from csg_lightning.video.parts import build_parts
from csg_lightning.video.pose_injection import PoseGuidedUNet
from csg_lightning.video.vae_latents import decode_latents, encode_frames

log = logging.getLogger(__name__)

FROZEN = ("vae.", "image_encoder.")
DTYPES = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32,
          "float16": torch.float16}  # fmt: skip


def video_batch_size(batch: dict) -> int:
    return int(batch["frames"].shape[0])


def resolve_dtype(name: str) -> torch.dtype:
    """ "auto" -> bfloat16 when CUDA is available, else float32 (bf16 convolutions are slow on CPU)."""
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    if name not in DTYPES:
        raise ValueError(
            f"VideoGenerator: frozen_dtype must be 'auto' or one of {sorted(DTYPES)}, got {name!r}"
        )
    return DTYPES[name]


class VideoGenerator(EMAHooks, L.LightningModule):
    """Pose-guided image-to-video diffusion on SVD parts (trained: UNet + PoseNet; frozen: VAE, CLIP)."""

    def __init__(
        self,
        parts_path: str | None = None,
        preset: str = "tiny",
        mimicmotion_checkpoint: str | None = None,
        frozen_dtype: str = "auto",
        gradient_checkpointing: bool = False,
        p_mean: float = 0.7,
        p_std: float = 1.6,
        sigma_data: float = 1.0,
        cond_drop_prob: float = 0.1,
        hand_amplification: float = 10.0,
        fps: int = 7,
        motion_bucket_id: int = 127,
        noise_aug_strength: float = 0.0,
        vae_chunk_size: int = 8,
        num_inference_steps: int = 25,
        min_guidance: float = 1.0,
        max_guidance: float = 3.0,
        tile_size: int | None = 16,
        tile_overlap: int = 4,
        swap_rb: bool = True,
        image_height: int | None = None,
        image_width: int | None = None,
        lr: float = 1e-5,
        weight_decay: float = 0.01,
        warmup_steps: int = 500,
        min_lr_ratio: float = 1.0,
        ema_decay: float = 0.9999,
        ema_start_step: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        parts = build_parts(parts_path, preset)
        self.net = PoseGuidedUNet(parts.unet)
        self.checkpoint_report = None
        if mimicmotion_checkpoint is not None:
            self.checkpoint_report = load_mimicmotion_checkpoint(self.net, mimicmotion_checkpoint)
        if gradient_checkpointing:
            enable_checkpointing(self.net.unet)
        dtype = resolve_dtype(frozen_dtype)
        if dtype != torch.float32:
            parts.vae.to(dtype), parts.image_encoder.to(dtype)
        self.vae = parts.vae.requires_grad_(False).eval()
        self.image_encoder = parts.image_encoder.requires_grad_(False).eval()
        self.noise_scheduler = parts.scheduler
        self.init_ema()

    # ------------------------------------------------------------------ setup
    def setup(self, stage: str) -> None:
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        for name in ("height", "width"):  # own names: Lightning refuses equal keys with other values
            value = getattr(dm, name, None)
            if value is not None:
                self.hparams[f"image_{name}"] = int(value)
        swap = getattr(dm, "swap_rb", None)
        if swap is not None and bool(swap) != bool(self.hparams.swap_rb):
            raise ValueError(f"VideoGenerator: model.swap_rb={self.hparams.swap_rb} but data.swap_rb={swap}")

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()  # frozen parts never leave eval mode
        self.image_encoder.eval()
        return self

    # ------------------------------------------------------------------ conditioning
    def _time_ids(self, batch_size: int) -> torch.Tensor:
        h = self.hparams
        return added_time_ids(batch_size, h.fps, h.motion_bucket_id, h.noise_aug_strength, self.device)

    @torch.no_grad()
    def encode_reference(
        self, reference: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """reference [B, 3, H, W] in [-1, 1] -> (CLIP tokens [B, 1, D], unscaled reference latents [B, 4, h, w])."""
        clip = clip_image_embeds(self.image_encoder, reference)
        ref = reference_latents(self.vae, reference, self.hparams.noise_aug_strength, generator)
        return clip, ref

    # ------------------------------------------------------------------ training objective
    def diffusion_loss(
        self, batch: dict, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """EDM loss of a batch; ``generator`` makes sigma, noise and latents deterministic (no dropout)."""
        h = self.hparams
        frames, poses = to_model_range(batch["frames"]), to_model_range(batch["poses"])
        reference = to_model_range(batch["reference"])
        b, f = frames.shape[:2]
        with torch.no_grad():
            x0 = encode_frames(self.vae, frames, h.vae_chunk_size, sample=True, generator=generator)
            clip, ref = self.encode_reference(reference, generator)
        gen_device = generator.device if generator is not None else self.device
        sigma = sample_sigmas(b, h.p_mean, h.p_std, generator=generator).to(self.device)
        noise = torch.randn(x0.shape, generator=generator, device=gen_device).to(self.device)
        if generator is None and self.training and h.cond_drop_prob > 0:
            clip, ref = drop_conditions(clip, ref, torch.rand(b, device=self.device) < h.cond_drop_prob)
        x_sigma = x0 + append_dims(sigma, x0.ndim) * noise
        c_in, c_skip, c_out, c_noise = edm_scalings(sigma, h.sigma_data)
        sample = torch.cat([append_dims(c_in, 5) * x_sigma, ref[:, None].expand(-1, f, -1, -1, -1)], dim=2)
        out = self.net(sample, c_noise, clip, self._time_ids(b), pose_images=poses).float()
        denoised = append_dims(c_skip, 5) * x_sigma + append_dims(c_out, 5) * out
        err = (denoised - x0) ** 2
        weight = append_dims(edm_loss_weight(sigma, h.sigma_data), 5)
        if "hand_mask" in batch and h.hand_amplification != 1.0:
            weight = weight * hand_loss_weight(batch["hand_mask"].float()[:, :, None], h.hand_amplification)
        return {"loss": (weight * err).mean(), "mse": err.mean().detach()}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        losses = self.diffusion_loss(batch)
        bs = video_batch_size(batch)
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=bs)
        self.log("train/mse", losses["mse"], batch_size=bs)
        return losses["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        generator = torch.Generator(self.device).manual_seed(1000 + batch_idx)
        losses = self.diffusion_loss(batch, generator)
        bs = video_batch_size(batch)
        self.log("val/loss", losses["loss"], prog_bar=True, sync_dist=True, batch_size=bs)
        self.log("val/mse", losses["mse"], sync_dist=True, batch_size=bs)
        return losses["loss"]

    def configure_optimizers(self):
        hp = self.hparams
        return adamw_warmup_cosine(
            self.net.parameters(), hp.lr, hp.weight_decay, hp.warmup_steps, hp.min_lr_ratio,
            self.trainer.estimated_stepping_batches,
        )  # fmt: skip

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample_latents(
        self,
        reference: torch.Tensor,
        poses: torch.Tensor,
        num_steps: int | None = None,
        min_guidance: float | None = None,
        max_guidance: float | None = None,
        tile_size: int | None = -1,
        tile_overlap: int | None = None,
        seed: int = 0,
    ) -> torch.Tensor:
        """reference [B, 3, H, W], poses [B, F, 3, H, W] (both in [-1, 1]) -> scaled latents [B, F, 4, h, w].
        Unset arguments take the hparams (``tile_size=None``: no tiling)."""
        h = self.hparams
        generator = torch.Generator("cpu").manual_seed(seed)
        clip, ref = self.encode_reference(reference.to(self.device), generator)
        with self._averaged():
            return sampling.sample_latents(
                self.net, self.noise_scheduler, poses.to(self.device), clip, ref, self._time_ids(len(reference)),
                num_steps=num_steps or h.num_inference_steps,
                min_guidance=h.min_guidance if min_guidance is None else min_guidance,
                max_guidance=h.max_guidance if max_guidance is None else max_guidance,
                tile_size=h.tile_size if tile_size == -1 else tile_size,
                tile_overlap=h.tile_overlap if tile_overlap is None else tile_overlap,
                generator=generator,
            )  # fmt: skip

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """scaled latents [B, F, 4, h, w] -> uint8 frames [B, F, H, W, 3]."""
        return to_uint8(decode_latents(self.vae, latents, self.hparams.vae_chunk_size)).permute(0, 1, 3, 4, 2)

    @torch.no_grad()
    def sample_batch(
        self, batch: dict, num_steps: int | None = None, seed: int = 0, **options
    ) -> torch.Tensor:
        """Generate the frames of a batch from its reference and poses -> uint8 [B, F, H, W, 3].

        Frame 0 of the denoised clip is the reference with its pose (as at inference) and is dropped.
        """
        reference = to_model_range(batch["reference"]).to(self.device)
        poses = to_model_range(batch["poses"]).to(self.device)
        if "reference_pose" in batch:
            poses = torch.cat(
                [to_model_range(batch["reference_pose"]).to(self.device)[:, None], poses], dim=1
            )
        latents = self.sample_latents(reference, poses, num_steps=num_steps, seed=seed, **options)
        if "reference_pose" in batch:
            latents = latents[:, 1:]
        return self.decode(latents)

    # ------------------------------------------------------------------ EMA (trainable weights only)
    def _ema_params(self) -> dict[str, torch.nn.Parameter]:
        return {f"net.{name}": p for name, p in self.net.named_parameters() if p.requires_grad}

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)  # EMA weights into state_dict, training weights aside
        if self.hparams.parts_path is not None:  # frozen parts are reloaded from parts_path
            state = checkpoint["state_dict"]
            for key in [k for k in state if k.startswith(FROZEN)]:
                del state[key]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["state_dict"]
        for key, value in self.state_dict().items():
            if key.startswith(FROZEN) and key not in state:
                state[key] = value
        super().on_load_checkpoint(checkpoint)
