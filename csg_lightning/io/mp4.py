"""Writing mp4 files (H.264 video, optional AAC audio) with PyAV, atomically."""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from csg_lightning.io.atomic import atomic_path
from csg_lightning.io.audio import SAMPLE_RATE, to_float


def write_mp4(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray] | np.ndarray,
    fps: int | float = 25,
    audio: np.ndarray | None = None,
    sample_rate: int = SAMPLE_RATE,
    crf: int = 20,
) -> Path:
    """Encode RGB uint8 frames [T, H, W, 3] (H, W even) to ``path``, muxing mono ``audio`` if given.

    Frames may be an iterator, so long videos never sit in memory whole. The file appears only
    when it is complete.
    """
    path = Path(path)
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        video = None
        n = 0
        for frame in frames:
            frame = np.asarray(frame)
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"{path}: frames must be uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
            if video is None:
                h, w = frame.shape[:2]
                if h % 2 or w % 2:
                    raise ValueError(f"{path}: H.264 needs even frame sizes, got {w}x{h}")
                video = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                video.width, video.height, video.pix_fmt = w, h, "yuv420p"
                video.options = {"crf": str(crf), "preset": "veryfast"}
                sound = None
                if audio is not None:
                    sound = container.add_stream("aac", rate=sample_rate)
                    sound.layout = "mono"
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
            n += 1
        if video is None:
            raise ValueError(f"{path}: no frames to write")
        for packet in video.encode():
            container.mux(packet)
        if sound is not None:
            _mux_audio(container, sound, to_float(np.asarray(audio)).reshape(-1), sample_rate)
    return path


def _mux_audio(container, stream, samples: np.ndarray, sample_rate: int, chunk: int = 1024) -> None:
    for start in range(0, len(samples), chunk):
        block = samples[None, start : start + chunk].astype(np.float32)
        frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def read_frames(path: str | os.PathLike, indices: np.ndarray | None = None) -> np.ndarray:
    """Decode RGB frames [T, H, W, 3] uint8 with decord (all frames, or the given indices)."""
    import decord

    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    except Exception as err:
        raise ValueError(f"{path}: not a readable video ({err})") from err
    if indices is None:
        indices = np.arange(len(reader))
    return reader.get_batch(list(map(int, indices))).asnumpy()
