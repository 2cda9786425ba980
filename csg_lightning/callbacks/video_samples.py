"""Periodic video samples of the pose-guided generator: reference | poses | generated (| ground truth) mp4s."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import lightning.pytorch as pl
import numpy as np
import torch

from csg_lightning.callbacks.validation_samples import ValidationSampleCallback, sample_name
from csg_lightning.io.mp4 import write_mp4
from csg_lightning.timing import FPS, SAMPLE_RATE

log = logging.getLogger(__name__)


class VideoSampleCallback(ValidationSampleCallback):
    """After every ``every_n_validations``-th validation, generate videos for fixed validation examples.

    The first ``num_samples`` items of validation batch 0 are cached once (on CPU) and reused, so
    samples of successive validations are comparable. ``pl_module.sample_batch(batch, num_steps=...,
    seed=...)`` (the module's :class:`~csg_lightning.pipelines.video_pipeline.VideoPipeline` with its EMA
    weights) must return uint8 frames [B, F, H, W, 3]. Each video shows side by side, each panel
    ``panel_height`` pixels high: the reference image, the pose images, the generated frames and (with
    ``ground_truth``) the real frames, with the example's audio muxed. Written to
    ``<trainer.default_root_dir>/samples/step{S:07d}_{clip_id}.mp4`` and logged to W&B when the trainer
    has a ``WandbLogger``. ``fps`` None: the datamodule's ``video_fps`` (FPS / frame stride), else ``timing.FPS``.

    Distributed runs: only global rank 0 samples and writes (``sample_batch`` runs on the plain module,
    no collective); ``all_ranks=True`` makes every rank sample (needed when the model is sharded, FSDP).
    """

    def __init__(
        self,
        every_n_validations: int = 1,
        num_samples: int = 2,
        num_steps: int | None = 10,
        panel_height: int = 128,
        fps: float | None = None,
        ground_truth: bool = True,
        seed: int = 0,
        all_ranks: bool = False,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        super().__init__(num_samples, seed, all_ranks)
        if every_n_validations < 1 or num_samples < 1 or panel_height < 2:
            raise ValueError(
                "VideoSampleCallback: every_n_validations and num_samples must be >= 1 and panel_height >= 2, "
                f"got {every_n_validations}, {num_samples}, {panel_height}"
            )
        self.every_n_validations, self.num_steps = every_n_validations, num_steps
        self.panel_height, self.fps, self.ground_truth = panel_height // 2 * 2, fps, ground_truth
        self.sample_rate = sample_rate
        self._validations = 0

    wandb_key = "samples/video"

    def due(self, trainer: pl.Trainer) -> bool:
        self._validations += 1
        return self._validations % self.every_n_validations == 0

    def sample_and_write(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> list[Path]:
        with torch.no_grad():
            generated = pl_module.sample_batch(self._batch, num_steps=self.num_steps, seed=self.seed)
        return self.write(trainer, generated.cpu().numpy()) if trainer.is_global_zero else []

    def write(self, trainer: pl.Trainer, generated: np.ndarray) -> list[Path]:
        """generated uint8 [B, F, H, W, 3] -> mp4 paths (one per item of the cached batch)."""
        batch, out_dir = self._batch, Path(trainer.default_root_dir) / "samples"
        fps = self.fps or getattr(getattr(trainer, "datamodule", None), "video_fps", None) or FPS
        clip_ids = list(batch.get("clip_id", [f"sample{i}" for i in range(len(generated))]))
        paths = []
        for i, frames in enumerate(generated):
            reference = batch["reference"][i].permute(1, 2, 0).numpy()
            poses = batch["poses"][i].permute(0, 2, 3, 1).numpy()
            columns = [
                ("reference", np.broadcast_to(reference, frames.shape)),
                ("poses", poses),
                ("generated", frames),
            ]
            if self.ground_truth and "frames" in batch:
                columns.append(("ground truth", batch["frames"][i].permute(0, 2, 3, 1).numpy()))
            video = [
                np.concatenate([self._panel(c[t], name) for name, c in columns], axis=1)
                for t in range(len(frames))
            ]
            audio = batch["audio"][i].numpy() if "audio" in batch else None
            name = sample_name(clip_ids, i)
            path = out_dir / f"step{trainer.global_step:07d}_{name}.mp4"
            write_mp4(path, video, fps=fps, audio=audio, sample_rate=self.sample_rate)
            paths.append(path)
        log.info("VideoSampleCallback: wrote %d sample videos to %s", len(paths), out_dir)
        return paths

    def _panel(self, image: np.ndarray, label: str) -> np.ndarray:
        h, w = image.shape[:2]
        width = max(2, round(w * self.panel_height / h / 2) * 2)
        panel = cv2.resize(
            np.ascontiguousarray(image), (width, self.panel_height), interpolation=cv2.INTER_LINEAR
        )
        scale = self.panel_height / 256
        cv2.putText(panel, label, (4, max(10, round(16 * scale))), cv2.FONT_HERSHEY_SIMPLEX, max(0.3, 0.5 * scale),
                    (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
        return panel
