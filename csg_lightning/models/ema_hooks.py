"""Lightning hooks that own an :class:`EMAWeights` of a module's trainable weights.

Mix into a LightningModule before ``LightningModule`` (``class M(EMAHooks, L.LightningModule)``),
call ``self.init_ema()`` in ``__init__`` and give the module an ``ema_decay`` hparam (0 disables
EMA, optionally ``ema_start_step``). Override ``_ema_params`` to average a subset. The averaged
weights are swapped in for validation (and so for sample callbacks), kept in the model after fit,
and written to ``state_dict`` on save; the raw training weights travel in
``checkpoint["ema_state"]`` so a resumed fit continues from them.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from lightning.pytorch.trainer.states import TrainerFn

from csg_lightning.models.ema import EMAWeights


class EMAHooks:
    def init_ema(self) -> None:
        self._ema: EMAWeights | None = None
        self._pending_ema: tuple[dict[str, torch.Tensor], int] | None = None
        self._ema_step = 0

    def _ema_params(self) -> dict[str, torch.nn.Parameter]:
        return {name: p for name, p in self.named_parameters() if p.requires_grad}

    def _averaged(self):
        """Context manager: the EMA weights inside (a no-op without EMA)."""
        return self._ema.averaged() if self._ema is not None else nullcontext()

    def on_fit_start(self) -> None:
        if self.hparams.ema_decay > 0 and self._ema is None:
            self._ema = EMAWeights(self._ema_params(), self.hparams.ema_decay)
            if self._pending_ema is not None:
                self._ema.load_shadow(*self._pending_ema)
                self._pending_ema = None
        self._ema_step = self.trainer.global_step

    def _update_ema(self) -> None:
        """Average in the weights of each optimizer step once (idempotent within a step)."""
        step = self.trainer.global_step
        if self._ema is not None and step > self._ema_step and not self._ema.applied:  # an optimizer step happened
            self._ema_step = step
            if step > self.hparams.get("ema_start_step", 0):
                self._ema.update()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._update_ema()

    def on_validation_epoch_start(self) -> None:
        if self._ema is not None:
            self._ema.apply()

    def on_validation_epoch_end(self) -> None:
        # Module hooks run after callback hooks: sample callbacks at validation end still see EMA weights.
        if self._ema is not None:
            self._ema.restore()

    def on_train_end(self) -> None:
        if self._ema is not None:  # leave the averaged weights in the model after fit
            self._ema.apply()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self._ema is not None:
            # Checkpoint callbacks save in on_train_batch_end before this module's own hook runs:
            # take the step's update now, so the checkpoint holds as many updates as optimizer steps
            # and a resumed run averages exactly as the uninterrupted one.
            if self._trainer is not None and self.trainer.training:
                self._update_ema()
            self._ema.write_to_checkpoint(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trainer = self._trainer
        if trainer is None or trainer.state.fn != TrainerFn.FITTING:
            return  # inference: keep the EMA weights of state_dict
        restored = EMAWeights.read_from_checkpoint(checkpoint)
        if restored is not None and self._ema is not None:
            self._ema.load_shadow(*restored)
        elif restored is not None:
            self._pending_ema = restored
