"""``VAEAutoencoder``: fits the Stage-2 VAE (a diffusers ``AutoencoderKLTemporalDecoder``) as an autoencoder.

The demo's Stage 2 needs a VAE that can draw a person: this module trains one from scratch on the demo
frames (``experiments/video/vae_demo.yaml``, minutes on CPU) and
:func:`csg_lightning.video.fitted_vae.fitted_vae` hands it to ``VideoGenerator`` as its frozen ``vae``.

Batches come from :class:`~csg_lightning.data.pose_video.PoseVideoDataModule`: "frames" uint8
[B, F, 3, H, W]. Each item's F frames are encoded frame by frame and decoded together (the temporal
decoder mixes the frames of a clip, as in ``video.vae_latents``). Loss on [-1, 1] pixels:
``l1_weight`` x L1 + ``l2_weight`` x L2 + ``edge_weight`` x L1 of the horizontal and vertical pixel
differences (sharp outlines: the figure's edges carry its pose) + ``kl_weight`` x the KL of the
posterior to N(0, I) (mean over latent elements). The per-channel spread of the posterior means is
tracked in the buffers ``latent_mean`` / ``latent_std`` (a running average over training batches):
:func:`~csg_lightning.video.fitted_vae.fitted_vae` folds it into the weights, so latents x 0.18215
(the SVD scaling factor) have unit spread, as the EDM loss of Stage 2 assumes (``sigma_data`` 1).

Validation logs ``val/psnr`` (reconstruction from the posterior mode) beside ``val/psnr_repeat``
(frame 0 of each item repeated over its frames: the bar Stage 2's baseline sets) and writes a real |
reconstruction sheet to ``<run>/samples/vae_step<N>.png``. ``colour_augment`` (training only) permutes the
RGB channels, inverts and flips each item at random (see :meth:`VAEAutoencoder.augment`). The network is the diffusers class, free of
Lightning; this module owns only the loss, the statistics, logging and the optimizer.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import lightning.pytorch as L
import numpy as np
import torch
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from torch import nn

from csg_lightning.io.atomic import atomic_path
from csg_lightning.video.pixel_range import to_model_range, to_uint8
from csg_lightning.video.warmup_cosine_schedule import WarmupCosineSchedule

log = logging.getLogger(__name__)
PARTS = ("vae", "optimizer", "lr_schedule")


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of images in [-1, 1] (data range 1 after mapping to [0, 1]), over all elements."""
    mse = (((a.clamp(-1, 1) - b) / 2) ** 2).mean()
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


def edge_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L1 between the horizontal and vertical pixel differences of images [N, C, H, W]."""
    dx = (a[..., :, 1:] - a[..., :, :-1]) - (b[..., :, 1:] - b[..., :, :-1])
    dy = (a[..., 1:, :] - a[..., :-1, :]) - (b[..., 1:, :] - b[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


def default_optimizer(params) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)


class VAEAutoencoder(L.LightningModule):
    """Reconstruction training of an ``AutoencoderKLTemporalDecoder`` (all of its weights are trained)."""

    def __init__(
        self,
        vae: nn.Module,
        l1_weight: float = 1.0,
        l2_weight: float = 1.0,
        edge_weight: float = 0.5,
        kl_weight: float = 1e-6,
        stats_momentum: float = 0.02,
        optimizer: OptimizerCallable | None = None,
        lr_schedule: WarmupCosineSchedule | None = None,
        sheet_items: int = 4,
        colour_augment: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("l1_weight", l1_weight), ("l2_weight", l2_weight), ("edge_weight", edge_weight),
                            ("kl_weight", kl_weight)):  # fmt: skip
            if value < 0:
                raise ValueError(f"VAEAutoencoder: {name} must be >= 0, got {value}")
        if not 0.0 < stats_momentum <= 1.0:
            raise ValueError(f"VAEAutoencoder: stats_momentum must be in (0, 1], got {stats_momentum}")
        from_config = _given_hyperparameters.get() is not None  # see VideoGenerator: class_path parts
        self.save_hyperparameters(ignore=None if from_config else list(PARTS))
        self.vae = vae
        channels = int(vae.config.latent_channels)
        self.register_buffer("latent_mean", torch.zeros(channels))
        self.register_buffer("latent_std", torch.ones(channels))
        self.register_buffer("stats_seen", torch.zeros((), dtype=torch.long))
        self.optimizer = optimizer if optimizer is not None else default_optimizer
        self.lr_schedule = lr_schedule if lr_schedule is not None else WarmupCosineSchedule(100, 0.1)

    # ------------------------------------------------------------------ the autoencoder
    def reconstruct(self, frames: torch.Tensor, sample: bool = True) -> tuple[torch.Tensor, object]:
        """frames [B, F, 3, H, W] in [-1, 1] -> (reconstruction [B, F, 3, H, W], posterior over B*F frames)."""
        if frames.ndim != 5:
            raise ValueError(f"VAEAutoencoder: expected frames [B, F, 3, H, W], got {tuple(frames.shape)}")
        b, f = frames.shape[:2]
        posterior = self.vae.encode(frames.flatten(0, 1)).latent_dist
        z = posterior.sample() if sample else posterior.mode()
        recon = self.vae.decode(z, num_frames=f).sample
        return recon.view(b, f, *recon.shape[1:]), posterior

    def losses(self, batch: dict, sample: bool = True) -> dict[str, torch.Tensor]:
        frames = to_model_range(batch["frames"])
        recon, posterior = self.reconstruct(frames, sample)
        x, y = recon.flatten(0, 1).float(), frames.flatten(0, 1)
        out = {"l1": (x - y).abs().mean(), "l2": ((x - y) ** 2).mean(), "edge": edge_l1(x, y),
               "kl": posterior.kl().mean() / posterior.mean[0].numel()}  # fmt: skip
        h = self.hparams
        out["loss"] = (h.l1_weight * out["l1"] + h.l2_weight * out["l2"] + h.edge_weight * out["edge"]
                       + h.kl_weight * out["kl"])  # fmt: skip
        out["psnr"] = psnr(recon.detach(), frames)
        out["recon"], out["frames"], out["means"] = recon.detach(), frames, posterior.mean.detach()
        return out

    @torch.no_grad()
    def _track_latents(self, means: torch.Tensor) -> None:
        """Running per-channel mean / std of the posterior means [N, C, h, w] (the first batch sets them)."""
        mean = means.float().mean(dim=(0, 2, 3))
        std = means.float().std(dim=(0, 2, 3)).clamp_min(1e-6)
        m = 1.0 if int(self.stats_seen) == 0 else float(self.hparams.stats_momentum)
        self.latent_mean.lerp_(mean, m)
        self.latent_std.lerp_(std, m)
        self.stats_seen += 1

    def augment(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 [B, F, 3, H, W] -> per item a random RGB channel order, colour inversion (p 0.5) and
        horizontal flip (p 0.5): the demo has few speakers, so without it the VAE learns their palettes
        only and paints a held-out speaker in the wrong colours."""
        out = []
        for item in frames:
            item = item[:, torch.randperm(3, device=item.device)]
            if torch.rand(()) < 0.5:
                item = 255 - item
            out.append(item.flip(-1) if torch.rand(()) < 0.5 else item)
        return torch.stack(out)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.hparams.colour_augment:
            batch = {**batch, "frames": self.augment(batch["frames"])}
        out = self.losses(batch)
        self._track_latents(out["means"])
        bs = int(batch["frames"].shape[0])
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=bs)
        self.log("train/psnr", out["psnr"], prog_bar=True, batch_size=bs)
        for key in ("l1", "l2", "edge", "kl"):
            self.log(f"train/{key}", out[key], batch_size=bs)
        return out["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self.losses(batch, sample=False)
        frames, bs = out["frames"], int(batch["frames"].shape[0])
        repeat = frames[:, :1].expand_as(frames)
        self.log("val/loss", out["loss"], prog_bar=True, batch_size=bs, sync_dist=True)
        self.log("val/psnr", out["psnr"], prog_bar=True, batch_size=bs, sync_dist=True)
        self.log("val/psnr_repeat", psnr(repeat[:, 1:], frames[:, 1:]), batch_size=bs, sync_dist=True)
        if batch_idx == 0 and self.trainer.is_global_zero and self.hparams.sheet_items > 0:
            self._write_sheet(frames, out["recon"])
        return out["loss"]

    def _write_sheet(self, frames: torch.Tensor, recon: torch.Tensor) -> Path | None:
        """real frames (top) over their reconstructions (bottom), the first frames of ``sheet_items`` items."""
        root = getattr(self.trainer, "default_root_dir", None)
        if root is None or getattr(self.trainer, "sanity_checking", False):
            return None
        n = min(int(self.hparams.sheet_items), frames.shape[0])
        rows = [to_uint8(t[:n, 0]).permute(0, 2, 3, 1).cpu().numpy() for t in (frames, recon)]
        sheet = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
        path = Path(root) / "samples" / f"vae_step{self.global_step:06d}.png"
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), np.ascontiguousarray(sheet[:, :, ::-1])):
                raise OSError(f"VAEAutoencoder: could not write {path}")
        return path

    def configure_optimizers(self):
        optimizer = self.optimizer(self.vae.parameters())
        scheduler = self.lr_schedule(optimizer, self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def reconstruction_psnr(vae: nn.Module, frames: torch.Tensor) -> float:
    """PSNR (dB) of ``vae``'s reconstruction (posterior mode) of uint8 frames [B, F, 3, H, W]."""
    x = to_model_range(frames).to(next(vae.parameters()).dtype)
    with torch.no_grad():
        z = vae.encode(x.flatten(0, 1)).latent_dist.mode()
        recon = vae.decode(z, num_frames=frames.shape[1]).sample.float()
    return float(psnr(recon, x.flatten(0, 1).float()))

