"""Periodic skeleton samples: generated vs ground-truth skeletons of fixed validation windows, as mp4."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch

from csg_lightning.callbacks.validation_samples import ValidationSampleCallback, sample_name
from csg_lightning.render.drawing_frame import frame_for, frame_size_of
from csg_lightning.render.skeleton_video import write_skeleton_video
from csg_lightning.timing import FPS, SAMPLE_RATE

log = logging.getLogger(__name__)


class SkeletonSampleCallback(ValidationSampleCallback):
    """At the end of validation, sample the first validation batch's windows and save them as videos.

    The first ``num_samples`` items of validation batch 0 are cached once (on CPU) and reused at every
    sampling, so videos of successive epochs are comparable. Every ``every_n_epochs`` epochs, the
    module's :class:`~csg_lightning.pipelines.skeleton_pipeline.SkeletonPipeline` (``pl_module.pipeline()``,
    run with the weights validation used: the EMA ones) generates the W window frames after each item's
    prefix (``pipeline.sample_batch(batch, num_steps=..., guidance_scale=..., seed=...)``); the generated and the ground-truth window are drawn side
    by side (each panel ``size`` pixels high) with the window's audio muxed, written to
    ``<trainer.default_root_dir>/samples/epoch{E:03d}_step{S}_{clip_id}.mp4`` and logged to W&B as
    videos when the trainer has a ``WandbLogger``.

    Distributed runs: only global rank 0 samples and writes, and ``sample_batch`` is called on the
    plain LightningModule's parts (not the DDP wrapper), so no collective is involved and the other ranks
    never wait on one. Set ``all_ranks=True`` when the model is sharded (FSDP), where every rank must
    take part in each forward; rank 0 still does all the writing.

    The skeletons are drawn in the source frame's pixels: ``frame_size=(width, height)`` when given;
    otherwise the frame is guessed from the batch's "width"/"height" entries, the datamodule's
    ``width``/``height`` attributes or the module's ``hparams.frame_size`` (Stage 1 keeps it), and used
    when it holds the skeletons, else a square frame is fitted around both sequences.

    ``canvas_size`` is passed to :func:`~csg_lightning.skeleton.drawing.draw_pose`: None (default) draws directly at the panel size
    (fast, crisp one-pixel lines); 2160 reproduces MimicMotion's pose images (slower, faint when small).
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        num_samples: int = 2,
        num_steps: int | None = None,
        guidance_scale: float | None = None,
        size: int = 256,
        fps: int = FPS,
        sample_rate: int = SAMPLE_RATE,
        frame_size: tuple[int, int] | None = None,
        seed: int = 0,
        all_ranks: bool = False,
        canvas_size: int | None = None,
    ) -> None:
        super().__init__(num_samples, seed, all_ranks)
        if every_n_epochs < 1 or num_samples < 1 or size < 2:
            raise ValueError(
                "SkeletonSampleCallback: every_n_epochs and num_samples must be >= 1 and size >= 2, got "
                f"{every_n_epochs}, {num_samples}, {size}"
            )
        self.every_n_epochs = every_n_epochs
        self.num_steps = num_steps
        self.guidance_scale = guidance_scale
        self.size = size
        self.fps = fps
        self.sample_rate = sample_rate
        self.frame_size = tuple(frame_size) if frame_size is not None else None
        self.canvas_size = canvas_size

    wandb_key = "samples/skeleton"

    def due(self, trainer: pl.Trainer) -> bool:
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def sample_and_write(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> list[Path]:
        batch = {k: v.to(pl_module.device) if torch.is_tensor(v) else v for k, v in self._batch.items()}
        keypoints, scores = pl_module.pipeline().sample_batch(
            batch, num_steps=self.num_steps, guidance_scale=self.guidance_scale, seed=self.seed
        )
        if not trainer.is_global_zero:
            return []
        return self._write(trainer, pl_module, _to_numpy(keypoints), _to_numpy(scores))

    def _write(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, keypoints: np.ndarray, scores: np.ndarray
    ) -> list[Path]:
        """keypoints [B, W, 134, 2], scores [B, W, 134] (generated windows) -> written mp4 paths."""
        batch = self._batch
        num, window = keypoints.shape[:2]
        samples_per_frame = round(self.sample_rate / self.fps)
        out_dir = Path(trainer.default_root_dir) / "samples"
        clip_ids = list(batch.get("clip_id", [f"sample{i}" for i in range(num)]))
        paths = []
        for i in range(num):
            truth_kp = _to_numpy(batch["keypoints"][i, -window:])
            truth_sc = _to_numpy(batch["scores"][i, -window:])
            gen_kp, gen_sc = keypoints[i], scores[i]
            if self.frame_size is not None:
                width, height = float(self.frame_size[0]), float(self.frame_size[1])
            else:
                both_kp, both_sc = np.stack([truth_kp, gen_kp]), np.stack([truth_sc, gen_sc])
                offset, width, height = frame_for(both_kp, both_sc, *self._guess_frame(trainer, pl_module, i))
                truth_kp, gen_kp = truth_kp - offset, gen_kp - offset
            audio = None
            if "audio" in batch:
                audio = _to_numpy(batch["audio"][i])[-window * samples_per_frame :]
            name = sample_name(clip_ids, i)
            path = out_dir / f"epoch{trainer.current_epoch:03d}_step{trainer.global_step}_{name}.mp4"
            write_skeleton_video(
                path, [(gen_kp, gen_sc), (truth_kp, truth_sc)], width, height, size=self.size, fps=self.fps,
                audio=audio, sample_rate=self.sample_rate, labels=("generated", "ground truth"),
                canvas_size=self.canvas_size,
            )  # fmt: skip
            paths.append(path)
        log.info("SkeletonSampleCallback: wrote %d sample videos to %s", len(paths), out_dir)
        return paths

    def _guess_frame(self, trainer, pl_module, i: int) -> tuple[float | None, float | None]:
        if "width" in self._batch and "height" in self._batch:
            return float(_item(self._batch["width"], i)), float(_item(self._batch["height"], i))
        datamodule = getattr(trainer, "datamodule", None)
        width, height = getattr(datamodule, "width", None), getattr(datamodule, "height", None)
        if isinstance(width, (int, float)) and isinstance(height, (int, float)):
            return float(width), float(height)
        return frame_size_of(getattr(pl_module, "hparams", None))


def _to_numpy(x) -> np.ndarray:
    if torch.is_tensor(x):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _item(value, i: int):
    if torch.is_tensor(value):
        return value.reshape(-1)[i].item() if value.ndim else value.item()
    if isinstance(value, (list, tuple)):
        return value[i]
    return value
