"""Raw test footage for the preprocessing tests: ordinary-looking videos whose right answer is known.

A video is a sequence of shots joined by hard cuts. Each shot shows one or two figures of the
synthetic demo corpus (:mod:`csg_lightning.data.corpus`): a corpus clip rendered at its own square
size (``corpus_size``, e.g. 256), scaled by ``scale`` and pasted at a known ``offset`` into a
``width`` x ``height`` frame (default 1280 x 720) at ``fps`` (default 30), with the clip's speech muxed.
Source frame ``i`` of a shot starting at source frame ``a`` shows corpus frame
``floor((i - a) * 25 / fps)``; its keypoints map to raw pixels as ``(p + 0.5) * scale - 0.5 + offset``
(pixel centres align, as in ``cv2.resize``).

Every raw frame carries a barcode in its top row: ``block`` x ``block`` px black/white blocks (default
8 px, aligned to H.264 macroblocks so they survive compression): 2 guard blocks (white, black), a
4-bit tag of the video, 12 bits of the source frame number. :class:`GroundTruthEstimator` reads it and
returns the known people of that frame, so the preprocessing pipeline runs on real mp4 files with an
exact pose answer.

Builders: :func:`one_speaker`, :func:`hard_cut`, :func:`two_person`, :func:`silent_segment`,
:func:`no_audio`, :func:`truncated`. Each returns a :class:`Footage`: the path and the truth.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from csg_lightning.data.corpus import make_clip
from csg_lightning.data.corpus.figure import FigureRenderer
from csg_lightning.io.audio import SAMPLE_RATE, resample
from csg_lightning.io.mp4 import write_mp4
from csg_lightning.pose.estimator import PersonPose, PoseEstimator
from csg_lightning.skeleton.layout import NUM_KEYPOINTS

CORPUS_FPS = 25
GUARD = (1, 0)
TAG_BITS = 4
FRAME_BITS = 12
MAX_PERSONS = 2
BOX_SCORE = 0.95  # detection score of every ground-truth person
BOX_MIN_SCORE = 0.3  # keypoints at least this sure span the person's box
# The QC rules (csg_lightning.preprocess.qc.CHECK_NAMES) that should reject a segment.
MIN_LENGTH = "min_length"
SECOND_PERSON = "single_speaker"
SILENCE = "speech_present"


# ---------------------------------------------------------------------------------------------- barcode


def barcode_bits(tag: int, index: int) -> list[int]:
    """Guard bits, then ``tag`` (4 bits) and the source frame ``index`` (12 bits), most significant first."""
    if not 0 <= tag < 2**TAG_BITS or not 0 <= index < 2**FRAME_BITS:
        raise ValueError(
            f"barcode: tag must be in [0, {2**TAG_BITS}) and index in [0, {2**FRAME_BITS}), got {tag}, {index}"
        )
    bits = [(tag >> b) & 1 for b in reversed(range(TAG_BITS))] + [
        (index >> b) & 1 for b in reversed(range(FRAME_BITS))
    ]
    return [*GUARD, *bits]


def barcode_width(block: int = 8) -> int:
    return (len(GUARD) + TAG_BITS + FRAME_BITS) * block


def draw_barcode(frame: np.ndarray, tag: int, index: int, block: int = 8) -> None:
    """Write the barcode into the top-left ``block`` rows of ``frame`` [H, W, 3] uint8 (in place)."""
    for k, bit in enumerate(barcode_bits(tag, index)):
        frame[:block, k * block : (k + 1) * block] = 255 if bit else 0


def read_barcode(frame: np.ndarray, block: int = 8) -> tuple[int, int]:
    """(tag, source frame index) of a frame [H, W, 3]; ValueError when the guard blocks are not there."""
    inner = max(1, block // 4)  # read the block centres: their edges blur under compression
    levels = [frame[inner : block - inner, k * block + inner : (k + 1) * block - inner].mean()
              for k in range(barcode_width(block) // block)]  # fmt: skip
    bits = [int(v > 127.5) for v in levels]
    margin = min(abs(v - 127.5) for v in levels)
    if tuple(bits[: len(GUARD)]) != GUARD or margin < 40:
        raise ValueError(f"no barcode in this frame (block levels {np.round(levels).astype(int).tolist()})")
    value = int("".join(map(str, bits[len(GUARD) :])), 2)
    return value >> FRAME_BITS, value & (2**FRAME_BITS - 1)


# ----------------------------------------------------------------------------------------------- shots


@dataclass(frozen=True)
class Figure:
    """One corpus speaker in a shot: its clip (``speaker_index``, ``clip_index``) pasted with its
    top-left corner at ``offset`` (x, y) raw pixels."""

    speaker_index: int
    offset: tuple[int, int]
    clip_index: int = 0


@dataclass(frozen=True)
class Shot:
    """``seconds`` of footage showing ``figures`` (the first one speaks) over a ``room`` colour (RGB).

    ``silent`` zeroes the shot's audio. ``rejected_by``: the rule kinds that should reject it (empty:
    the segment should be kept).
    """

    seconds: float
    figures: tuple[Figure, ...]
    room: tuple[int, int, int] = (70, 80, 90)
    silent: bool = False
    rejected_by: tuple[str, ...] = ()


@dataclass
class Footage:
    """A raw test video and its truth.

    Per source frame ``i = 0..N-1`` and person slot ``p`` (0: the speaker, 1: a second figure):
    keypoints float32 [N, 2, 134, 2] raw pixels, scores float32 [N, 2, 134], boxes float32 [N, 2, 4]
    (x1, y1, x2, y2), present bool [N, 2]. ``shot_bounds`` int [S + 1]: source frames where shots start
    (and N). ``audio``: the muxed float32 samples at ``sample_rate`` (None: no audio track).
    ``complete_bytes``: the size before truncation (None: not truncated).
    """

    path: Path
    width: int
    height: int
    fps: float
    tag: int
    corpus_size: int
    scale: float
    shots: list[Shot]
    shot_bounds: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    present: np.ndarray
    audio: np.ndarray | None
    sample_rate: int = SAMPLE_RATE
    block: int = 8
    complete_bytes: int | None = None
    expect_skipped: bool = False
    notes: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.keypoints)

    @property
    def seconds(self) -> float:
        return self.num_frames / self.fps

    @property
    def has_audio(self) -> bool:
        return self.audio is not None

    @property
    def cut_times(self) -> list[float]:
        """Seconds at which the second, third, ... shot starts."""
        return [int(a) / self.fps for a in self.shot_bounds[1:-1]]

    def to_output_frame(self, source_frame: int) -> int:
        """The first 25 fps frame ``t`` that shows ``source_frame`` or later (``t / 25 >= i / fps``)."""
        return math.ceil(source_frame * CORPUS_FPS / self.fps - 1e-9)

    @property
    def cut_frames(self) -> list[int]:
        """25 fps frames where a new shot starts (what a shot detector should report)."""
        return [self.to_output_frame(int(a)) for a in self.shot_bounds[1:-1]]

    def expected_segments(self, min_seconds: float = 0.0, max_seconds: float = math.inf) -> list[dict]:
        """Per shot: ``start`` / ``stop`` (25 fps frames), seconds, ``kept`` and ``rejected_by`` (rule names).

        A shot shorter than ``min_seconds`` is also rejected by ``min_length`` (listed first, as in
        the check order); shots longer than ``max_seconds`` would be split, which is not modelled here.
        """
        out = []
        for shot, a, b in zip(self.shots, self.shot_bounds[:-1], self.shot_bounds[1:], strict=True):
            start, stop = self.to_output_frame(int(a)), self.to_output_frame(int(b))
            if (stop - start) / CORPUS_FPS > max_seconds:
                raise ValueError(
                    f"{self.path}: a {(stop - start) / CORPUS_FPS} s shot exceeds max_seconds {max_seconds}"
                )
            rejected = [MIN_LENGTH] * ((stop - start) / CORPUS_FPS < min_seconds) + list(shot.rejected_by)
            out.append({"start": start, "stop": stop, "start_seconds": int(a) / self.fps,
                        "stop_seconds": int(b) / self.fps, "kept": not rejected, "rejected_by": rejected})  # fmt: skip
        return out

    def persons(self, index: int) -> list[PersonPose]:
        """The people of source frame ``index``, speaker first."""
        return [PersonPose(self.keypoints[index, p], self.scores[index, p], self.boxes[index, p], BOX_SCORE)
                for p in range(MAX_PERSONS) if self.present[index, p]]  # fmt: skip

    def save_truth(self, path: str | os.PathLike) -> Path:
        """Write the truth to an .npz that :class:`GroundTruthEstimator` (``truth_files``) reads."""
        path = Path(path)
        np.savez(path, tag=self.tag, width=self.width, height=self.height, block=self.block,
                 keypoints=self.keypoints, scores=self.scores, boxes=self.boxes, present=self.present)  # fmt: skip
        return path


# ------------------------------------------------------------------------------------------- rendering


def default_scale(height: int, corpus_size: int) -> float:
    """The figure patch is about 70% of the frame height, an even number of pixels."""
    return (2 * round(0.35 * height)) / corpus_size


def _patch_size(corpus_size: int, scale: float) -> int:
    return int(round(corpus_size * scale))


class _FigureFrames:
    """The scaled render of one figure per corpus frame, cached; truth in raw pixels."""

    def __init__(self, figure: Figure, seconds: float, corpus_size: int, scale: float, seed: int):
        self.figure = figure
        self.clip = make_clip(seed, figure.speaker_index, figure.clip_index, seconds + 0.2, corpus_size)
        self.renderer = FigureRenderer(self.clip.speaker, corpus_size)
        self.patch = _patch_size(corpus_size, scale)
        self.ratio = self.patch / corpus_size
        self.cache: dict[int, np.ndarray] = {}

    def image(self, c: int) -> np.ndarray:
        if c not in self.cache:
            render = self.renderer.render(self.clip.pose.keypoints[c])
            self.cache = {c: cv2.resize(render, (self.patch, self.patch), interpolation=cv2.INTER_LINEAR)}
        return self.cache[c]

    def truth(self, c: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ox, oy = self.figure.offset
        kp = (self.clip.keypoints[c].astype(np.float64) + 0.5) * self.ratio - 0.5 + [ox, oy]
        sc = self.clip.scores[c]
        sure = kp[sc >= BOX_MIN_SCORE]
        lo, hi = sure.min(0), sure.max(0)
        pad = 0.08 * (hi - lo)
        box = np.concatenate(
            [np.maximum(lo - pad, [ox, oy]), np.minimum(hi + pad, [ox + self.patch - 1, oy + self.patch - 1])]
        )
        return kp.astype(np.float32), sc.astype(np.float32), box.astype(np.float32)


def _check_layout(shot: Shot, width: int, height: int, patch: int, block: int) -> None:
    spans = []
    for fig in shot.figures:
        x, y = fig.offset
        if x < 0 or y < 0 or x + patch > width or y + patch > height:
            raise ValueError(f"figure at {fig.offset} ({patch} px) does not fit a {width}x{height} frame")
        if y < block and x < barcode_width(block):
            raise ValueError(
                f"figure at {fig.offset} covers the barcode (top {block} rows, {barcode_width(block)} px)"
            )
        spans.append((x, x + patch))
    if len(spans) > MAX_PERSONS or (
        len(spans) == 2 and min(spans[0][1], spans[1][1]) > max(spans[0][0], spans[1][0])
    ):
        raise ValueError(f"at most {MAX_PERSONS} figures, side by side without overlap: {shot.figures}")


def make_footage(
    path: str | os.PathLike,
    shots: list[Shot],
    width: int = 1280,
    height: int = 720,
    fps: float = 30,
    corpus_size: int = 256,
    scale: float | None = None,
    audio: bool = True,
    sample_rate: int = SAMPLE_RATE,
    tag: int = 0,
    seed: int = 0,
    block: int = 8,
) -> Footage:
    """Render ``shots`` into an mp4 at ``path`` (H.264, AAC mono when ``audio``) -> its :class:`Footage`."""
    scale = default_scale(height, corpus_size) if scale is None else float(scale)
    patch = _patch_size(corpus_size, scale)
    lengths = [int(round(s.seconds * fps)) for s in shots]
    if min(lengths) < 1:
        raise ValueError(f"every shot needs at least one frame at {fps} fps: {[s.seconds for s in shots]}")
    bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n = int(bounds[-1])
    keypoints = np.zeros((n, MAX_PERSONS, NUM_KEYPOINTS, 2), np.float32)
    scores = np.zeros((n, MAX_PERSONS, NUM_KEYPOINTS), np.float32)
    boxes = np.zeros((n, MAX_PERSONS, 4), np.float32)
    present = np.zeros((n, MAX_PERSONS), bool)
    for shot in shots:
        _check_layout(shot, width, height, patch, block)
    figures = [
        [_FigureFrames(f, shot.seconds, corpus_size, scale, seed) for f in shot.figures] for shot in shots
    ]
    sounds = []
    for shot, figs, length in zip(shots, figures, lengths, strict=True):
        speech = figs[0].clip.speech.audio[: int(round(length / fps * SAMPLE_RATE))]
        sounds.append(np.zeros_like(speech) if shot.silent else speech)

    def frames():
        for shot, figs, a, length in zip(shots, figures, bounds[:-1], lengths, strict=True):
            room = np.empty((height, width, 3), np.uint8)
            room[:] = shot.room
            for local in range(length):
                i = int(a) + local
                c = min(int(local * CORPUS_FPS / fps + 1e-9), len(figs[0].clip.keypoints) - 1)
                frame = room.copy()
                for p, fig in enumerate(figs):
                    x, y = fig.figure.offset
                    frame[y : y + patch, x : x + patch] = fig.image(c)
                    keypoints[i, p], scores[i, p], boxes[i, p] = fig.truth(c)
                    present[i, p] = True
                draw_barcode(frame, tag, i, block)
                yield frame

    path = Path(path)
    track = None
    if audio:
        track = np.concatenate(sounds).astype(np.float32)
        track = np.pad(track, (0, max(0, int(round(n / fps * SAMPLE_RATE)) - len(track))))
        track = resample(track, SAMPLE_RATE, sample_rate)
    write_mp4(path, frames(), fps=fps, audio=track, sample_rate=sample_rate)
    return Footage(path, width, height, fps, tag, corpus_size, patch / corpus_size, list(shots), bounds,
                   keypoints, scores, boxes, present, track, sample_rate, block)  # fmt: skip


# -------------------------------------------------------------------------------------------- builders


def _single_offset(width: int, height: int, patch: int, left: bool = False) -> tuple[int, int]:
    """Off-centre: 62% (or 20%) of the free width, 40% of the free height."""
    return int(round((0.2 if left else 0.62) * (width - patch))), int(round(0.4 * (height - patch)))


def _geometry(height: int, corpus_size: int, scale: float | None) -> tuple[float, int]:
    scale = default_scale(height, corpus_size) if scale is None else float(scale)
    return scale, _patch_size(corpus_size, scale)


def one_speaker(path, seconds: float = 3.0, width: int = 1280, height: int = 720, fps: float = 30,
                corpus_size: int = 256, scale: float | None = None, speaker: int = 0, **kw) -> Footage:  # fmt: skip
    """One shot of one speaker, off-centre: one kept segment."""
    scale, patch = _geometry(height, corpus_size, scale)
    shot = Shot(seconds, (Figure(speaker, _single_offset(width, height, patch)),))
    return make_footage(path, [shot], width, height, fps, corpus_size, scale, **kw)


def hard_cut(path, seconds: tuple[float, float] = (2.0, 2.0), width: int = 1280, height: int = 720,
             fps: float = 30, corpus_size: int = 256, scale: float | None = None, **kw) -> Footage:  # fmt: skip
    """Two shots (speaker 0 right of centre, then speaker 1 left, another room) joined by a hard cut."""
    scale, patch = _geometry(height, corpus_size, scale)
    shots = [Shot(seconds[0], (Figure(0, _single_offset(width, height, patch)),), room=(60, 70, 90)),
             Shot(seconds[1], (Figure(1, _single_offset(width, height, patch, left=True)),), room=(190, 170, 120))]  # fmt: skip
    return make_footage(path, shots, width, height, fps, corpus_size, scale, **kw)


def two_person(path, seconds: tuple[float, float] = (2.0, 2.0), width: int = 1280, height: int = 720,
               fps: float = 30, corpus_size: int = 256, scale: float | None = None, **kw) -> Footage:  # fmt: skip
    """One speaker (kept), a hard cut, then two figures of the same size side by side (rejected)."""
    scale, patch = _geometry(height, corpus_size, scale)
    gap = int(round(0.04 * width))
    y = int(round(0.4 * (height - patch)))
    left, right = (width - gap) // 2 - patch, (width + gap) // 2
    shots = [Shot(seconds[0], (Figure(0, _single_offset(width, height, patch)),), room=(60, 70, 90)),
             Shot(seconds[1], (Figure(0, (left, y), clip_index=1), Figure(2, (right, y))), room=(150, 120, 160),
                  rejected_by=(SECOND_PERSON,))]  # fmt: skip
    return make_footage(path, shots, width, height, fps, corpus_size, scale, **kw)


def silent_segment(path, seconds: tuple[float, float] = (2.0, 2.0), width: int = 1280, height: int = 720,
                   fps: float = 30, corpus_size: int = 256, scale: float | None = None, **kw) -> Footage:  # fmt: skip
    """A speaking shot (kept), a hard cut, then a shot whose audio is zeroed (rejected)."""
    scale, patch = _geometry(height, corpus_size, scale)
    shots = [Shot(seconds[0], (Figure(0, _single_offset(width, height, patch)),), room=(60, 70, 90)),
             Shot(seconds[1], (Figure(1, _single_offset(width, height, patch, left=True)),), room=(190, 170, 120),
                  silent=True, rejected_by=(SILENCE,))]  # fmt: skip
    return make_footage(path, shots, width, height, fps, corpus_size, scale, **kw)


def no_audio(path, seconds: float = 2.0, **kw) -> Footage:
    """One speaker, no audio track at all: the whole video should be skipped."""
    footage = one_speaker(path, seconds, audio=False, **kw)
    footage.expect_skipped = True
    return footage


def truncated(
    path, seconds: float = 2.0, keep_fraction: float = 0.5, index_first: bool = False, **kw
) -> Footage:
    """One speaker whose file is cut after ``keep_fraction`` of its bytes (should be skipped).

    ``index_first=False``: the mp4 index (moov) is written last, so the cut file has none at all;
    ``index_first=True``: the file is remuxed with the index first ("faststart"), so the cut file
    still lists every frame but lacks the data of the later ones.
    """
    path = Path(path)
    full = path.with_name(f"{path.stem}.complete{path.suffix}")
    footage = one_speaker(full, seconds, **kw)
    if index_first:
        _remux_index_first(full)
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    footage.path, footage.complete_bytes, footage.expect_skipped = path, len(data), True
    footage.notes["index_first"] = index_first
    return footage


def _remux_index_first(path: Path) -> None:
    import av

    tmp = path.with_name(f".{path.name}.faststart.mp4")
    with (
        av.open(str(path)) as src,
        av.open(str(tmp), "w", format="mp4", options={"movflags": "faststart"}) as dst,
    ):
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None:
                continue
            packet.stream = streams[packet.stream.index]
            dst.mux(packet)
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------------- estimator


class GroundTruthEstimator(PoseEstimator):
    """A real :class:`PoseEstimator` that reads each frame's barcode and returns the known people.

    footage: one :class:`Footage` or a list (distinct tags); truth_files: .npz files of
    :meth:`Footage.save_truth` (for building it from a YAML ``class_path``). ``calls`` counts frames seen.
    """

    def __init__(self, footage: Footage | list[Footage] | None = None, truth_files: list[str] | None = None):
        items = [] if footage is None else [footage] if isinstance(footage, Footage) else list(footage)
        self.truth: dict[int, dict] = {}
        for f in items:
            self._add(f.tag, dict(width=f.width, height=f.height, block=f.block, keypoints=f.keypoints,
                                  scores=f.scores, boxes=f.boxes, present=f.present), str(f.path))  # fmt: skip
        for name in truth_files or []:
            with np.load(name) as data:
                self._add(int(data["tag"]), {k: data[k] for k in data.files if k != "tag"}, name)
        if not self.truth:
            raise ValueError("GroundTruthEstimator needs footage or truth_files")
        self.calls = 0

    def _add(self, tag: int, truth: dict, name: str) -> None:
        if tag in self.truth:
            raise ValueError(f"GroundTruthEstimator: {name} has tag {tag}, already used by another footage")
        self.truth[tag] = truth

    def estimate(self, frames: list[np.ndarray]) -> list[list[PersonPose]]:
        out = []
        for frame in frames:
            block = next(iter(self.truth.values()))["block"]
            tag, index = read_barcode(frame, int(block))
            if tag not in self.truth:
                raise ValueError(
                    f"GroundTruthEstimator: frame with tag {tag}, known tags {sorted(self.truth)}"
                )
            t = self.truth[tag]
            if frame.shape[:2] != (int(t["height"]), int(t["width"])) or index >= len(t["keypoints"]):
                raise ValueError(f"GroundTruthEstimator: frame {index} ({frame.shape[1]}x{frame.shape[0]}) "
                                 f"does not belong to footage tag {tag} ({t['width']}x{t['height']}, "
                                 f"{len(t['keypoints'])} frames)")  # fmt: skip
            out.append([PersonPose(t["keypoints"][index, p], t["scores"][index, p], t["boxes"][index, p], BOX_SCORE)
                        for p in range(MAX_PERSONS) if t["present"][index, p]])  # fmt: skip
            self.calls += 1
        return out
