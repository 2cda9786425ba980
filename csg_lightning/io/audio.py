"""Audio reading and writing (soundfile / decord for I/O, torchaudio only for resampling)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from csg_lightning.io.atomic import atomic_path

SAMPLE_RATE = 16_000
_VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi"}


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample float mono audio [N] with torchaudio's band-limited resampler."""
    if orig_sr == target_sr:
        return audio.astype(np.float32, copy=False)
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), orig_sr, target_sr)
    return out.numpy()


def read_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read any wav/flac/ogg (or the audio track of a video) as float32 mono at ``sample_rate``.

    Stereo is averaged to mono; other rates are resampled. Raises a ``ValueError`` naming the file
    when it cannot be read or holds no samples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    if path.suffix.lower() in _VIDEO_SUFFIXES:
        import decord

        try:
            reader = decord.AudioReader(str(path), sample_rate=sample_rate, mono=True)
        except Exception as err:  # decord raises its own error types
            raise ValueError(f"{path}: cannot read an audio track ({err})") from err
        audio = reader[:].asnumpy().reshape(-1).astype(np.float32)
    else:
        try:
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as err:
            raise ValueError(f"{path}: not a readable audio file ({err})") from err
        audio = resample(data.mean(axis=1), sr, sample_rate)
    if audio.size == 0:
        raise ValueError(f"{path}: the audio holds no samples")
    return audio


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write mono audio (float in [-1, 1] or int16) as 16-bit PCM wav, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.asarray(audio), sample_rate, subtype="PCM_16", format="WAV")
    return path


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] -> int16 (clipped)."""
    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype(np.int16)


def to_float(audio: np.ndarray) -> np.ndarray:
    """int16 audio -> float32 in [-1, 1]; float input passes through as float32."""
    if audio.dtype == np.int16:
        return audio.astype(np.float32) / 32767.0
    return audio.astype(np.float32, copy=False)
