"""`SkeletonDiffusion`: the Stage-1 LightningModule (audio + reference skeleton -> skeleton sequence).

It receives its parts, built by LightningCLI from the ``class_path`` entries of the experiment YAML
(``experiments/components/skeleton/``): ``audio_encoder`` (an ``nn.Module`` with ``output_dim``),
``denoiser`` (a callable ``denoiser(audio_dim) -> nn.Module``: the denoiser class with its YAML
arguments, fusion class included), ``diffusion`` (noise schedule, targets, sampler), ``guider``
(classifier-free guidance), ``loss``, ``optimizer`` / ``lr_scheduler`` (callables), and EMA settings.
It only wires them together: training loss here, generation in ``pipelines.skeleton_pipeline``.

A checkpoint alone can generate: the statistics, the default reference skeleton and the window /
prefix lengths are buffers (filled from ``trainer.datamodule`` in :meth:`setup`), and the YAML's parts
are hyper-parameters (LightningCLI records them with ``_instantiator``, so ``load_from_checkpoint``
rebuilds them; :meth:`from_config` does the same for a model built in Python from such a dict).

Precomputed audio features (``csg-data features``): when a batch carries ``audio_features`` written by an
encoder whose identity equals this module's (frozen) ``audio_encoder``, the loss uses them and the encoder
does not run; features of another encoder are an error naming both. The encoder stays part of the module
(and of its checkpoints), so generation from raw audio works as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import lightning as L
import numpy as np
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from csg_lightning.data.audio_features import AudioFeaturesError, check_frozen, encoder_identity
from csg_lightning.models.diffusion import DiffusionProcess
from csg_lightning.models.ema_hooks import EMAHooks
from csg_lightning.models.loss import DiffusionLoss
from csg_lightning.models.lr_schedule import weight_decay_groups
from csg_lightning.models.skeleton_codec import SkeletonCodec
from csg_lightning.pipelines.guider import ConstantGuider, Guider
from csg_lightning.skeleton.layout import NUM_KEYPOINTS

if TYPE_CHECKING:
    from csg_lightning.pipelines.skeleton_pipeline import SkeletonPipeline

PARTS = ("audio_encoder", "denoiser", "diffusion", "guider", "loss", "optimizer", "lr_scheduler")


def build_part(cls: type, name: str, value):
    """A part given as a config dict (``{"class_path": ..., "init_args": ...}``) -> the object, parsed
    against the type of ``cls.__init__``'s argument ``name`` (as LightningCLI would); other values as given."""
    if not isinstance(value, dict):
        return value
    import typing

    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument(f"--{name}", type=typing.get_type_hints(cls.__init__)[name])
    return parser.instantiate_classes(parser.parse_object({name: value}))[name]


def skeleton_batch_size(batch: dict) -> int:
    """Samples in a batch (for ``ThroughputMonitor(batch_size_fn=...)``)."""
    return int(batch["features"].shape[0])


def skeleton_batch_frames(batch: dict) -> int:
    """Skeleton frames in a batch, prefix included (for ``ThroughputMonitor(length_fn=...)``)."""
    return int(batch["features"].shape[0] * batch["features"].shape[1])


class PrecomputedAudio:
    """Stands in for the audio encoder with a batch's precomputed features [B, L, C] (L = data prefix + window).

    ``__call__(audio, num_frames)`` -> the last ``num_frames`` frames (the codec drops the first frames'
    audio for a shorter model prefix, and asks for the frames that remain)."""

    def __init__(self, features: torch.Tensor) -> None:
        self.features = features

    def __call__(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        if num_frames > self.features.shape[1]:
            raise ValueError(
                f"batch['audio_features'] has {self.features.shape[1]} frames, the model needs {num_frames}"
            )
        return self.features[:, self.features.shape[1] - num_frames :].float()


class SkeletonDiffusion(EMAHooks, L.LightningModule):
    """Audio-conditioned skeleton diffusion (the paper's Stage 1), its parts passed in.

    Scalars: ``use_prefix`` (False: no reference prefix), ``prefix_repeat_prob`` (training: repeat the
    last prefix frame), ``local_representation`` (False: absolute coordinates in a ``frame_size``
    frame), ``window_frames`` / ``prefix_frames`` (None: the datamodule's ``window`` / ``num_prefix``),
    ``crossfade_frames`` (overlap of generation windows), ``ema_decay`` (0 disables EMA),
    ``ema_start_step``. Fidelity to the paper's release: ``prefix_low_confidence`` ("keep": the
    estimator's positions, ours; "mean": the dataset mean, the release's), ``outer_lip_window`` /
    ``inner_lip_window`` (output smoothing of the lips; None: 11 like every point; the release: 7 / 5).
    """

    def __init__(
        self,
        audio_encoder: nn.Module,
        denoiser: Callable[[int], nn.Module],
        diffusion: DiffusionProcess,
        guider: Guider | None = None,
        loss: DiffusionLoss | None = None,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
        use_prefix: bool = True,
        prefix_repeat_prob: float = 0.3,
        local_representation: bool = True,
        frame_size: int = 512,
        window_frames: int | None = None,
        prefix_frames: int | None = None,
        crossfade_frames: int = 25,
        ema_decay: float = 0.999,
        ema_start_step: int = 0,
        prefix_low_confidence: str = "keep",
        outer_lip_window: int | None = None,
        inner_lip_window: int | None = None,
    ) -> None:
        super().__init__()
        from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters

        given = dict(audio_encoder=audio_encoder, denoiser=denoiser, diffusion=diffusion, guider=guider, loss=loss,
                     optimizer=optimizer, lr_scheduler=lr_scheduler)  # fmt: skip
        # Parts given as config dicts ({class_path, init_args}: LightningCLI, from_config, a checkpoint) are kept
        # as hyper-parameters; parts given as objects are not pickled into the checkpoint (pass them again to
        # load_from_checkpoint, or build with from_config).
        objects = [name for name, value in given.items() if value is not None and not isinstance(value, dict)]
        self.save_hyperparameters(ignore=objects if _given_hyperparameters.get() is None else None)
        audio_encoder, denoiser, diffusion, guider, loss, optimizer, lr_scheduler = (
            build_part(type(self), name, value) for name, value in given.items()
        )
        self.audio_encoder = audio_encoder
        self.denoiser = denoiser(int(audio_encoder.output_dim))
        self.diffusion = diffusion
        self.guider = guider if guider is not None else ConstantGuider(3.5)
        self.loss = loss if loss is not None else DiffusionLoss()
        self.optimizer, self.lr_scheduler = optimizer, lr_scheduler
        self.use_prefix, self.prefix_repeat_prob = bool(use_prefix), float(prefix_repeat_prob)
        self.crossfade_frames = int(crossfade_frames)
        self.codec = SkeletonCodec(local_representation, frame_size, prefix_low_confidence)
        self.lip_windows = (outer_lip_window, inner_lip_window)  # None: the pipeline's smoothing window (11)
        self.register_buffer("default_reference_keypoints", torch.zeros(NUM_KEYPOINTS, 2))
        self.register_buffer("default_reference_scores", torch.zeros(NUM_KEYPOINTS))
        self.register_buffer("window_length", torch.tensor(-1 if window_frames is None else int(window_frames)))
        self.register_buffer("prefix_length", torch.tensor(-1 if prefix_frames is None else int(prefix_frames)))
        self.init_ema()
        self._encoder_id: str | None = None

    @classmethod
    def from_config(cls, init_args: dict) -> SkeletonDiffusion:
        """Build from the YAML's ``model.init_args`` as a dict (``class_path`` entries for the parts), the way
        LightningCLI does, so the checkpoint records the dict and ``load_from_checkpoint(path)`` rebuilds."""
        from jsonargparse import ArgumentParser
        from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters_context

        parser = ArgumentParser(exit_on_error=False)
        parser.add_class_arguments(cls, "module", fail_untyped=False)
        config = parser.parse_object({"module": dict(init_args)})
        hparams = config.module.clone().as_dict()  # every argument, defaults included
        with _given_hyperparameters_context(hparams=hparams, instantiator="lightning.pytorch.cli.instantiate_module"):
            return parser.instantiate_classes(config).module

    # ------------------------------------------------------------------ sizes
    @property
    def window_frames(self) -> int | None:
        """Generated frames per window (None until trained or given)."""
        return int(self.window_length) if int(self.window_length) >= 0 else None

    @property
    def prefix_frames(self) -> int | None:
        """Prefix frames of a data window (None until trained or given)."""
        return int(self.prefix_length) if int(self.prefix_length) >= 0 else None

    @property
    def model_prefix(self) -> int:
        """Prefix frames the denoiser sees (0 for the "no reference prefix" ablation)."""
        return int(self.prefix_frames or 0) if self.use_prefix else 0

    def setup(self, stage: str) -> None:
        trainer = self._trainer
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        if dm is None:
            return
        for name, buffer, dm_name in (("window_frames", self.window_length, "window"),
                                      ("prefix_frames", self.prefix_length, "num_prefix")):  # fmt: skip
            value = getattr(dm, dm_name, None)
            if value is None:
                continue
            mine = int(buffer)
            if mine >= 0 and mine != int(value):
                raise ValueError(f"model.{name}={mine} but the datamodule's {dm_name} is {value}; make them equal")
            buffer.fill_(int(value))
        stats = getattr(dm, "stats", None)
        if stats is not None:
            self.codec.load_stats(stats)
        reference = getattr(dm, "default_reference", None)
        if reference is not None:
            kp, sc = reference
            self.default_reference_keypoints.copy_(torch.as_tensor(np.asarray(kp), dtype=torch.float32))
            self.default_reference_scores.copy_(torch.as_tensor(np.asarray(sc), dtype=torch.float32))
        features = getattr(dm, "audio_features_identity", None)
        if features is not None:
            self.check_audio_features(features["id"], features.get("encoder_file", "the datamodule's features"))
        if self.codec.local and stats is None and not bool(self.codec.has_stats):
            raise ValueError("SkeletonDiffusion: the datamodule has no `stats` (mean/std [246]) for the local features")

    # ------------------------------------------------------------------ precomputed audio features
    def audio_encoder_id(self) -> str:
        """The identity (``data/audio_features.encoder_identity``) of the frozen audio encoder, computed once."""
        if self._encoder_id is None:
            check_frozen(self.audio_encoder, "SkeletonDiffusion with precomputed audio features")
            self._encoder_id = encoder_identity(self.audio_encoder)["id"]
        return self._encoder_id

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self._encoder_id = None  # the encoder's weights are about to change

    def check_audio_features(self, features_id: str, source: str) -> None:
        """Raise unless features of encoder ``features_id`` are this module's encoder's output."""
        mine = self.audio_encoder_id()
        if features_id != mine:
            raise AudioFeaturesError(
                f"{source}: the precomputed audio features were written by encoder {features_id}, but "
                f"model.audio_encoder ({type(self.audio_encoder).__name__}) is encoder {mine}; recompute them "
                "with this encoder (`csg-data features SHARDS --encoder <its YAML or this checkpoint>`) or "
                "train on raw audio (data.init_args.audio_features: null)"
            )

    def _batch_encoder(self, batch: dict):
        """The audio encoder for this batch: its precomputed features when it carries matching ones."""
        if "audio_features" not in batch:
            return self.audio_encoder
        ids = set(batch.get("audio_features_id") or ["(no audio_features_id)"])
        for features_id in ids:
            self.check_audio_features(str(features_id), "batch['audio_features']")
        return PrecomputedAudio(batch["audio_features"])

    # ------------------------------------------------------------------ training
    def _split(self, batch: dict):
        if self.prefix_frames is None:
            raise ValueError(
                "SkeletonDiffusion: prefix_frames is unknown; set model.prefix_frames or use a datamodule "
                "with a `num_prefix` attribute"
            )
        return self.codec.split(batch, self.prefix_frames, self.model_prefix, self._batch_encoder(batch))

    def _diffusion_loss(self, batch: dict, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        prefix, x0, mask, audio = self._split(batch)
        b, dev = x0.shape[0], x0.device
        if self.training and prefix.shape[1] > 0 and self.prefix_repeat_prob > 0:
            repeat = torch.rand(b, device=dev) < self.prefix_repeat_prob
            prefix = torch.where(repeat[:, None, None], prefix[:, -1:].expand_as(prefix), prefix)
        if generator is None:
            noise = torch.randn_like(x0)
            t = self.diffusion.sample_timesteps(b, dev)
            drop = self.denoiser.audio.sample_drop(b, dev)
        else:  # deterministic validation loss
            noise = torch.randn(x0.shape, generator=generator).to(dev)
            t = torch.randint(0, self.diffusion.num_train_timesteps, (b,), generator=generator).to(dev)
            drop = torch.zeros(b, dtype=torch.bool, device=dev)
        x_t = self.diffusion.add_noise(x0, noise, t)
        pred = self.denoiser(torch.cat([prefix, x_t], dim=1), t, audio, drop, prefix.shape[1]).float()
        target = self.diffusion.target(x0, noise, t)
        x0_hat = self.diffusion.predicted_x0(pred, x_t, t) if self.loss.needs_x0 else None
        return self.loss(pred, target, mask, x0_hat, x0)

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
        bs = skeleton_batch_size(batch)
        self.log_dict({f"val/{k}": v for k, v in losses.items() if k != "loss"}, sync_dist=True, batch_size=bs)
        self.log("val/loss", losses["loss"], prog_bar=True, sync_dist=True, batch_size=bs)
        return losses["loss"]

    def configure_optimizers(self):
        optimizer = self.optimizer(weight_decay_groups(self.parameters()))
        if self.lr_scheduler is None:
            return optimizer
        scheduler = self.lr_scheduler(optimizer)
        if hasattr(scheduler, "set_total_steps"):
            scheduler.set_total_steps(self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------------ generation (the pipeline)
    def pipeline(self) -> SkeletonPipeline:
        """A :class:`SkeletonPipeline` on this module's parts (run it inside :meth:`averaged` for EMA weights).

        Imported here, not at the top: pipelines sit above the modules (they import networks, never this
        module), so the module-level imports stay one-way."""
        from csg_lightning.pipelines.skeleton_pipeline import SkeletonPipeline

        return SkeletonPipeline.from_module(self)

    def averaged(self):
        """Context manager: the EMA weights inside (a no-op without EMA or after fit / loading)."""
        return self._averaged()

    def sample_batch(self, batch: dict, num_steps: int | None = None, guidance_scale: float | None = None,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """:meth:`SkeletonPipeline.sample_batch` with the EMA weights."""
        with self._averaged():
            return self.pipeline().sample_batch(batch, num_steps, guidance_scale, seed)

    def generate(self, audio, reference_keypoints=None, reference_scores=None, **kwargs):
        """:meth:`SkeletonPipeline.__call__` with the EMA weights (audio of any length -> skeletons)."""
        with self._averaged():
            return self.pipeline()(audio, reference_keypoints, reference_scores, **kwargs)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        keypoints, scores = self.sample_batch(batch, seed=batch_idx)
        return {"keypoints": keypoints, "scores": scores, "clip_id": batch.get("clip_id")}
