"""A stop-and-resume chain for any datamodule: uninterrupted fit vs. fits that stop and resume.

:class:`ScalarProbe` is a LightningModule that learns one scalar from ``batch[key]`` and records
``(global step, clip id, window start)`` for every example it trains on. :func:`fit_chain` runs the
uninterrupted fit to ``max_steps`` and then a chain of fits that each stop at the next of ``stops``
with a checkpoint and are resumed from it in a fresh Trainer (fresh model and datamodule). The
learning rate is constant, so stopping by ``max_steps`` changes nothing but where the run ends.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint


class ScalarProbe(L.LightningModule):
    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[int, str, int]] = []

    def training_step(self, batch, batch_idx):
        self.seen += [
            (self.global_step, c, int(s)) for c, s in zip(batch["clip_id"], batch["start"], strict=True)
        ]
        return (self.w * batch[self.key].float().mean()).sum() + (self.w**2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(make_dm: Callable, key: str, max_steps: int, ckpt_dir: Path, ckpt_path: Path | None):
    model = ScalarProbe(key)
    checkpoint = ModelCheckpoint(dirpath=ckpt_dir, every_n_train_steps=max_steps, save_top_k=-1)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=max_steps, logger=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, callbacks=[checkpoint])  # fmt: skip
    trainer.fit(model, datamodule=make_dm(), ckpt_path=ckpt_path)
    return model.seen, float(model.w.detach()), next(Path(ckpt_dir).glob("*.ckpt"), None)


def fit_chain(make_dm: Callable, key: str, max_steps: int, stops: list[int], root: Path) -> dict:
    """-> {"full": records, "chain": records of all the chain's fits in order, "full_w"/"chain_w": the
    final scalar, "checkpoints": [checkpoint of each stop]}. Records are (step, clip_id, start)."""
    full, full_w, _ = _fit(make_dm, key, max_steps, root / "full", None)
    chain, ckpt, checkpoints = [], None, []
    for i, stop in enumerate([*stops, max_steps]):
        seen, w, ckpt = _fit(make_dm, key, stop, root / f"part{i}", ckpt)
        chain += seen
        checkpoints.append(ckpt)
    return {"full": full, "chain": chain, "full_w": full_w, "chain_w": w, "checkpoints": checkpoints[:-1]}
