"""``ModelCheckpoint`` whose ``last.ckpt`` bounds the work a crash, a kill or a preemption can lose.

Lightning's ``ModelCheckpoint`` refreshes ``last.ckpt`` only when it saves a top-k checkpoint
(``every_n_train_steps`` …), does not save at the end of fit once anything was saved (a 300-step run
with a 47-step cadence ends with step 282 on disk), and ignores SIGTERM. This subclass adds:

* ``last_every_n_steps`` / ``last_every_minutes``: ``last.ckpt`` is rewritten after a train batch when
  either bound is reached (the clock decision is made on rank 0 and broadcast, so every DDP rank
  saves together);
* the final state at the end of fit, whatever the cadence;
* SIGTERM (SLURM preemption, ``scancel``, ``kill``): Lightning stops after the current batch with
  ``SIGTERMException``; the state at that batch end is saved to ``last.ckpt`` before the process
  exits, so ``csg fit … --run NAME --ckpt_path last`` continues exactly where it stopped.

At ``setup`` it puts :class:`~csg_lightning.checkpoints.atomic_io.AtomicCheckpointIO` on the trainer's
strategy when that uses Lightning's plain ``TorchCheckpointIO``: its saves are never torn.
"""

from __future__ import annotations

import logging
import time

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from csg_lightning.checkpoints.atomic_io import use_atomic_checkpoint_io

log = logging.getLogger(__name__)


class CrashSafeModelCheckpoint(ModelCheckpoint):
    def __init__(self, *args, last_every_n_steps: int | None = 200, last_every_minutes: float | None = 5.0,
                 **kwargs) -> None:  # fmt: skip
        if last_every_n_steps is not None and (not isinstance(last_every_n_steps, int) or last_every_n_steps < 1):
            raise ValueError(f"CrashSafeModelCheckpoint: last_every_n_steps must be an int >= 1 or null, got {last_every_n_steps!r}")
        if last_every_minutes is not None and not last_every_minutes > 0:
            raise ValueError(f"CrashSafeModelCheckpoint: last_every_minutes must be > 0 or null, got {last_every_minutes!r}")
        if kwargs.get("save_last") is False:
            raise ValueError("CrashSafeModelCheckpoint: save_last must be true (or 'link'); it exists to keep last.ckpt fresh")
        kwargs.setdefault("save_last", True)
        super().__init__(*args, **kwargs)
        self.last_every_n_steps = last_every_n_steps
        self.last_every_minutes = last_every_minutes
        self._last_refresh_step = -1
        self._last_refresh_time = time.monotonic()

    # -- when ---------------------------------------------------------------------------------
    def _last_is_stale(self, trainer) -> bool:
        return trainer.global_step > 0 and self._last_refresh_step != trainer.global_step

    def _last_is_due(self, trainer) -> bool:
        if not self._last_is_stale(trainer) or self._should_skip_saving_checkpoint_for_last(trainer):
            return False
        since = trainer.global_step - max(self._last_refresh_step, 0)
        due = self.last_every_n_steps is not None and since >= self.last_every_n_steps
        if self.last_every_minutes is not None:
            by_clock = (time.monotonic() - self._last_refresh_time) >= 60.0 * self.last_every_minutes
            due = due or bool(trainer.strategy.broadcast(by_clock, src=0))  # ranks must agree: save has barriers
        return due

    def _should_skip_saving_checkpoint_for_last(self, trainer) -> bool:
        from lightning.pytorch.trainer.states import TrainerFn

        return bool(trainer.fast_dev_run) or trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking

    # -- saving -------------------------------------------------------------------------------
    def _save_last_checkpoint(self, trainer, monitor_candidates) -> None:
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self._last_refresh_step = trainer.global_step
        self._last_refresh_time = time.monotonic()

    def _refresh_last(self, trainer) -> None:
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    # -- hooks --------------------------------------------------------------------------------
    def setup(self, trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        use_atomic_checkpoint_io(trainer)

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        self._last_refresh_step = trainer.global_step  # a resumed run counts from where it resumed
        self._last_refresh_time = time.monotonic()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self._last_is_due(trainer):
            self._refresh_last(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        if self._last_is_stale(trainer) and not self._should_skip_saving_checkpoint_for_last(trainer):
            self._refresh_last(trainer)
            rank_zero_info(f"final checkpoint (step {trainer.global_step}): {self.last_model_path}")

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        super().on_exception(trainer, pl_module, exception)
        if isinstance(exception, SIGTERMException) and self._last_is_stale(trainer):
            # raised after a completed batch (all ranks agree on it): a consistent state to resume from
            self._refresh_last(trainer)
            rank_zero_info(f"SIGTERM: saved step {trainer.global_step} to {self.last_model_path}; "
                           "resume with the same --run and --ckpt_path last")  # fmt: skip
