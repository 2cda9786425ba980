"""In-process resume runs for the drills: a real Lightning Trainer (CPU) fitting a tiny
``SkeletonDiffusion`` on ``SkeletonAudioDataModule`` shards, with a :class:`BatchRecorder`.

:func:`fit` returns a :class:`FitResult`: the per-step records, the raw trainable weights at the
end of fit and the model's ``state_dict`` after fit (EMA weights swapped in). :func:`compare_runs`
says where a resumed run departs from the uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from resume_recorder import BatchRecorder, DrillCrash

from csg_lightning.data.skeleton_audio import SkeletonAudioDataModule
from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

WINDOW, PREFIX = 20, 5


@dataclass
class FitResult:
    records: list[dict]  # one per step: step, epoch, rank, clip_id [B], start [B]
    final_weights: dict[str, torch.Tensor]  # raw trainable weights at the end of fit
    state_dict: dict[str, torch.Tensor]  # the model after fit (EMA weights)
    optimizer: dict[str, torch.Tensor]  # the optimizer's state tensors after fit, by "param.key"
    checkpoints: dict[int, Path]  # global step -> checkpoint file written by this run


def tiny_model() -> SkeletonDiffusion:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the tiny model's config
    from tiny_skeleton import tiny_skeleton_diffusion

    return tiny_skeleton_diffusion(audio_dim=16, warmup_steps=2, crossfade_frames=5, num_inference_steps=2,
                                   lr=1e-3, ema_decay=0.9)  # fmt: skip


def fit(
    shards: Path,
    num_workers: int,
    max_steps: int,
    ckpt_dir: Path | None = None,
    every_n_train_steps: int = 3,
    ckpt_path: Path | None = None,
    batch_size: int = 1,
    crash_at_step: int | None = None,
) -> FitResult:
    """One ``Trainer.fit`` from scratch (or from ``ckpt_path``) up to ``max_steps``.

    With ``ckpt_dir`` a ``ModelCheckpoint`` keeps a checkpoint every ``every_n_train_steps``.
    ``crash_at_step``: the run dies (``DrillCrash``) before training that step, as a crash would.
    """
    L.seed_everything(0, verbose=False)
    recorder = BatchRecorder(crash_at_step=crash_at_step)
    callbacks: list = [recorder]
    if ckpt_dir is not None:
        callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, every_n_train_steps=every_n_train_steps,
                                         save_top_k=-1, filename="{step}"))  # fmt: skip
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_steps=max_steps, logger=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0, gradient_clip_val=1.0,
        deterministic=True, callbacks=callbacks, enable_checkpointing=ckpt_dir is not None,
    )  # fmt: skip
    dm = SkeletonAudioDataModule(str(shards), batch_size=batch_size, num_workers=num_workers,
                                 window=WINDOW, num_prefix=PREFIX, seed=0)  # fmt: skip
    model = tiny_model()
    try:
        trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    except DrillCrash:
        if crash_at_step is None:
            raise
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    optimizer = {}
    if trainer.optimizers:
        for i, slots in trainer.optimizers[0].state_dict()["state"].items():
            optimizer.update({f"{i}.{k}": v.detach().clone() for k, v in slots.items() if torch.is_tensor(v)})
    written = {}
    if ckpt_dir is not None:
        written = {int(p.stem.split("=")[1]): p for p in Path(ckpt_dir).glob("step=*.ckpt")}
    return FitResult(recorder.records, recorder.final_weights, state, optimizer, written)


def batches(records: list[dict]) -> list[tuple]:
    """Records -> comparable (step, clip ids, window starts) tuples."""
    return [(r["step"], tuple(r["clip_id"]), tuple(r["start"])) for r in records]


def max_abs_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest |a - b| over the tensors of two state dicts with the same keys (inf if keys differ)."""
    if a.keys() != b.keys() or not a:
        return float("inf")
    return max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0 for k in a)


def compare_runs(full: FitResult, resumed: FitResult, from_step: int) -> dict:
    """How a run resumed at ``from_step`` compares with the uninterrupted one, for assertions/reports."""
    expected = [b for b in batches(full.records) if b[0] >= from_step]
    got = batches(resumed.records)
    differ = [i for i, (e, g) in enumerate(zip(expected, got, strict=False)) if e != g]
    return {
        "steps": (len(expected), len(got)),
        "first_difference": None if not differ else (expected[differ[0]], got[differ[0]]),
        "num_differ": len(differ) + abs(len(expected) - len(got)),
        "max_dw_raw": max_abs_diff(full.final_weights, resumed.final_weights),
        "max_d_optimizer": max_abs_diff(full.optimizer, resumed.optimizer),
        "max_dw_state": max_abs_diff(full.state_dict, resumed.state_dict),
    }
