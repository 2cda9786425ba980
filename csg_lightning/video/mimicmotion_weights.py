"""Loading MimicMotion-style checkpoints (``unet.*`` and ``pose_net.*`` keys) into a :class:`PoseGuidedUNet`.

MimicMotion releases one state dict whose keys start with ``unet.`` (the SVD UNet it fine-tuned) and
``pose_net.`` (its PoseNet). Files may be ``.safetensors`` or torch pickles (``.pth``/``.ckpt``, possibly
wrapping the dict in ``"state_dict"``/``"module"``); ``module.`` prefixes from DDP saves are stripped.
The load is non-strict and returns what was missing and unexpected, so partial checkpoints (for
example PoseNet only) are usable and mistakes are visible.

Loaded through ``VideoGenerator(mimicmotion_checkpoint=...)``, sampling also defaults to MimicMotion's
inference (``uncond_pose=False``: no pose in the unconditional pass; ``clip_resize="svd"``), which
``tests/test_mimicmotion_parity.py`` shows gives MimicMotion's latents.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

PREFIXES = ("unet.", "pose_net.")


@dataclass
class LoadReport:
    """Keys of the model not in the checkpoint (``missing``), keys of the checkpoint the model lacks
    (``unexpected``; includes keys of neither prefix) and how many tensors were loaded."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    loaded: int = 0

    def __str__(self) -> str:
        def head(keys: list[str]) -> str:
            return ", ".join(keys[:5]) + (" ..." if len(keys) > 5 else "")

        return (
            f"loaded {self.loaded} tensors; missing {len(self.missing)} [{head(self.missing)}]; "
            f"unexpected {len(self.unexpected)} [{head(self.unexpected)}]"
        )


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A checkpoint file -> flat state dict (``state_dict``/``module`` wrappers and ``module.`` stripped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MimicMotion checkpoint: {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        from csg_lightning.checkpoints.safe_load import load_checkpoint_file

        state = load_checkpoint_file(path, what="MimicMotion checkpoint")
    for key in ("state_dict", "module"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(
            f"MimicMotion checkpoint: {path} holds {type(state).__name__}, expected a state dict"
        )
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_mimicmotion_checkpoint(
    net: nn.Module, checkpoint: str | os.PathLike | dict[str, torch.Tensor]
) -> LoadReport:
    """Load ``unet.*`` / ``pose_net.*`` weights into ``net`` (a :class:`PoseGuidedUNet`); returns the report.

    Shape mismatches raise (naming the key and both shapes).
    """
    state = checkpoint if isinstance(checkpoint, dict) else read_state_dict(checkpoint)
    own = net.state_dict()
    usable, unexpected = {}, []
    for key, value in state.items():
        if not key.startswith(PREFIXES) or key not in own:
            unexpected.append(key)
            continue
        if tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(
                f"MimicMotion checkpoint: {key} has shape {tuple(value.shape)}, the model expects "
                f"{tuple(own[key].shape)} (is the UNet config the same as the checkpoint's?)"
            )
        usable[key] = value
    result = net.load_state_dict(usable, strict=False)
    report = LoadReport(sorted(result.missing_keys), sorted(unexpected), len(usable))
    log.info("MimicMotion checkpoint: %s", report)
    return report
