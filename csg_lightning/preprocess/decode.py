"""A source video as 25 fps RGB frames, decoded with decord in streamed chunks.

Frame times come from PyAV's demuxer (:func:`~csg_lightning.preprocess.probe.probe_video`: exact
integer pts times a rational time base). decord's ``get_frame_timestamp`` reports the same times
relative to the first frame, rounded to float32 (agreement within 1e-7 s on mp4 and mkv, CFR and
VFR, with B-frames and with a non-zero start time); we trust PyAV's and use decord's only as a check
that both libraries index the same frames (frame counts equal, times within
:data:`TIMESTAMP_TOLERANCE`), refusing the file otherwise. decord cannot open MPEG-TS files
("broken metadata"); they are refused with an InputError.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from csg_lightning.io.validation import InputError
from csg_lightning.preprocess.frame_times import TARGET_FPS, target_source_indices
from csg_lightning.preprocess.probe import VideoProbe, probe_video

TIMESTAMP_TOLERANCE = 1e-3  # seconds decord's and PyAV's frame times may differ


class VideoFrames:
    """The 25 fps frames ``t = 0..T-1`` of the video at ``path``; frame t shows source frame ``indices[t]``.

    source_pts: float64 [N] seconds of each source frame (from ``probe``; probed here if None).
    indices: int64 [T] source frame per output frame (:func:`target_source_indices`). Nothing is
    decoded until :meth:`iter_chunks` / :meth:`frame`; raises InputError naming the file when decord
    cannot open it or disagrees with the probe.
    """

    def __init__(self, path: str | os.PathLike, probe: VideoProbe | None = None, num_threads: int = 0):
        import decord

        self.path = Path(path)
        self.probe = probe if probe is not None else probe_video(self.path)
        self.source_pts = self.probe.source_pts
        self.indices = target_source_indices(self.source_pts, self.probe.duration, TARGET_FPS)
        self.indices.setflags(write=False)
        try:
            self._reader = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=num_threads)
        except Exception as err:  # decord raises its own error types
            raise InputError(f"video {self.path}: decord cannot open it ({_short(err)})") from err
        self._check_timestamps()

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def height(self) -> int:
        return self.probe.height

    @property
    def width(self) -> int:
        return self.probe.width

    def iter_chunks(
        self, start: int = 0, stop: int | None = None, chunk: int = 32
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(t0, frames)``: RGB uint8 [n, H, W, 3] for output frames ``t0 .. t0+n-1`` (n <= chunk).

        Covers ``[start, stop)`` (stop None: to the end). Each needed source frame is decoded once, in
        order; output frames that repeat a source frame (a source slower than 25 fps) are copies.
        At most one chunk is held at a time.
        """
        stop = len(self) if stop is None else stop
        if not (0 <= start <= stop <= len(self)):
            raise ValueError(f"{self.path}: frame range [{start}, {stop}) outside [0, {len(self)}]")
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        last_index, last_frame = -1, None  # the source frame ending the previous chunk
        for t0 in range(start, stop, chunk):
            wanted = self.indices[t0 : min(t0 + chunk, stop)]
            unique, inverse = np.unique(wanted, return_inverse=True)
            reuse = unique[0] == last_index
            decoded = self._decode(unique[1:] if reuse else unique, t0)
            if reuse:
                decoded = np.concatenate([last_frame[None], decoded])
            last_index, last_frame = int(unique[-1]), decoded[-1]
            yield t0, decoded[inverse.reshape(-1)]

    def frame(self, t: int) -> np.ndarray:
        """RGB uint8 [H, W, 3] of output frame ``t``."""
        if not (0 <= t < len(self)):
            raise IndexError(f"{self.path}: frame {t} outside [0, {len(self)})")
        return self._decode(self.indices[t : t + 1], t)[0]

    def _decode(self, source: np.ndarray, t0: int) -> np.ndarray:
        h, w = self.probe.height, self.probe.width
        if len(source) == 0:
            return np.empty((0, h, w, 3), np.uint8)
        try:
            frames = self._reader.get_batch([int(i) for i in source]).asnumpy()
        except Exception as err:
            raise InputError(
                f"video {self.path}: decoding source frames {int(source[0])}..{int(source[-1])} "
                f"(25 fps frame {t0} on) failed, damaged or truncated ({_short(err)})"
            ) from err
        if frames.shape != (len(source), h, w, 3):
            raise InputError(
                f"video {self.path}: decoded frames {int(source[0])}..{int(source[-1])} have shape "
                f"{frames.shape}, expected {(len(source), h, w, 3)}"
            )
        return frames

    def _check_timestamps(self) -> None:
        count = len(self._reader)
        if count != self.probe.num_frames:
            raise InputError(
                f"video {self.path}: decord sees {count} frames but the demuxer {self.probe.num_frames} "
                "(damaged index?)"
            )
        stamps = self._reader.get_frame_timestamp(np.arange(count))[:, 0].astype(np.float64)
        diff = np.abs(stamps - self.source_pts)
        if diff.max() > TIMESTAMP_TOLERANCE:
            i = int(diff.argmax())
            raise InputError(
                f"video {self.path}: decord and PyAV disagree on frame {i}'s time "
                f"({stamps[i]:.6f} s vs {self.source_pts[i]:.6f} s)"
            )


def _short(err: Exception, limit: int = 300) -> str:
    text = f"{type(err).__name__}: {err}"
    return text if len(text) <= limit else text[:limit] + "..."
