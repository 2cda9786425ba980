"""The release's ``MDM.state_dict()`` -> our ``SkeletonDiffusion`` state_dict (names, shapes, point order).

Key map (release -> ours; ``N`` a layer index):

====================================  =========================================  ======================
release (``model/mdm.py``)            ours                                       note
====================================  =========================================  ======================
input_process.poseEmbedding.*         denoiser.pose_in.*                         input columns permuted
concat_to_hidden.{0,2}.*              denoiser.fusion.{0,2}.*
embed_timestep.time_embed.{0,2}.*     denoiser.timestep.{0,2}.*
seqTransEncoder.layers.N.*            denoiser.encoder.layers.N.*                same torch layer class
embed_audio.*                         denoiser.audio.proj.*
audio_learnable                       denoiser.audio.null
output_process.poseFinal.*            denoiser.head.*                            output rows permuted
aud_m.*                               audio_encoder.model.*                      absent from their .pth
sequence_pos_encoder.pe (+ the copy   (not stored: rebuilt)                      checked equal to ours
in embed_timestep)
====================================  =========================================  ======================

Everything else (``clip_model.*``, other conditions' layers) is refused with its name.
"""

from __future__ import annotations

import re

import torch

from csg_lightning.models.release_denoiser import release_position_table
from csg_lightning.release.point_order import feature_permutation

PREFIXES = (
    ("input_process.poseEmbedding.", "denoiser.pose_in."),
    ("concat_to_hidden.", "denoiser.fusion."),
    ("embed_timestep.time_embed.", "denoiser.timestep."),
    ("seqTransEncoder.", "denoiser.encoder."),
    ("embed_audio.", "denoiser.audio.proj."),
    ("audio_learnable", "denoiser.audio.null"),
    ("output_process.poseFinal.", "denoiser.head."),
    ("aud_m.", "audio_encoder.model."),
)
POSITION_KEYS = ("sequence_pos_encoder.pe", "embed_timestep.sequence_pos_encoder.pe")
_LAYER = re.compile(r"^seqTransEncoder\.layers\.(\d+)\.")


class ReleaseImportError(ValueError):
    """A release checkpoint that does not fit: the message names the key, its shape and what was expected."""


def release_state_dict(checkpoint: dict, source: str) -> dict[str, torch.Tensor]:
    """The model weights of a loaded release file: their trainer's ``{"model": ..., "optimizer": ...,
    "step": ...}`` or a bare ``MDM.state_dict()`` (a DDP ``module.`` prefix is dropped)."""
    sd = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ReleaseImportError(
            f"{source}: expected the release's checkpoint_<step>.pth ({{'model': state_dict, ...}}) or an "
            f"MDM state_dict; found keys {sorted(checkpoint)[:6] if isinstance(checkpoint, dict) else type(checkpoint)}"
        )
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def _shape(sd: dict, key: str, source: str, dims: int) -> tuple[int, ...]:
    if key not in sd:
        raise ReleaseImportError(
            f"{source}: no '{key}' (not a release MDM with --arch trans_enc --cond audio_concat,long_video?)"
        )
    shape = tuple(sd[key].shape)
    if len(shape) != dims:
        raise ReleaseImportError(f"{source}: '{key}' has shape {shape}, expected {dims} dimensions")
    return shape


def infer_sizes(sd: dict[str, torch.Tensor], source: str) -> dict[str, int]:
    """width, depth, ff_dim, feature_dim, audio_dim of a release state_dict (the heads are not in it)."""
    width, feature_dim = _shape(sd, "input_process.poseEmbedding.weight", source, 2)
    _, audio_dim = _shape(sd, "embed_audio.weight", source, 2)
    ff_dim, _ = _shape(sd, "seqTransEncoder.layers.0.linear1.weight", source, 2)
    layers = {int(m.group(1)) for k in sd if (m := _LAYER.match(k))}
    depth = max(layers) + 1
    if layers != set(range(depth)):
        raise ReleaseImportError(f"{source}: transformer layers {sorted(layers)} are not 0..{depth - 1}")
    return {"width": width, "depth": depth, "ff_dim": ff_dim, "feature_dim": feature_dim, "audio_dim": audio_dim}


def map_state_dict(sd: dict[str, torch.Tensor], target: dict[str, torch.Tensor], source: str,
                   require_audio_encoder: bool = False) -> dict[str, torch.Tensor]:  # fmt: skip
    """Release weights -> ours, checked against ``target`` (our model's ``state_dict()``: names and shapes).

    Returns the mapped tensors (float32; the point order permuted into ours). Raises
    :class:`ReleaseImportError` for an unknown key, a shape that does not match (naming both shapes), a
    denoiser weight the release file lacks, or positional tables that differ from ours.
    """
    perm = torch.as_tensor(feature_permutation())
    width = int(target["denoiser.pose_in.weight"].shape[0])
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in sd.items():
        if key in POSITION_KEYS:
            ours = release_position_table(width)
            theirs = value.reshape(value.shape[0], -1).float()
            # float32 sinusoids of positions up to 5000 carry ~1e-4 rounding; a wrong formula differs by O(1)
            if theirs.shape != ours.shape or not torch.allclose(theirs, ours, atol=1e-3, rtol=0):
                raise ReleaseImportError(
                    f"{source}: '{key}' {tuple(value.shape)} is not the sinusoid table ReleaseDenoiser builds "
                    f"({tuple(ours.shape)})"
                )
            continue
        new = next((dst + key[len(src) :] for src, dst in PREFIXES if key.startswith(src)), None)
        if new is None or new not in target:
            unknown.append(key)
            continue
        value = value.detach().to(torch.float32)
        if key == "input_process.poseEmbedding.weight":
            value = value[:, perm]
        elif key.startswith("output_process.poseFinal."):
            value = value[perm]
        if tuple(value.shape) != tuple(target[new].shape):
            raise ReleaseImportError(
                f"{source}: '{key}' has shape {tuple(value.shape)}, but our '{new}' expects "
                f"{tuple(target[new].shape)} (sizes given on the command line or args.json do not match?)"
            )
        out[new] = value.contiguous()
    if unknown:
        raise ReleaseImportError(
            f"{source}: {len(unknown)} weights have no place in the release architecture we import: {unknown[:6]}"
        )
    missing = [k for k in target if k.startswith("denoiser.") and k not in out]
    if require_audio_encoder:
        missing += [k for k in target if k.startswith("audio_encoder.") and k not in out]
    if missing:
        raise ReleaseImportError(f"{source}: missing {len(missing)} weights: {missing[:6]}")
    return out
