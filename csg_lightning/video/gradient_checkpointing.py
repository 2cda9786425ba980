"""Gradient checkpointing of the SVD UNet, including its temporal transformer blocks.

diffusers' ``enable_gradient_checkpointing()`` checkpoints the spatio-temporal res-blocks and the
*spatial* transformer blocks, but ``TransformerSpatioTemporalModel`` calls its
``temporal_transformer_blocks`` directly. :func:`enable_checkpointing` also recomputes those: each
temporal block's ``forward`` is replaced on the instance by a checkpointed call of the original, so
module names and state-dict keys stay unchanged (checkpoints and ``save_pretrained`` are unaffected).

FSDP: :mod:`~csg_lightning.video.fsdp_sharding` shards per UNet block; checkpointing stays this module's.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def _checkpointed(forward, *args, **kwargs):
    if torch.is_grad_enabled():
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)
    return forward(*args, **kwargs)


def temporal_blocks(unet: nn.Module) -> list[nn.Module]:
    """Every ``TemporalBasicTransformerBlock`` of the UNet."""
    from diffusers.models.attention import TemporalBasicTransformerBlock

    return [m for m in unet.modules() if isinstance(m, TemporalBasicTransformerBlock)]


def enable_checkpointing(unet: nn.Module) -> int:
    """diffusers checkpointing + checkpointed temporal transformer blocks; returns how many were wrapped."""
    unet.enable_gradient_checkpointing()
    blocks = temporal_blocks(unet)
    for block in blocks:
        if not getattr(block, "_csg_checkpointed", False):
            block.forward = functools.partial(_checkpointed, block.forward)
            block._csg_checkpointed = True
    return len(blocks)
