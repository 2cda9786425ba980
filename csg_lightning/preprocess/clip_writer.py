"""Writing one clip folder (the corpus format of :mod:`csg_lightning.data.clip_folder`) atomically.

``root/<clip_id>/`` gets ``video.mp4`` (the frames at 25 fps with the audio muxed), ``pose.npz``
(keypoints float32 [T, 134, 2] in the video's pixels, scores float32 [T, 134]), ``audio.wav``
(16 kHz mono PCM16, padded with silence to at least T * 640 samples) and ``meta.json``. Everything
is written into a hidden temporary folder that is renamed into place when complete
(:func:`~csg_lightning.io.atomic.atomic_folder`): a kill leaves no half clip.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from csg_lightning.io.atomic import atomic_folder
from csg_lightning.io.audio import SAMPLE_RATE, to_int16, write_wav
from csg_lightning.io.mp4 import write_mp4
from csg_lightning.io.npz import save_npz
from csg_lightning.timing import FPS, SAMPLES_PER_FRAME

MAX_PAD_SAMPLES = SAMPLE_RATE // 2  # a clip's audio may end up to 0.5 s early (padded with silence), no more
CLIP_FILES = ("meta.json", "pose.npz", "audio.wav", "video.mp4")
_BAD_ID = re.compile(r"[^A-Za-z0-9_\-]")


def safe_clip_id(text: str) -> str:
    """A clip / speaker id usable as a folder name: anything but letters, digits, ``_`` and ``-`` -> ``_``."""
    out = _BAD_ID.sub("_", str(text)).strip("_")
    if not out:
        raise ValueError(f"cannot form a clip id from {text!r}")
    return out


def is_complete_clip(folder: str | os.PathLike) -> bool:
    """True when every file of a finished clip folder is there (a folder only appears complete)."""
    folder = Path(folder)
    return all((folder / name).is_file() for name in CLIP_FILES)


def write_clip(
    root: str | os.PathLike,
    clip_id: str,
    frames: Iterable[np.ndarray],
    audio: np.ndarray,
    keypoints: np.ndarray,
    scores: np.ndarray,
    meta: dict,
    crf: int = 18,
) -> Path:
    """Write ``root/<clip_id>/`` and return it; ``frames`` (RGB uint8 [H, W, 3] each, may be an iterator).

    ``audio`` float mono 16 kHz; ``meta`` must hold ``speaker_id`` and may hold any provenance
    (JSON-serialisable); ``clip_id``, ``fps``, ``width``, ``height``, ``num_frames``, ``sample_rate``
    and ``num_samples`` are filled in here from what was actually written.
    """
    if safe_clip_id(clip_id) != clip_id:
        raise ValueError(f"clip id {clip_id!r} is not a safe folder name (use safe_clip_id)")
    keypoints = np.ascontiguousarray(keypoints, np.float32)
    scores = np.ascontiguousarray(scores, np.float32)
    num_frames = len(keypoints)
    if keypoints.shape != (num_frames, 134, 2) or scores.shape != (num_frames, 134) or num_frames == 0:
        raise ValueError(
            f"{clip_id}: expected keypoints [T, 134, 2] and scores [T, 134], got {keypoints.shape}, {scores.shape}"
        )
    if "speaker_id" not in meta:
        raise ValueError(f"{clip_id}: meta needs a 'speaker_id'")
    audio = np.asarray(audio, np.float32).reshape(-1)
    needed = num_frames * SAMPLES_PER_FRAME
    if needed - len(audio) > MAX_PAD_SAMPLES:
        raise ValueError(
            f"{clip_id}: the audio covers {len(audio) / SAMPLE_RATE:.2f} s of the clip's {num_frames / FPS:.2f} s "
            f"(more than {MAX_PAD_SAMPLES / SAMPLE_RATE:.1f} s missing)"
        )
    if len(audio) < needed:  # the last frames' samples: pad with silence (at most MAX_PAD_SAMPLES)
        audio = np.concatenate([audio, np.zeros(needed - len(audio), np.float32)])
    audio = audio[:needed]
    size: list[int] = []

    def counted(it):
        for frame in it:
            if not size:
                size.extend(frame.shape[:2])
            size.append(0)
            yield frame

    final = Path(root) / clip_id
    with atomic_folder(final) as tmp:
        write_mp4(tmp / "video.mp4", counted(frames), fps=FPS, audio=audio, sample_rate=SAMPLE_RATE, crf=crf)
        written = len(size) - 2
        if written != num_frames:
            raise ValueError(f"{clip_id}: {written} video frames for {num_frames} pose frames")
        save_npz(tmp / "pose.npz", keypoints=keypoints, scores=scores)
        write_wav(tmp / "audio.wav", to_int16(audio), SAMPLE_RATE)
        full = dict(meta)
        full.update(
            clip_id=clip_id, fps=FPS, height=int(size[0]), width=int(size[1]), num_frames=num_frames,
            sample_rate=SAMPLE_RATE, num_samples=len(audio), has_video=True,
        )  # fmt: skip
        (tmp / "meta.json").write_text(json.dumps(full, indent=1, sort_keys=True, default=jsonable) + "\n")
    return final


def jsonable(value):
    """``json.dumps(default=...)`` for numpy scalars / arrays and paths (the values records and meta hold)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write a {type(value).__name__} to JSON")
