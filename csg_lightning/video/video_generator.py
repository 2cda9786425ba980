"""``VideoGenerator``: the MimicMotion-style pose-guided video model (Stage 2) and its fine-tuning.

The module receives its parts as objects (LightningCLI builds them from the ``class_path`` entries of
the experiment YAML, fragments in ``experiments/components/video/``): ``unet`` (a diffusers
``UNetSpatioTemporalConditionModel``) and ``pose_net`` (a :class:`~csg_lightning.video.pose_net.PoseNet`;
default: one sized to the UNet) are wrapped as ``net`` and trained; ``vae`` and ``image_encoder``
(CLIP) are frozen, kept in ``frozen_dtype``, out of the optimizer and of the EMA; ``scheduler`` (Euler),
``guider`` (default :class:`~csg_lightning.pipelines.guider.LinearRampGuider` 1 -> 3) and the tiling
settings drive sampling through :class:`~csg_lightning.pipelines.video_pipeline.VideoPipeline`;
``loss`` (default :class:`~csg_lightning.video.edm_loss.EDMLoss`) is the training objective;
``sharding`` (optional, :class:`~csg_lightning.video.fsdp_sharding.UNetBlockSharding`) shards ``net`` with
FSDP2 under ``ModelParallelStrategy``; ``optimizer`` (a callable on parameter groups; default AdamW lr 1e-5, weight decay 0.01 on tensors
with >= 2 dims) and ``lr_schedule`` (a callable ``(optimizer, total_steps)``; default
:class:`~csg_lightning.video.warmup_cosine_schedule.WarmupCosineSchedule`) train it; EMA: ``ema_decay``,
``ema_start_step``. ``VideoGenerator.load_from_checkpoint(path)`` rebuilds every part from the
``class_path`` entries saved in the checkpoint (LightningCLI's instantiator); in Python,
:meth:`from_preset` builds the same entries (``preset`` tiny / svd-xt, or a local SVD folder).
``mimicmotion_checkpoint`` optionally loads ``unet.*`` / ``pose_net.*`` weights on top.

Training: x0 = VAE latent sample x 0.18215 of the F target frames; ``loss`` draws sigma and noise and
weights (D - x0)^2 (EDM, v-parameterised as SVD) with the batch's hand mask; D = c_skip x_sigma + c_out
UNet([c_in x_sigma, ref latent], c_noise, CLIP token, time ids, pose). With probability
``cond_drop_prob`` per item the CLIP token and the reference latent are zeroed together (for
classifier-free guidance); the pose is never dropped. ``reference_residual`` (a scale s, default None:
off) diffuses (x0 - reference latent) / s instead of x0, so a still copy of the reference is the zero
of the model's output space: what a small model trained from scratch (the demo) learns in minutes; the
pipeline adds the reference back after sampling. The reference latent it subtracts is never dropped.
``detail_transfer`` (default False) renders frames as reference photo + D(z_t) - D(z_0) (z_0: the sampled
reference slot; see ``VideoPipeline.render``), for a static camera and a VAE that loses detail (the demo's);
``motion_mask_radius`` (pixels, default None: off; needs detail transfer) keeps the photo's pixels further than
that from where the frame's skeleton differs from the reference's (``VideoPipeline.render``), its edge
blurred with sigma ``motion_mask_blur`` (pixels, default None: radius / 2).

Batches (from :class:`~csg_lightning.data.pose_video.PoseVideoDataModule`): "frames" uint8
[B, F, 3, H, W], "reference" uint8 [B, 3, H, W], "poses" uint8 [B, F, 3, H, W], "hand_mask" float32
[B, F, H/8, W/8]; ``sample_batch`` / ``predict_step`` also use "reference_pose" uint8 [B, 3, H, W].

Checkpoints hold the EMA weights of ``net`` in ``state_dict`` (the raw ones under ``ema_state`` for
resuming). ``frozen_in_checkpoint=False`` leaves the frozen VAE/CLIP out (they are rebuilt from their
pretrained ``class_path``); True (tiny/demo random parts) keeps them.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import lightning.pytorch as L
import torch
from diffusers import SchedulerMixin
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from torch import nn

from csg_lightning.models.ema_hooks import EMAHooks
from csg_lightning.pipelines.guider import Guider, LinearRampGuider
from csg_lightning.pipelines.video_pipeline import VideoPipeline
from csg_lightning.video.conditioning import drop_conditions
from csg_lightning.video.dtypes import resolve_dtype
from csg_lightning.video.edm import append_dims, edm_scalings
from csg_lightning.video.edm_loss import EDMLoss
from csg_lightning.video.fsdp_sharding import UNetBlockSharding
from csg_lightning.video.gradient_checkpointing import enable_checkpointing
from csg_lightning.video.mimicmotion_weights import load_mimicmotion_checkpoint
from csg_lightning.video.motion_mask import latent_motion_mask
from csg_lightning.video.pixel_range import to_model_range
from csg_lightning.video.pose_injection import PoseGuidedUNet
from csg_lightning.video.pose_net import PoseNet
from csg_lightning.video.vae_latents import encode_frames, vae_downsample
from csg_lightning.video.warmup_cosine_schedule import WarmupCosineSchedule

log = logging.getLogger(__name__)

FROZEN = ("vae.", "image_encoder.")
PARTS = (
    "unet",
    "vae",
    "image_encoder",
    "scheduler",
    "pose_net",
    "guider",
    "loss",
    "optimizer",
    "lr_schedule",
    "sharding",
)


def video_batch_size(batch: dict) -> int:
    return int(batch["frames"].shape[0])


def default_optimizer(params) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=1e-5, weight_decay=0.01)


class VideoGenerator(EMAHooks, L.LightningModule):
    """Pose-guided image-to-video diffusion on SVD parts (trained: UNet + PoseNet; frozen: VAE, CLIP)."""

    def __init__(
        self,
        unet: nn.Module,
        vae: nn.Module,
        image_encoder: nn.Module,
        scheduler: SchedulerMixin,
        pose_net: PoseNet | None = None,
        guider: Guider | None = None,
        loss: EDMLoss | None = None,
        optimizer: OptimizerCallable | None = None,
        lr_schedule: WarmupCosineSchedule | None = None,
        sharding: UNetBlockSharding | None = None,
        mimicmotion_checkpoint: str | None = None,
        frozen_dtype: str = "auto",
        frozen_in_checkpoint: bool = True,
        gradient_checkpointing: bool = False,
        cond_drop_prob: float = 0.1,
        fps: int = 7,
        motion_bucket_id: int = 127,
        noise_aug_strength: float = 0.0,
        vae_chunk_size: int = 8,
        num_inference_steps: int = 25,
        tile_size: int | None = 16,
        tile_overlap: int = 4,
        uncond_pose: bool | None = None,
        clip_resize: str | None = None,
        swap_rb: bool = True,
        image_height: int | None = None,
        image_width: int | None = None,
        ema_decay: float = 0.9999,
        ema_start_step: int = 0,
        reference_residual: float | None = None,
        detail_transfer: bool = False,
        motion_mask_radius: float | None = None,
        motion_mask_blur: float | None = None,
        pose_net_lr_scale: float = 1.0,
    ) -> None:
        super().__init__()
        # Built by LightningCLI / from_preset / load_from_checkpoint's instantiator: the hparams are the
        # class_path configs. Parts given as objects in Python are no hyper-parameters (a checkpoint of such a
        # module holds its weights but cannot rebuild it: use from_preset or a YAML).
        from_config = _given_hyperparameters.get() is not None
        self.save_hyperparameters(ignore=None if from_config else list(PARTS))
        self.latent_downsample = vae_downsample(vae)
        self.net = PoseGuidedUNet(unet, pose_net, self.latent_downsample)
        self.checkpoint_report = None
        if mimicmotion_checkpoint is not None:
            self.checkpoint_report = load_mimicmotion_checkpoint(self.net, mimicmotion_checkpoint)
        if gradient_checkpointing:
            enable_checkpointing(self.net.unet)
        dtype = resolve_dtype(frozen_dtype)
        if dtype != torch.float32:
            vae.to(dtype), image_encoder.to(dtype)
        self.vae = vae.requires_grad_(False).eval()
        self.image_encoder = image_encoder.requires_grad_(False).eval()
        self.noise_scheduler = scheduler
        self.guider = guider if guider is not None else LinearRampGuider(1.0, 3.0)
        self.loss = loss if loss is not None else EDMLoss()
        self.optimizer = optimizer if optimizer is not None else default_optimizer
        self.lr_schedule = lr_schedule if lr_schedule is not None else WarmupCosineSchedule()
        self.sharding = sharding
        if reference_residual is not None and not float(reference_residual) > 0:
            raise ValueError(f"VideoGenerator: reference_residual must be > 0 or null, got {reference_residual}")
        self.init_ema()

    @classmethod
    def from_preset(cls, preset: str = "tiny", parts_path: str | None = None, **init_args) -> VideoGenerator:
        """Build from the same ``class_path`` entries the YAML fragments hold (``preset`` configs with random
        weights, or the local SVD folder ``parts_path``), so its checkpoints rebuild with
        ``load_from_checkpoint`` alone. ``init_args``: the other ``__init__`` arguments, as YAML values
        (``guider={"class_path": ..., "init_args": {...}}``)."""
        from lightning.pytorch.cli import instantiate_module
        from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters_context

        from csg_lightning.video.svd_parts import preset_parts_config

        config = {**preset_parts_config(preset, parts_path), **init_args}
        if parts_path is not None:
            config.setdefault("frozen_in_checkpoint", False)
        for name, param in inspect.signature(
            cls.__init__
        ).parameters.items():  # the defaults, as LightningCLI
            if name != "self" and name not in config:
                config[name] = param.default
        instantiator = "lightning.pytorch.cli.instantiate_module"  # as LightningCLI saves it
        with _given_hyperparameters_context(hparams=dict(config), instantiator=instantiator):
            return instantiate_module(cls, config)

    # ------------------------------------------------------------------ setup
    def setup(self, stage: str) -> None:
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        for name in ("height", "width"):  # own names: Lightning refuses equal keys with other values
            value = getattr(dm, name, None)
            if value is not None:
                self.hparams[f"image_{name}"] = int(value)
        grid = getattr(dm, "latent_downsample", None)
        if grid is not None and int(grid) != self.latent_downsample:
            raise ValueError(
                f"VideoGenerator: data.latent_downsample={grid} but the VAE's latents are 1/{self.latent_downsample} "
                f"of the frame size (the hand masks must be on the latent grid); set data.init_args.latent_downsample: "
                f"{self.latent_downsample}"
            )
        swap = getattr(dm, "swap_rb", None)
        if swap is not None and bool(swap) != bool(self.hparams.swap_rb):
            raise ValueError(f"VideoGenerator: model.swap_rb={self.hparams.swap_rb} but data.swap_rb={swap}")

    def configure_model(self) -> None:
        """FSDP2: ``sharding`` shards ``net`` over the strategy's device mesh (``ModelParallelStrategy``; see
        :mod:`~csg_lightning.video.fsdp_sharding`). Other strategies have no mesh: nothing happens."""
        if self.sharding is not None and self.device_mesh is not None and not getattr(self, "_sharded", False):
            self.sharding(self.net, self.device_mesh)
            self._sharded = True

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()  # frozen parts never leave eval mode
        self.image_encoder.eval()
        return self

    # ------------------------------------------------------------------ conditioning
    @torch.no_grad()
    def encode_reference(
        self, reference: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """reference [B, 3, H, W] in [-1, 1] -> (CLIP tokens [B, 1, D], unscaled reference latents [B, 4, h, w])."""
        return self.pipeline().encode_reference(reference, generator)

    # ------------------------------------------------------------------ training objective
    def diffusion_loss(
        self, batch: dict, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """``loss`` of a batch; ``generator`` makes sigma, noise and latents deterministic (no dropout)."""
        frames, poses = to_model_range(batch["frames"]), to_model_range(batch["poses"])
        reference = to_model_range(batch["reference"])
        b, f = frames.shape[:2]
        with torch.no_grad():
            x0 = encode_frames(
                self.vae, frames, self.hparams.vae_chunk_size, sample=True, generator=generator
            )
            pipe = self.pipeline()
            clip, ref = pipe.encode_reference(reference, generator)
        x0 = pipe.to_residual(x0, ref)  # unchanged unless reference_residual is set
        time_ids, drop = pipe.time_ids(b), self.hparams.cond_drop_prob

        def denoise(x_sigma: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            nonlocal clip, ref  # condition dropout drawn after sigma and noise (the RNG order of the loss)
            if generator is None and self.training and drop > 0:
                clip, ref = drop_conditions(clip, ref, torch.rand(b, device=self.device) < drop)
            c_in, c_skip, c_out, c_noise = edm_scalings(sigma, self.loss.sigma_data)
            sample = torch.cat(
                [append_dims(c_in, 5) * x_sigma, ref[:, None].expand(-1, f, -1, -1, -1)], dim=2
            )
            out = self.net(sample, c_noise, clip, time_ids, pose_images=poses).float()
            return append_dims(c_skip, 5) * x_sigma + append_dims(c_out, 5) * out

        extra = {}  # a loss without motion weighting keeps its (denoise, x0, hand_mask, generator) interface
        if getattr(self.loss, "motion_amplification", 1.0) != 1.0:
            radius = float(self.hparams.get("motion_mask_radius") or 1.0)  # the render's (0: 1 px), else 1 px
            extra["motion_mask"] = latent_motion_mask(batch["poses"], batch["reference_pose"], radius, self.latent_downsample)
        return self.loss(denoise, x0, batch.get("hand_mask"), generator, **extra)

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
        """``optimizer`` on parameter groups (no weight decay on biases and norms, i.e. tensors with < 2 dims;
        PoseNet's at ``pose_net_lr_scale`` x the learning rate) and ``lr_schedule`` stepped every optimizer step."""
        scale = float(self.hparams.get("pose_net_lr_scale", 1.0))
        pose = {id(p) for p in self.net.pose_net.parameters()} if scale != 1.0 else set()
        params = [p for p in self.net.parameters() if p.requires_grad]
        groups = []
        for in_pose in (False, True):  # PoseNet's own groups only with a scale (else all empty)
            part = [p for p in params if (id(p) in pose) == in_pose]
            groups += [{"params": [p for p in part if p.dim() >= 2]},
                       {"params": [p for p in part if p.dim() < 2], "weight_decay": 0.0}]  # fmt: skip
        optimizer = self.optimizer([g for g in groups if g["params"]])
        for group in optimizer.param_groups:
            if any(id(p) in pose for p in group["params"]):
                group["lr"] *= scale  # before the schedule reads its base learning rates
        scheduler = self.lr_schedule(optimizer, self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------ sampling (VideoPipeline)
    def guider_for(self, min_guidance: float | None = None, max_guidance: float | None = None) -> Guider:
        """``guider``, or a :class:`LinearRampGuider` when a scale is overridden (the other one from ``guider``)."""
        if min_guidance is None and max_guidance is None:
            return self.guider
        lo = min_guidance if min_guidance is not None else getattr(self.guider, "min_scale", max_guidance)
        hi = max_guidance if max_guidance is not None else getattr(self.guider, "max_scale", min_guidance)
        return LinearRampGuider(lo, hi)

    def pipeline(self, min_guidance: float | None = None, max_guidance: float | None = None) -> VideoPipeline:
        """A :class:`~csg_lightning.pipelines.video_pipeline.VideoPipeline` over this module's parts (the
        weights in use: wrap calls in ``averaged_weights()`` for the EMA weights during training)."""
        h, guider = self.hparams, self.guider_for(min_guidance, max_guidance)
        return VideoPipeline(
            self.net, self.vae, self.image_encoder, self.noise_scheduler, guider, fps=h.fps,
            motion_bucket_id=h.motion_bucket_id, noise_aug_strength=h.noise_aug_strength,
            num_steps=h.num_inference_steps, tile_size=h.tile_size, tile_overlap=h.tile_overlap,
            vae_chunk_size=h.vae_chunk_size, reference_residual=h.get("reference_residual"),
            detail_transfer=bool(h.get("detail_transfer", False)), motion_mask_radius=h.get("motion_mask_radius"),
            motion_mask_blur=h.get("motion_mask_blur"),
            **self.mimicmotion_options(),
        )  # fmt: skip

    def mimicmotion_options(self) -> dict:
        """``uncond_pose`` / ``clip_resize``; unset (None): MimicMotion's (no pose in the unconditional pass,
        SVD's CLIP resize) when ``mimicmotion_checkpoint`` is loaded, else ours (pose kept, as training's
        condition dropout keeps it; the antialiased resize our models were trained with)."""
        h = self.hparams
        mimic = h.get("mimicmotion_checkpoint") is not None
        uncond_pose, resize = h.get("uncond_pose"), h.get("clip_resize")
        return {"uncond_pose": (not mimic) if uncond_pose is None else bool(uncond_pose),
                "clip_resize": ("svd" if mimic else "antialias") if resize is None else resize}  # fmt: skip

    def averaged_weights(self):
        """Context manager: the EMA weights in ``net`` while it is open (no-op without EMA)."""
        return self._averaged()

    @torch.no_grad()
    def sample_latents(self, reference: torch.Tensor, poses: torch.Tensor, num_steps: int | None = None,
                       min_guidance: float | None = None, max_guidance: float | None = None,
                       tile_size: int | None = -1, tile_overlap: int | None = None, seed: int = 0) -> torch.Tensor:  # fmt: skip
        """reference [B, 3, H, W], poses [B, F, 3, H, W] (both in [-1, 1]) -> scaled latents [B, F, 4, h, w],
        with the EMA weights (``VideoPipeline.sample_latents``)."""
        with self.averaged_weights():
            return self.pipeline(min_guidance, max_guidance).sample_latents(
                reference,
                poses,
                num_steps=num_steps,
                tile_size=tile_size,
                tile_overlap=tile_overlap,
                seed=seed,
            )

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """scaled latents [B, F, 4, h, w] -> uint8 frames [B, F, H, W, 3]."""
        return self.pipeline().decode(latents)

    @torch.no_grad()
    def render(self, latents: torch.Tensor, reference: torch.Tensor,
               poses: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """latents [B, 1 + F, C, h, w] (frame 0: the reference's slot), reference [B, 3, H, W] in [-1, 1]
        (+ their pose images [B, 1 + F, 3, H, W]) -> uint8 frames [B, F, H, W, 3] (``VideoPipeline.render``:
        ``detail_transfer``, ``motion_mask_radius``, or plain decoding)."""
        return self.pipeline().render(latents, reference, poses)

    @torch.no_grad()
    def sample_batch(
        self, batch: dict, num_steps: int | None = None, seed: int = 0, **options
    ) -> torch.Tensor:
        """Generate the frames of a batch from its reference and poses -> uint8 [B, F, H, W, 3] (EMA weights).

        Frame 0 of the denoised clip is the reference with its pose (as at inference) and is dropped.
        """
        guidance = {k: options.pop(k) for k in ("min_guidance", "max_guidance") if k in options}
        with self.averaged_weights():
            return self.pipeline(**guidance)(batch["reference"], batch["poses"], batch.get("reference_pose"),
                                             num_steps=num_steps, seed=seed, **options)  # fmt: skip

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """``trainer.predict``: generated uint8 frames [B, F, H, W, 3] of each batch (seed = batch index)."""
        return self.sample_batch(batch, seed=batch_idx)

    # ------------------------------------------------------------------ EMA (trainable weights only)
    def _ema_params(self) -> dict[str, torch.nn.Parameter]:
        return {f"net.{name}": p for name, p in self.net.named_parameters() if p.requires_grad}

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)  # EMA weights into state_dict, training weights aside
        if not self.hparams.frozen_in_checkpoint:  # frozen parts are rebuilt from their pretrained class_path
            state = checkpoint["state_dict"]
            for key in [k for k in state if k.startswith(FROZEN)]:
                del state[key]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("hyper_parameters") or {}
        for key in (
            *PARTS,
            "_class_path",
            "_instantiator",
        ):  # keep the class_path configs: a re-save rebuilds
            if isinstance(saved.get(key), (dict, str)) and key not in self.hparams:
                self.hparams[key] = saved[key]
        state = checkpoint["state_dict"]
        for key, value in self.state_dict().items():
            if key.startswith(FROZEN) and key not in state:
                state[key] = value
        super().on_load_checkpoint(checkpoint)
