"""Audio reading and writing (soundfile / decord for I/O, torchaudio only for resampling)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from csg_lightning.io.atomic import atomic_path
from csg_lightning.io.validation import InputError, check_input_file
from csg_lightning.timing import SAMPLE_RATE

MAX_AUDIO_SECONDS = 3600.0  # longest speech input accepted (1 hour); longer files are refused before decoding
_VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi"}


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """Resample float mono audio [N] with torchaudio's band-limited resampler."""
    if orig_sr == target_sr:
        return audio.astype(np.float32, copy=False)
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)), orig_sr, target_sr)
    return out.numpy()


def read_audio(
    path: str | os.PathLike,
    sample_rate: int = SAMPLE_RATE,
    what: str = "audio file",
    max_seconds: float | None = None,
) -> np.ndarray:
    """Read any wav/flac/ogg (or the audio track of a video) as float32 mono at ``sample_rate``.

    Stereo is averaged to mono; other rates are resampled. Raises an
    :class:`~csg_lightning.io.validation.InputError` (a ``ValueError``) naming the file (``what`` names
    the input, e.g. ``"--audio"``) when it cannot be read, holds no samples or NaN/inf samples, or lasts
    longer than ``max_seconds`` (default :data:`MAX_AUDIO_SECONDS`, checked before decoding); a missing
    file raises :class:`~csg_lightning.io.validation.MissingInputError` (a ``FileNotFoundError``).
    """
    path = check_input_file(path, what)
    max_seconds = MAX_AUDIO_SECONDS if max_seconds is None else max_seconds
    if path.suffix.lower() in _VIDEO_SUFFIXES:
        audio = _read_video_audio(path, sample_rate, what, max_seconds)
    else:
        try:
            info = sf.info(str(path))
        except Exception as err:
            raise InputError(f"{what} {path}: not a readable audio file ({err})") from err
        _check_duration(path, what, info.frames / max(info.samplerate, 1), max_seconds)
        try:
            data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as err:
            raise InputError(f"{what} {path}: not a readable audio file ({err})") from err
        _check_samples(path, what, data)
        audio = resample(data.mean(axis=1), sr, sample_rate)
    return audio


def _read_video_audio(path: Path, sample_rate: int, what: str, max_seconds: float) -> np.ndarray:
    import av
    import decord

    try:
        with av.open(str(path)) as container:  # probe first: decord decodes the whole track at once
            if not container.streams.audio:
                raise InputError(f"{what} {path}: the file has no audio track")
            stream = container.streams.audio[0]
            seconds = (
                float(stream.duration * stream.time_base)
                if stream.duration
                else (container.duration or 0) / 1e6
            )
    except InputError:
        raise
    except Exception as err:
        raise InputError(f"{what} {path}: cannot read an audio track ({err})") from err
    _check_duration(path, what, seconds, max_seconds)
    try:
        reader = decord.AudioReader(str(path), sample_rate=sample_rate, mono=True)
    except Exception as err:  # decord raises its own error types
        raise InputError(f"{what} {path}: cannot read an audio track ({err})") from err
    audio = reader[:].asnumpy().reshape(-1).astype(np.float32)
    _check_samples(path, what, audio)
    return audio


def _check_duration(path: Path, what: str, seconds: float, max_seconds: float) -> None:
    if seconds > max_seconds:
        raise InputError(
            f"{what} {path}: the audio lasts {seconds:.1f} s, longer than the {max_seconds:.0f} s maximum "
            "(split it into shorter pieces)"
        )


def _check_samples(path: Path, what: str, samples: np.ndarray) -> None:
    if samples.size == 0:
        raise InputError(f"{what} {path}: the audio holds no samples")
    bad = ~np.isfinite(samples)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        raise InputError(
            f"{what} {path}: {int(bad.sum())} NaN/inf sample(s) (first at sample {first}), expected finite audio"
        )


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
