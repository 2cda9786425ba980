"""Precomputed frozen audio-encoder features: a sidecar shard set beside a shard folder.

``csg-data features SHARDS --encoder ...`` runs a *frozen* audio encoder once over every record's audio
and writes (default ``SHARDS/audio_features/``)::

    audio_features/encoder.json        the encoder's identity (class, options, sha256 of its weights),
                                       the dtype, and per split the clip ids in storage order
    audio_features/{train,val,test}/   litdata dirs, one record per shard record, in the same order:
                                       {"clip_id": str, "features": float16|float32 [T, C]}

Frame f of ``features`` belongs to samples ``[f * 640, (f + 1) * 640)`` of the record, exactly as the model
sees a window: the encoder runs on ``audio[: T * 640]`` and its output is resampled to ``T`` frames, so a
window cut from frames ``[s, s + L)`` takes ``features[s : s + L]`` (zero rows past the clip's end, where
the raw-audio path pads silence). The encoder sees the whole record instead of one window: for a
context-free encoder the two are the same; a transformer encoder (wav2vec2) sees more context (and its
per-input audio normalisation spans the record), which makes training features differ slightly from the
per-window features of generation. The whole folder is written atomically (``atomic_folder``).

:func:`encoder_identity` is what the model compares: features of another encoder (other weights, other
options) are refused with an error naming both.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from csg_lightning.io.atomic import atomic_folder
from csg_lightning.timing import SAMPLES_PER_FRAME

FEATURES_DIRNAME = "audio_features"
ENCODER_FILENAME = "encoder.json"
FORMAT = "csg-lightning-audio-features"
DTYPES = ("float16", "float32")
_SIMPLE = (bool, int, float, str)


class AudioFeaturesError(ValueError):
    """Precomputed features that are missing, incomplete or of another encoder (the message says which)."""


class AudioFeaturesMissing(AudioFeaturesError):
    """No ``encoder.json`` where features were looked for."""


def _options(module: nn.Module) -> dict:
    """The plain (bool/int/float/str and lists of them) public attributes of a module: its options."""
    out = {}
    for key, value in sorted(vars(module).items()):
        if key.startswith("_") or key == "training":
            continue
        if isinstance(value, _SIMPLE) or (
            isinstance(value, (list, tuple)) and all(isinstance(v, _SIMPLE) for v in value)
        ):
            out[key] = list(value) if isinstance(value, (list, tuple)) else value
    return out


def _configs(module: nn.Module) -> dict:
    """transformers-style ``config.to_dict()`` of every sub-module that has one (architecture settings)."""
    out = {}
    for name, sub in module.named_modules():
        config = getattr(sub, "config", None)
        if hasattr(config, "to_dict"):
            out[name or "."] = {k: v for k, v in sorted(config.to_dict().items())
                                if not k.startswith("_") and k != "transformers_version"}  # fmt: skip
    return out


def encoder_identity(encoder: nn.Module) -> dict:
    """{"class", "options", "configs", "sha256", "id", "output_dim"} of an audio encoder.

    ``sha256`` covers the class, the options, the configs and every tensor of the state dict (name,
    dtype, shape, bytes); ``id`` is its first 16 hex digits. Two encoders with the same id give the same
    features for the same audio."""
    cls = f"{type(encoder).__module__}.{type(encoder).__qualname__}"
    options, configs = _options(encoder), _configs(encoder)
    digest = hashlib.sha256(json.dumps([cls, options, configs], sort_keys=True, default=str).encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    sha = digest.hexdigest()
    return {"class": cls, "options": options, "configs": configs, "sha256": sha, "id": sha[:16],
            "output_dim": int(getattr(encoder, "output_dim", 0))}  # fmt: skip


def check_frozen(encoder: nn.Module, where: str) -> None:
    """Raise unless no parameter of ``encoder`` is trainable (only a frozen encoder's output can be stored)."""
    trainable = sum(p.numel() for p in encoder.parameters() if p.requires_grad)
    if trainable:
        raise AudioFeaturesError(
            f"{where}: the audio encoder {type(encoder).__name__} has {trainable:,} trainable parameters; "
            "precomputed features need a frozen encoder (e.g. components/skeleton/audio/wav2vec2.yaml with "
            "train_top_layers: 0), since a trained encoder's output changes every step"
        )


@torch.inference_mode()
def record_features(encoder: nn.Module, audio: np.ndarray, num_frames: int, device: str = "cpu") -> torch.Tensor:
    """int16 or float audio [N >= T * 640] -> the encoder's features [T, C] (float32, on the CPU)."""
    from csg_lightning.io.audio import to_float

    wav = np.asarray(to_float(np.asarray(audio[: num_frames * SAMPLES_PER_FRAME])), dtype=np.float32)
    x = torch.from_numpy(np.ascontiguousarray(wav))[None].to(device)
    return encoder(x, num_frames)[0].float().cpu()


def write_audio_features(
    shard_dir: str | os.PathLike,
    encoder: nn.Module,
    out: str | os.PathLike | None = None,
    dtype: str = "float16",
    source: str = "",
    device: str = "cpu",
    progress: bool = True,
    chunk_bytes: str = "64MB",
) -> Path:
    """Run the frozen ``encoder`` over every record of the local shard folder ``shard_dir``; return the
    written folder (``out``, default ``shard_dir/audio_features``). ``source``: what the encoder was built
    from (recorded in encoder.json)."""
    from litdata.streaming.writer import BinaryWriter
    from tqdm.auto import tqdm

    from csg_lightning.data.records import check_record
    from csg_lightning.data.shards import SPLITS, iter_split_records, read_manifest

    shard_dir = Path(shard_dir)
    manifest = read_manifest(shard_dir)
    if dtype not in DTYPES:
        raise AudioFeaturesError(f"--dtype: expected one of {DTYPES}, got {dtype!r}")
    check_frozen(encoder, str(source or "encoder"))
    encoder = encoder.eval().to(device)
    identity = encoder_identity(encoder)
    out = Path(out) if out is not None else shard_dir / FEATURES_DIRNAME
    splits = {}
    with atomic_folder(out) as tmp:
        for split in SPLITS:
            info = manifest["splits"][split]
            clip_ids = []
            if info["num_records"]:
                (tmp / split).mkdir()
                writer = BinaryWriter(str(tmp / split), chunk_bytes=chunk_bytes)
                records = iter_split_records(shard_dir / split, info["num_records"])
                for i, record in enumerate(tqdm(records, total=info["num_records"], desc=f"features {split}",
                                                disable=not progress, unit="clip")):  # fmt: skip
                    num_frames = check_record(record, f"shard record {record.get('clip_id')!r} in {shard_dir / split}")
                    feats = record_features(encoder, record["audio"], num_frames, device)
                    writer.add_item(i, {"clip_id": record["clip_id"], "features": feats.numpy().astype(dtype)})
                    clip_ids.append(record["clip_id"])
                writer.done()
                writer._merge_no_wait()  # one writer process: merge its partial index directly (see shards.py)
            else:
                (tmp / split).mkdir()
            splits[split] = {"num_records": len(clip_ids), "clip_ids": clip_ids}
        meta = {"format": FORMAT, "version": 1, "encoder": identity, "source": str(source), "dtype": dtype,
                "shards": str(shard_dir.resolve()), "splits": splits}  # fmt: skip
        (tmp / ENCODER_FILENAME).write_text(json.dumps(meta, indent=1))
    return out


class AudioFeatureFolder:
    """A folder written by :func:`write_audio_features` (local path or URI), checked against its shards."""

    def __init__(self, path: str, read_bytes: Callable[[str], bytes], join: Callable[[str, str], str]) -> None:
        self.path, self._join = str(path), join
        uri = join(self.path, ENCODER_FILENAME)
        try:
            meta = json.loads(read_bytes(uri))
        except FileNotFoundError as err:
            raise AudioFeaturesMissing(f"{uri}: missing; write the features with `csg-data features SHARDS --encoder ...`") from err
        if meta.get("format") != FORMAT:
            raise AudioFeaturesError(f"{uri}: not a {FORMAT} file")
        self.meta = meta

    @property
    def identity(self) -> dict:
        return self.meta["encoder"]

    @property
    def encoder_file(self) -> str:
        return self._join(self.path, ENCODER_FILENAME)

    def split_uri(self, split: str, shard_clip_ids: list[str]) -> str | None:
        """URI of the features of ``split``; raises when they do not list the shard split's clips in order."""
        info = self.meta["splits"].get(split)
        if info is None or info["clip_ids"] != list(shard_clip_ids):
            raise AudioFeaturesError(
                f"{self.encoder_file}: the features of split {split!r} do not match the shards' records "
                "(other clips or order); re-run `csg-data features` on these shards"
            )
        return self._join(self.path, split) if info["num_records"] else None


def cut_features(features: np.ndarray, start: int, length: int) -> np.ndarray:
    """Frames ``[start, start + length)`` of [T, C] features as float32, zero rows past the end."""
    out = np.zeros((length, features.shape[1]), dtype=np.float32)
    part = np.asarray(features[start : start + length], dtype=np.float32)
    out[: part.shape[0]] = part
    return out
