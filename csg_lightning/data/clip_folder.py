"""Reading and validating clip folders (the raw corpus format) into shard records.

``SRC/<clip_id>/`` holds ``pose.npz`` (keypoints float32 [T, 134, 2] pixels, scores float32
[T, 134]), ``audio.wav`` (16 kHz mono PCM16, >= T * 640 samples), ``meta.json`` ({clip_id,
speaker_id, fps: 25, width, height, num_frames, ...}) and optionally ``video.mp4`` (T frames,
width x height, every frame decodable). Hidden folders (names starting with ".") are ignored:
writers use them for unfinished work.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from csg_lightning.data.records import RecordError, check_record
from csg_lightning.io.audio import MAX_AUDIO_SECONDS, to_int16
from csg_lightning.timing import FPS, SAMPLE_RATE

_FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
META_KEYS = ("clip_id", "speaker_id", "fps", "width", "height", "num_frames")


def list_clip_folders(src: str | os.PathLike) -> list[Path]:
    """Sorted clip folders directly under ``src`` (hidden folders skipped)."""
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"clip folder root not found: {src}")
    return sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_meta(folder: str | os.PathLike) -> dict:
    """Read and check ``meta.json``: required keys, clip_id equal to the folder name, fps 25."""
    folder = Path(folder)
    path = folder / "meta.json"
    if not path.is_file():
        raise RecordError(
            f"{folder}: meta.json is missing (a clip folder needs meta.json, pose.npz, audio.wav)"
        )
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RecordError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise RecordError(f"{path}: expected a JSON object with keys {list(META_KEYS)}")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise RecordError(f"{path}: missing key(s) {missing}; expected {list(META_KEYS)}")
    if meta["clip_id"] != folder.name:
        raise RecordError(
            f"{path}: field 'clip_id' is {meta['clip_id']!r} but the folder is named {folder.name!r}"
        )
    if meta["fps"] != FPS:
        raise RecordError(f"{path}: field 'fps' is {meta['fps']}, expected {FPS}")
    for key in ("width", "height", "num_frames"):
        if not isinstance(meta[key], int) or meta[key] <= 0:
            raise RecordError(f"{path}: field '{key}' must be a positive integer, got {meta[key]!r}")
    if not isinstance(meta["speaker_id"], str) or not meta["speaker_id"]:
        raise RecordError(
            f"{path}: field 'speaker_id' must be a non-empty string, got {meta['speaker_id']!r}"
        )
    return meta


def _read_pose(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    path = folder / "pose.npz"
    if not path.is_file():
        raise RecordError(f"{folder}: pose.npz is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("keypoints", "scores") if k not in data.files]
            if missing:
                raise RecordError(f"{path}: missing array(s) {missing}; found {data.files}")
            kp, sc = data["keypoints"], data["scores"]
    except RecordError:
        raise
    except Exception as err:  # zip / format errors of a damaged file
        raise RecordError(f"{path}: not a readable npz file ({err})") from err
    for name, arr in (("keypoints", kp), ("scores", sc)):
        if not np.issubdtype(arr.dtype, np.floating):
            raise RecordError(f"{path}: field '{name}' has dtype {arr.dtype}, expected float32")
    return np.ascontiguousarray(kp, dtype=np.float32), np.ascontiguousarray(sc, dtype=np.float32)


def _read_audio(folder: Path) -> np.ndarray:
    path = folder / "audio.wav"
    if not path.is_file():
        raise RecordError(f"{folder}: audio.wav is missing")
    try:
        info = sf.info(str(path))
    except Exception as err:
        raise RecordError(f"{path}: not a readable audio file ({err})") from err
    if info.samplerate != SAMPLE_RATE:
        raise RecordError(f"{path}: field 'audio' has sample rate {info.samplerate}, expected {SAMPLE_RATE}")
    if info.channels != 1:
        raise RecordError(f"{path}: field 'audio' has {info.channels} channels, expected mono")
    if info.frames > MAX_AUDIO_SECONDS * SAMPLE_RATE:
        raise RecordError(
            f"{path}: field 'audio' lasts {info.frames / SAMPLE_RATE:.0f} s, longer than the "
            f"{MAX_AUDIO_SECONDS:.0f} s maximum of one clip"
        )
    try:
        if info.subtype in _FLOAT_SUBTYPES:  # stored as float: NaN/inf would silently become int16 garbage
            samples, _ = sf.read(str(path), dtype="float32", always_2d=False)
            bad = ~np.isfinite(samples)
            if bad.any():
                raise RecordError(
                    f"{path}: field 'audio' holds {int(bad.sum())} NaN/inf sample(s) "
                    f"(first at sample {int(np.argmax(bad))}), expected finite audio"
                )
            audio = to_int16(samples)
        else:
            audio, _ = sf.read(str(path), dtype="int16", always_2d=False)
    except RecordError:
        raise
    except Exception as err:  # truncated or damaged sample data
        raise RecordError(f"{path}: field 'audio' cannot be decoded ({err})") from err
    return np.ascontiguousarray(audio.reshape(-1), dtype=np.int16)


def check_video(video: bytes, meta: dict, where: str | os.PathLike, decode: bool = True) -> None:
    """Check the mp4 bytes of a clip against its meta.json: a video stream of width x height and, with
    ``decode``, every frame decoded (a damaged payload fails here, not in training) and exactly
    ``num_frames`` of them. Without ``decode`` only the container header is read."""
    import av

    decoded = 0
    try:
        with av.open(io.BytesIO(video)) as container:
            if not container.streams.video:
                raise RecordError(f"{where}: field 'video' holds no video stream")
            stream = container.streams.video[0]
            size = (stream.codec_context.width, stream.codec_context.height)
            frames = stream.frames
            if size == (meta["width"], meta["height"]) and decode:
                stream.thread_type = "AUTO"
                for _ in container.decode(stream):
                    decoded += 1
    except RecordError:
        raise
    except Exception as err:
        at = f" (decoding stopped after {decoded} of {meta['num_frames']} frames)" if decoded else ""
        raise RecordError(f"{where}: field 'video' is not a readable mp4{at}: {err}") from err
    if size != (meta["width"], meta["height"]):
        raise RecordError(
            f"{where}: field 'video' is {size[0]}x{size[1]}, meta.json says {meta['width']}x{meta['height']}"
        )
    if decode and decoded != meta["num_frames"]:
        raise RecordError(
            f"{where}: field 'video' decodes to {decoded} frames, meta.json says num_frames={meta['num_frames']}"
        )
    if frames and frames != meta["num_frames"]:
        raise RecordError(
            f"{where}: field 'video' has {frames} frames, meta.json says num_frames={meta['num_frames']}"
        )


def read_clip(folder: str | os.PathLike, include_video: bool = True, decode_video: bool = True) -> dict:
    """Read one clip folder into a validated shard record (see :mod:`csg_lightning.data.records`).

    Raises :class:`RecordError` naming the folder/file and the field on any mismatch: missing
    files, wrong shapes or dtypes, NaN/inf, scores outside [0, 1], fps != 25, audio not 16 kHz
    mono, NaN/inf, longer than MAX_AUDIO_SECONDS or shorter than num_frames * 640, meta.json
    disagreeing with the arrays or the video, a video that does not decode completely
    (``decode_video``; without it only the mp4 header is checked).
    """
    folder = Path(folder)
    meta = read_meta(folder)
    keypoints, scores = _read_pose(folder)
    if keypoints.ndim != 3 or keypoints.shape[0] != meta["num_frames"]:
        raise RecordError(
            f"{folder}: meta.json field 'num_frames' is {meta['num_frames']} but pose.npz field 'keypoints' "
            f"has shape {keypoints.shape} (expected [{meta['num_frames']}, 134, 2])"
        )
    video_path = folder / "video.mp4"
    video = b""
    if include_video and video_path.is_file():
        video = video_path.read_bytes()
        check_video(video, meta, video_path, decode=decode_video)
    record = {
        "clip_id": str(meta["clip_id"]),
        "speaker_id": str(meta["speaker_id"]),
        "fps": int(meta["fps"]),
        "width": int(meta["width"]),
        "height": int(meta["height"]),
        "keypoints": keypoints,
        "scores": scores,
        "audio": _read_audio(folder),
        "video": video,
    }
    check_record(record, where=str(folder))
    return record
