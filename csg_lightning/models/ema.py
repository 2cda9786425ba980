"""Exponential moving average of a set of named parameters (plain torch; owned by the LightningModule)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class EMAWeights:
    """Shadow fp32 copies of ``params`` updated as ``ema = d * ema + (1 - d) * param``.

    The effective decay warms up as ``min(decay, (1 + n) / (10 + n))`` after n updates, so early
    averages are not dominated by the random initialisation. Not an ``nn.Module`` on purpose:
    the shadows are not module buffers, so DDP never broadcasts them and every rank keeps its
    own (identical) copy. Under FSDP2 the parameters are DTensor shards, and so are their shadows
    (``clone`` keeps the layout): each rank averages only its shard (sharded EMA); checkpoints get the
    gathered whole tensors (:func:`whole`).
    """

    def __init__(self, params: dict[str, nn.Parameter], decay: float = 0.999) -> None:
        self.params = params
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow = {name: p.detach().clone().float() for name, p in params.items()}
        self._backup: dict[str, torch.Tensor] | None = None

    @torch.no_grad()
    def update(self) -> None:
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for name, p in self.params.items():
            shadow = self.shadow[name]
            if shadow.device != p.device:
                shadow = self.shadow[name] = shadow.to(p.device)
            shadow.lerp_(p.detach().float(), 1 - d)

    @property
    def applied(self) -> bool:
        return self._backup is not None

    @torch.no_grad()
    def apply(self) -> None:
        """Swap the averaged weights into the parameters (no-op if already applied)."""
        if self._backup is not None:
            return
        self._backup = {name: p.detach().clone() for name, p in self.params.items()}
        for name, p in self.params.items():
            p.copy_(self.shadow[name].to(device=p.device, dtype=p.dtype))

    @torch.no_grad()
    def restore(self) -> None:
        """Put the training weights back (no-op if not applied)."""
        if self._backup is None:
            return
        for name, p in self.params.items():
            p.copy_(self._backup[name])
        self._backup = None

    @contextmanager
    def averaged(self) -> Iterator[None]:
        """Context in which the parameters hold the averaged weights."""
        was_applied = self.applied
        self.apply()
        try:
            yield
        finally:
            if not was_applied:
                self.restore()

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": dict(self.shadow)}

    def write_to_checkpoint(self, checkpoint: dict) -> None:
        """Put the averaged weights into ``checkpoint["state_dict"]`` (what inference loads) and the
        training weights into ``checkpoint["ema_state"]["current"]`` (what resuming continues from)."""
        state = checkpoint["state_dict"]
        current = {}
        for name, p in self.params.items():
            current[name] = whole(self._backup[name] if self._backup is not None else p.detach()).clone()
            shadow = whole(self.shadow[name])
            if name in state:  # sharded training: only rank 0 holds the full state_dict (the others: empty)
                state[name] = shadow.to(dtype=state[name].dtype, device=state[name].device).clone()
        checkpoint["ema_state"] = {"current": current, "num_updates": self.num_updates}

    @staticmethod
    def read_from_checkpoint(checkpoint: dict) -> tuple[dict[str, torch.Tensor], int] | None:
        """Inverse of :meth:`write_to_checkpoint` for resuming: puts the training weights back into
        ``checkpoint["state_dict"]`` and returns (averaged weights, number of updates), or None."""
        ema_state = checkpoint.get("ema_state")
        if ema_state is None:
            return None
        state = checkpoint["state_dict"]
        shadow = {name: state[name].clone() for name in ema_state["current"]}
        state.update(ema_state["current"])
        return shadow, int(ema_state["num_updates"])

    def load_shadow(self, shadow: dict[str, torch.Tensor], num_updates: int) -> None:
        missing = set(self.params) - set(shadow)
        if missing:
            raise KeyError(f"EMAWeights: checkpoint lacks averaged weights for {sorted(missing)[:5]} ...")
        self.shadow = {name: like(shadow[name].detach().clone().float(), p) for name, p in self.params.items()}
        self.num_updates = int(num_updates)


def whole(tensor: torch.Tensor) -> torch.Tensor:
    """A parameter's whole value: a DTensor shard (FSDP2, ``fully_shard``) is gathered (a collective: every
    rank must call it, as Lightning's checkpoint hooks do); any other tensor is returned as it is."""
    gather = getattr(tensor, "full_tensor", None)
    return gather() if callable(gather) else tensor


def like(value: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """A whole tensor laid out as ``param``: sharded the same way when ``param`` is a DTensor (resuming a
    sharded run from a full checkpoint), else on its device."""
    mesh, placements = getattr(param, "device_mesh", None), getattr(param, "placements", None)
    if mesh is None or placements is None or hasattr(value, "placements"):
        return value
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(value.to(param.device), mesh, placements)
