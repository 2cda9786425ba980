"""What a source video holds (size, frame times, rate, audio), read by demuxing with PyAV: no decoding.

One pass over the container's packets gives every video frame's presentation time exactly (integer
pts times the stream's rational time base), so frame rate, variable frame rate and truncation are
measured, not taken from header fields that may lie.

Times are seconds relative to the first video frame (``source_pts[0] == 0``), as decord reports
them; ``start_time`` is where that first frame sits on the container's timeline.

Truncation rule (a file cut short, e.g. to half its bytes):
- the demuxer cannot open it (mp4 with its index at the end loses the index): unreadable;
- the header lists a frame count (mp4/mov sample tables are exact) and fewer packets are read
  (more than :data:`TRUNCATION_FRAME_SLACK` short);
- no frame count in the header (mkv, webm): the frames read end more than
  max(:data:`TRUNCATION_MIN_SECONDS`, :data:`TRUNCATION_FRACTION` of it) before the header's
  duration (the container duration may include a longer audio track, hence the slack);
- a packet read fails (damaged data).
Damage further inside a file that still demuxes is found when decoding (:mod:`.decode`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from csg_lightning.io.validation import InputError, check_input_file

VFR_TOLERANCE_SECONDS = 1e-3  # frame intervals differing by more than this (and > 2 time-base ticks) mean VFR
TRUNCATION_FRAME_SLACK = 1  # frames the demuxer may read short of the header's frame count
TRUNCATION_MIN_SECONDS = 1.0  # without a header frame count: seconds the frames may end before the header
TRUNCATION_FRACTION = 0.1  # ... or this fraction of the header duration, whichever is larger


@dataclass(frozen=True)
class VideoProbe:
    """One source video, measured from its packets.

    width, height: pixels. fps: average frame rate, num_frames / duration. duration: seconds from the
    first frame's pts to the end of the last frame (its pts + its duration). num_frames: video frames
    in the stream. variable_frame_rate: the frame intervals are not constant (see
    :data:`VFR_TOLERANCE_SECONDS`). has_audio, audio_sample_rate (Hz), audio_duration (seconds, from the
    audio packets; None without audio). start_time: seconds of the first video frame on the container's
    timeline. source_pts: float64 [num_frames] seconds of each frame in presentation order, relative to
    the first (read-only; not in :meth:`as_dict`).
    """

    path: str
    container: str
    codec: str
    width: int
    height: int
    fps: float
    duration: float
    num_frames: int
    variable_frame_rate: bool
    has_audio: bool
    audio_sample_rate: int | None
    audio_duration: float | None
    start_time: float = 0.0
    source_pts: np.ndarray = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        """The JSON-ready fields (everything but ``source_pts``)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "source_pts"}


def probe_video(path: str | os.PathLike) -> VideoProbe:
    """Measure the video at ``path`` (see :class:`VideoProbe`) by demuxing its packets.

    Raises :class:`~csg_lightning.io.validation.InputError` naming the file when it is missing, empty,
    not a readable container, has no video stream, holds no frames or no length, or is truncated (rule
    in the module docstring).
    """
    import av

    path = check_input_file(path, "video")
    try:
        container = av.open(str(path))
    except Exception as err:
        raise InputError(
            f"video {path}: not a readable video container, or truncated ({type(err).__name__}: {err})"
        ) from err
    with container:
        video = _video_stream(container, path)
        audio = container.streams.audio[0] if container.streams.audio else None
        pts, ends, audio_span, corrupt = _read_packets(container, video, audio, path)
        tb = float(video.time_base)
        if len(pts) == 0:
            listed = f" (the header lists {video.frames}: truncated)" if video.frames else ""
            raise InputError(f"video {path}: the video stream holds no frames{listed}")
        order = np.argsort(pts, kind="stable")
        pts, ends = pts[order], ends[order]
        first = int(pts[0])
        source_pts = (pts - first).astype(np.float64) * tb
        deltas = np.diff(source_pts)
        # the last frame lasts its packet duration, else the typical interval (0 for a lone frame)
        if ends[-1] > pts[-1]:
            last_length = float(ends[-1] - pts[-1]) * tb
        else:
            last_length = float(np.median(deltas)) if len(deltas) else 0.0
        duration = float(source_pts[-1] + last_length)
        if duration <= 0:
            raise InputError(f"video {path}: the video has zero length ({len(pts)} frame(s), duration 0 s)")
        _check_truncation(container, video, path, len(pts), duration)
        if corrupt is not None:  # after the truncation rule: a cut file ends in a damaged packet
            raise InputError(f"video {path}: damaged packet at {corrupt:.3f} s")
        source_pts.setflags(write=False)
        vfr = bool(len(deltas) > 1 and np.ptp(deltas) > max(VFR_TOLERANCE_SECONDS, 2 * tb))
        width, height = int(video.codec_context.width), int(video.codec_context.height)
        if width <= 0 or height <= 0:
            raise InputError(f"video {path}: the video stream has no frame size ({width}x{height})")
        audio_rate = None
        if audio is not None:
            audio_rate = int(audio.codec_context.sample_rate or audio.rate or 0) or None
        return VideoProbe(
            path=str(path),
            container=container.format.name,
            codec=video.codec_context.name,
            width=width,
            height=height,
            fps=len(pts) / duration,
            duration=duration,
            num_frames=len(pts),
            variable_frame_rate=vfr,
            has_audio=audio is not None,
            audio_sample_rate=audio_rate,
            audio_duration=_audio_duration(audio, audio_span),
            start_time=first * tb,
            source_pts=source_pts,
        )


def _video_stream(container, path: Path):
    """The first video stream that is not cover art."""
    import av

    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise InputError(f"video {path}: the file has no video stream")


def _read_packets(container, video, audio, path: Path):
    """Video pts and end times (time-base ticks, int64 [N], demux order), the audio (start, end) ticks
    (None without audio packets) and the time (s) of the first damaged packet (None if none)."""
    pts, ends = [], []
    audio_start, audio_end = None, None
    corrupt = None  # seconds of the first damaged packet
    # audio packets only when the header lacks the audio length
    streams = [video] if audio is None or audio.duration else [video, audio]
    try:
        for packet in container.demux(streams):
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None or packet.size == 0 or packet.is_discard:
                continue  # flush packets at the end; frames an edit list drops
            if packet.is_corrupt and corrupt is None:
                corrupt = float(stamp * packet.time_base)
            length = packet.duration or 0
            if packet.stream.index == video.index:
                pts.append(stamp)
                ends.append(stamp + length)
            else:
                audio_start = stamp if audio_start is None else min(audio_start, stamp)
                audio_end = stamp + length if audio_end is None else max(audio_end, stamp + length)
    except InputError:
        raise
    except Exception as err:
        raise InputError(
            f"video {path}: reading packets failed after {len(pts)} frames, damaged or truncated "
            f"({type(err).__name__}: {err})"
        ) from err
    span = None if audio_start is None else (audio_start, audio_end)
    return np.asarray(pts, dtype=np.int64), np.asarray(ends, dtype=np.int64), span, corrupt


def _check_truncation(container, video, path: Path, num_frames: int, duration: float) -> None:
    listed = int(video.frames or 0)
    if listed > 0:
        if num_frames < listed - TRUNCATION_FRAME_SLACK:
            raise InputError(
                f"video {path}: truncated, the header lists {listed} frames but only {num_frames} can be read"
            )
        return
    if video.duration:
        header = float(video.duration * video.time_base)
    elif container.duration:
        header = container.duration / 1e6
    else:
        return
    if duration < header - max(TRUNCATION_MIN_SECONDS, TRUNCATION_FRACTION * header):
        raise InputError(
            f"video {path}: truncated, the header says {header:.3f} s but the frames end at {duration:.3f} s"
        )


def _audio_duration(audio, span) -> float | None:
    if audio is None:
        return None
    if audio.duration:
        return float(audio.duration * audio.time_base)
    if span is None:
        return 0.0
    return float((span[1] - span[0]) * audio.time_base)
