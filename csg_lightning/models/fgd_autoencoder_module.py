"""``FGDAutoencoderModule``: trains the FGD feature network (``SkeletonAutoencoder``) on the train split.

Each step cuts a random clip of ``clip_frames`` frames from every window of the batch
(``SkeletonAudioDataModule``: "features" [B, L, 246] z-scored, "mask" [B, L, 123]), zeroes the
unconfident features (the dataset mean) and minimises the masked L2 reconstruction error plus a
masked L2 on frame-to-frame velocities (weight ``velocity_weight``). The datamodule's statistics
are copied into buffers so a checkpoint alone gives the encoder and its normalisation
(:func:`load_fgd_encoder`).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch

from csg_lightning.models.skeleton_autoencoder import SkeletonAutoencoder
from csg_lightning.skeleton.local import NUM_LOCAL_FEATURES


def _masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return ((pred - target) ** 2 * mask).sum() / mask.sum().clamp_min(1.0)


class FGDAutoencoderModule(L.LightningModule):
    """Lightning wrapper of :class:`SkeletonAutoencoder` (hidden, latent_dim, clip_frames: its sizes)."""

    def __init__(
        self,
        hidden: int = 128,
        latent_dim: int = 32,
        clip_frames: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        velocity_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.autoencoder = SkeletonAutoencoder(NUM_LOCAL_FEATURES, hidden, latent_dim, clip_frames)
        self.register_buffer("feature_mean", torch.zeros(NUM_LOCAL_FEATURES))
        self.register_buffer("feature_std", torch.ones(NUM_LOCAL_FEATURES))

    def setup(self, stage: str) -> None:
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        stats = getattr(dm, "stats", None)
        if stats is not None:
            self.feature_mean.copy_(torch.as_tensor(np.asarray(stats["mean"]), dtype=torch.float32))
            self.feature_std.copy_(torch.as_tensor(np.asarray(stats["std"]), dtype=torch.float32))

    def _clips(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Random clips: features [B, C, 246] (unconfident -> 0) and feature mask [B, C, 246]."""
        feats, mask = batch["features"], batch["mask"]
        c = self.hparams.clip_frames
        if feats.shape[1] < c:
            raise ValueError(f"windows of {feats.shape[1]} frames are shorter than clip_frames={c}")
        starts = torch.randint(0, feats.shape[1] - c + 1, (feats.shape[0],), device=feats.device)
        index = starts[:, None] + torch.arange(c, device=feats.device)[None]
        feats = torch.gather(feats, 1, index[..., None].expand(-1, -1, feats.shape[2]))
        mask = torch.gather(mask, 1, index[..., None].expand(-1, -1, mask.shape[2]))
        mask = mask.repeat_interleave(2, dim=-1)  # 123 points -> 246 features (x, y)
        return torch.nan_to_num(feats) * mask, mask

    def _loss(self, batch: dict) -> torch.Tensor:
        x, mask = self._clips(batch)
        recon = self.autoencoder(x)
        loss = _masked_mse(recon, x, mask)
        if self.hparams.velocity_weight > 0:
            vmask = mask[:, 1:] * mask[:, :-1]
            loss = loss + self.hparams.velocity_weight * _masked_mse(recon.diff(dim=1), x.diff(dim=1), vmask)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["features"].shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("val/loss", loss, prog_bar=True, batch_size=batch["features"].shape[0], sync_dist=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )


def load_fgd_encoder(path: str | Path) -> tuple[SkeletonAutoencoder, dict[str, np.ndarray]]:
    """An ``FGDAutoencoderModule`` checkpoint -> (autoencoder in eval mode, stats {"mean", "std"} [246])."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"FGD encoder checkpoint not found: {path} "
            "(train one with `csg fit --config experiments/eval/fgd_autoencoder.yaml`)"
        )
    from csg_lightning.checkpoints.safe_load import load_module

    module = load_module(FGDAutoencoderModule, path, map_location="cpu")
    stats = {"mean": module.feature_mean.numpy().copy(), "std": module.feature_std.numpy().copy()}
    return module.autoencoder.eval(), stats
