"""The shard record: one clip of keypoints, scores and audio, and the checks every record must pass.

A record is a plain dict (this is what litdata stores and gives back):

==============  ===================  ==========================================================
field           type                 meaning
==============  ===================  ==========================================================
clip_id         str                  unique across the corpus, e.g. ``"spk03_clip007"``
speaker_id      str                  e.g. ``"spk03"``; splits never share a speaker
fps             int                  always 25
width, height   int                  pixel size of the frame the keypoints live in
keypoints       float32 [T, 134, 2]  pixels, 134-point storage order
scores          float32 [T, 134]     confidences in [0, 1]
audio           int16 [N]            16 kHz mono, N >= T * 640 (frame f <-> samples f*640 ...)
video           bytes                the clip's mp4 file, ``b""`` when the clip has none
==============  ===================  ==========================================================

The same :func:`check_record` runs when clip folders are sharded and when shards are read, so a
malformed record is reported with the clip and the field at either end.
"""

from __future__ import annotations

import numpy as np

from csg_lightning.skeleton.layout import NUM_KEYPOINTS
from csg_lightning.timing import FPS, SAMPLES_PER_FRAME

RECORD_FIELDS = ("clip_id", "speaker_id", "fps", "width", "height", "keypoints", "scores", "audio", "video")


class RecordError(ValueError):
    """A clip folder or shard record that breaks the record schema (message names clip and field)."""


def check_record(record: dict, where: str) -> int:
    """Validate a record dict; return its number of frames T.

    ``where`` names the record in errors (a clip folder path, or "shard record 'x' in DIR").
    Checks: all fields present, fps == 25, positive width/height, keypoints float32
    [T, 134, 2] and scores float32 [T, 134] with the same T >= 1, both finite, scores in [0, 1],
    audio int16 [N] with N >= T * 640.
    """
    missing = [f for f in RECORD_FIELDS if f not in record]
    if missing:
        raise RecordError(f"{where}: missing field(s) {missing}; a record has {list(RECORD_FIELDS)}")
    for name in ("clip_id", "speaker_id"):
        if not isinstance(record[name], str) or not record[name]:
            raise RecordError(f"{where}: field '{name}' must be a non-empty string, got {record[name]!r}")
    if int(record["fps"]) != FPS:
        raise RecordError(f"{where}: field 'fps' is {record['fps']}, expected {FPS}")
    for name in ("width", "height"):
        if int(record[name]) <= 0:
            raise RecordError(f"{where}: field '{name}' must be a positive pixel size, got {record[name]}")

    kp, sc, audio = record["keypoints"], record["scores"], record["audio"]
    if (
        not isinstance(kp, np.ndarray)
        or kp.ndim != 3
        or kp.shape[1:] != (NUM_KEYPOINTS, 2)
        or kp.shape[0] < 1
    ):
        raise RecordError(
            f"{where}: field 'keypoints' has shape {getattr(kp, 'shape', type(kp))}, "
            f"expected [T, {NUM_KEYPOINTS}, 2] with T >= 1"
        )
    num_frames = kp.shape[0]
    if not isinstance(sc, np.ndarray) or sc.shape != (num_frames, NUM_KEYPOINTS):
        raise RecordError(
            f"{where}: field 'scores' has shape {getattr(sc, 'shape', type(sc))}, "
            f"expected [{num_frames}, {NUM_KEYPOINTS}] (T from keypoints)"
        )
    for name, arr in (("keypoints", kp), ("scores", sc)):
        if arr.dtype != np.float32:
            raise RecordError(f"{where}: field '{name}' has dtype {arr.dtype}, expected float32")
        bad = ~np.isfinite(arr)
        if bad.any():
            frame = int(np.argwhere(bad)[0][0])
            raise RecordError(
                f"{where}: field '{name}' holds {int(bad.sum())} NaN/inf value(s) (first in frame {frame})"
            )
    if sc.min() < 0.0 or sc.max() > 1.0:
        raise RecordError(
            f"{where}: field 'scores' must lie in [0, 1], found [{sc.min():.3g}, {sc.max():.3g}]"
        )
    if not isinstance(audio, np.ndarray) or audio.ndim != 1 or audio.dtype != np.int16:
        raise RecordError(
            f"{where}: field 'audio' must be int16 [N] (16 kHz mono), got "
            f"{getattr(audio, 'dtype', type(audio))} {getattr(audio, 'shape', '')}"
        )
    if audio.shape[0] < num_frames * SAMPLES_PER_FRAME:
        raise RecordError(
            f"{where}: field 'audio' has {audio.shape[0]} samples, shorter than the keypoints need "
            f"({num_frames} frames x {SAMPLES_PER_FRAME} = {num_frames * SAMPLES_PER_FRAME})"
        )
    if not isinstance(record["video"], (bytes, bytearray, memoryview)):
        raise RecordError(
            f"{where}: field 'video' must be bytes (b'' when absent), got {type(record['video'])}"
        )
    return num_frames
