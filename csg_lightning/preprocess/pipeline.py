"""``csg-data preprocess``: a folder of ordinary videos -> clip folders, video by video.

Per video (:class:`VideoPreprocessor`): probe; audio to 16 kHz mono; one decode pass at 25 fps in
chunks feeding the shot detector and the pose estimator (batched); the speaker's track; segments
(shots, long shots split into near-equal pieces); the QC rules per segment; for each kept segment
the smoothed keypoints, one square crop box, a second decode of its frames cropped to 512x512, and
the clip folder (written atomically). Then the video's record ``OUT/videos/<key>.json`` is written
atomically: it is the video's done marker, so a re-run redoes only videos without one (a killed
video is redone whole; its finished clips are kept, they come out the same).

Layout of ``OUT``: ``clips/<clip_id>/`` (the corpus format, ready for ``csg-data shard``),
``videos/<key>.json`` (records), ``thumbs/<segment_id>.jpg`` (contact-sheet tiles), ``report.*``,
``config.yaml`` (the resolved configuration).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

from csg_lightning.io.atomic import atomic_path, remove_stale_temps
from csg_lightning.io.validation import InputError
from csg_lightning.preprocess.clip_writer import is_complete_clip, jsonable, safe_clip_id, write_clip
from csg_lightning.preprocess.config import PreprocessConfig
from csg_lightning.preprocess.segments import Segment, SpeakerTrack
from csg_lightning.timing import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME

log = logging.getLogger("csg_lightning.preprocess")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
RECORD_VERSION = 1


def list_videos(root: str | os.PathLike) -> list[Path]:
    """Every video file under ``root`` (recursively, hidden files and folders skipped), sorted."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InputError(f"VIDEOS {root}: no such folder")
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            found.append(path)
    return sorted(found)


def video_key(rel: Path) -> str:
    """The id of a video from its path under VIDEOS: ``talks/ep 1.mp4`` -> ``talks_ep_1``."""
    return safe_clip_id("_".join(rel.with_suffix("").parts))


def record_path(out: Path, key: str) -> Path:
    return out / "videos" / f"{key}.json"


class VideoPreprocessor:
    """Runs the pipeline on one video at a time with one estimator (built once)."""

    def __init__(
        self, config: PreprocessConfig, estimator, out_dir: str | os.PathLike, progress: bool = True
    ):
        self.config = config
        self.estimator = estimator
        self.out = Path(out_dir)
        self.progress = progress
        self.config_hash = config.processing_hash()
        for sub in ("clips", "videos", "thumbs"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)
            remove_stale_temps(self.out / sub)

    # -- one video ---------------------------------------------------------------------------------
    def process(self, path: Path, rel: Path) -> dict:
        """Process ``path`` (``rel`` its path under VIDEOS) and write its record; returns the record."""
        key = video_key(rel)
        record = {"version": RECORD_VERSION, "video": str(rel), "video_key": key, "config_hash": self.config_hash,
                  "status": "done", "skip_reason": None, "segments": []}  # fmt: skip
        timing = dict.fromkeys(("probe", "decode_detect_pose", "qc", "crop_encode_write", "thumbnails"), 0.0)
        record["timing"] = timing
        try:
            self._process(path, rel, key, record, timing)
        except InputError as err:  # a bad video: a recorded skip, never a crash of the whole run
            record.update(status="skipped", skip_reason=str(err), segments=[])
        except ValueError as err:  # e.g. a kept segment without a confident crop point: skip, say why
            record.update(status="skipped", skip_reason=f"{path}: {type(err).__name__}: {err}", segments=[])
        self._write_record(key, record)
        return record

    def _process(self, path: Path, rel: Path, key: str, record: dict, timing: dict) -> None:
        from csg_lightning.io.audio import read_audio
        from csg_lightning.preprocess.decode import VideoFrames
        from csg_lightning.preprocess.probe import probe_video

        cfg = self.config
        start = time.perf_counter()
        probe = probe_video(path)
        record["probe"] = probe.as_dict()
        if not probe.has_audio:
            raise InputError(f"{path}: the video has no audio track (a clip needs the speech)")
        audio = read_audio(path, what="video")
        frames = VideoFrames(path, probe)
        num_frames = len(frames)
        record.update(frames=num_frames, seconds=num_frames / FPS, audio_seconds=len(audio) / SAMPLE_RATE)
        timing["probe"] = time.perf_counter() - start
        if num_frames < 1:
            raise InputError(f"{path}: no frames at 25 fps (duration {probe.duration:.3f} s)")

        start = time.perf_counter()
        track, cuts = self._track(frames, rel)
        timing["decode_detect_pose"] = time.perf_counter() - start

        from csg_lightning.preprocess.qc import run_checks, split_segment

        start = time.perf_counter()
        bounds = [0, *[c for c in cuts if 0 < c < num_frames], num_frames]
        max_frames = int(round(cfg.qc.max_seconds * FPS))
        min_frames = int(round(cfg.qc.min_seconds * FPS))
        segments = [Segment(a, b) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
                    for a, b in split_segment(lo, hi, max_frames, min_frames)]  # fmt: skip
        height, width = probe.height, probe.width
        audio_seconds = len(audio) / SAMPLE_RATE
        checked = []
        for seg in segments:
            piece = audio[seg.start * SAMPLES_PER_FRAME : seg.stop * SAMPLES_PER_FRAME]
            checks = run_checks(track.slice(seg.start, seg.stop), piece, width, height,
                                probe.duration, audio_seconds, cfg.qc)  # fmt: skip
            checked.append((seg, checks))
        timing["qc"] = time.perf_counter() - start

        for seg, checks in checked:
            seg_id = f"{key}_{seg.start:06d}-{seg.stop:06d}"
            rejected = [c.name for c in checks if not c.passed]
            entry = {
                "segment_id": seg_id, "start": seg.start, "stop": seg.stop, "seconds": seg.seconds,
                "start_seconds": seg.start_seconds, "stop_seconds": seg.stop_seconds,
                "kept": not rejected, "clip_id": None, "rejected_by": rejected,
                "checks": [asdict(c) for c in checks], "thumbnail": None,
            }  # fmt: skip
            if not rejected:
                start = time.perf_counter()
                entry.update(
                    self._write_clip(path, rel, key, seg_id, seg, frames, track, audio, checks, probe)
                )
                timing["crop_encode_write"] += time.perf_counter() - start
            if cfg.thumbnails:
                start = time.perf_counter()
                entry["thumbnail"] = self._thumbnail(seg_id, seg, frames, track)
                timing["thumbnails"] += time.perf_counter() - start
            record["segments"].append(entry)

    def _track(self, frames, rel: Path) -> tuple[SpeakerTrack, list[int]]:
        """One decode pass: shot cuts and the speaker track of every 25 fps frame."""
        from tqdm.auto import tqdm

        from csg_lightning.preprocess.shots import ShotDetector
        from csg_lightning.preprocess.speaker_track import build_track

        cfg = self.config
        detector = ShotDetector(cfg.shots.threshold, cfg.shots.min_shot_frames, cfg.shots.downscale_width)
        parts = []
        with tqdm(
            total=len(frames), desc=f"pose {rel}", unit="frame", leave=False, disable=not self.progress
        ) as bar:
            for t0, chunk in frames.iter_chunks(chunk=cfg.chunk_frames):
                detector.update(t0, chunk)
                people = []
                for i in range(0, len(chunk), cfg.batch_frames):
                    people += self.estimator(list(chunk[i : i + cfg.batch_frames]))
                parts.append(build_track(people))
                bar.update(len(chunk))
        return SpeakerTrack.concatenate(parts), list(detector.cuts())

    def _write_clip(self, path, rel, key, seg_id, seg, frames, track, audio, checks, probe) -> dict:
        from csg_lightning.preprocess.crop import crop_box_for_clip, crop_frames, crop_keypoints
        from csg_lightning.skeleton.smoothing import smooth_skeleton

        cfg = self.config
        clip_id = seg_id
        piece = track.slice(seg.start, seg.stop)
        smoothed = smooth_skeleton(piece.keypoints, piece.scores, cfg.smoothing)
        smooth_track = SpeakerTrack(**{**piece.__dict__, "keypoints": smoothed})
        box = crop_box_for_clip(smooth_track, probe.width, probe.height, cfg.crop)
        out_size = cfg.crop.output_size
        keypoints = crop_keypoints(smoothed, box, out_size)
        scores = piece.scores.copy()
        outside = ((keypoints < 0) | (keypoints > out_size - 1)).any(-1)
        scores[outside] = 0.0  # cropped out of the clip's frames: not visible there
        entry = {"clip_id": clip_id, "crop_box": [box.x0, box.y0, box.size]}
        if is_complete_clip(self.out / "clips" / clip_id):  # written before a kill: the same content again
            return entry

        def cropped():
            for _, chunk in frames.iter_chunks(seg.start, seg.stop, chunk=cfg.chunk_frames):
                yield from crop_frames(chunk, box, out_size)

        speaker = key if cfg.speaker_from == "video" else safe_clip_id(rel.parent.name or key)
        meta = {
            "speaker_id": speaker,
            "source": {"video": str(rel), "start_seconds": seg.start_seconds, "stop_seconds": seg.stop_seconds,
                       "start_frame": seg.start, "stop_frame": seg.stop, "width": probe.width,
                       "height": probe.height, "fps": probe.fps},
            "crop_box": {"x0": box.x0, "y0": box.y0, "size": box.size, "output_size": out_size,
                         "frame_width": probe.width, "frame_height": probe.height},
            "qc": {c.name: c.value for c in checks},
            "smoothing": asdict(cfg.smoothing),
            "config_hash": self.config_hash,
            "generator": "csg-data preprocess",
        }  # fmt: skip
        audio_piece = audio[seg.start * SAMPLES_PER_FRAME : seg.stop * SAMPLES_PER_FRAME]
        write_clip(self.out / "clips", clip_id, cropped(), audio_piece, keypoints, scores, meta, crf=cfg.crf)
        return entry

    def _thumbnail(self, seg_id: str, seg: Segment, frames, track: SpeakerTrack) -> str:
        import cv2

        from csg_lightning.preprocess.contact_sheet import draw_thumbnail

        mid = (seg.start + seg.stop) // 2
        tile = draw_thumbnail(frames.frame(mid), track.keypoints[mid], track.scores[mid])
        rel = f"thumbs/{seg_id}.jpg"
        with atomic_path(self.out / rel) as tmp:
            if not cv2.imwrite(str(tmp), cv2.cvtColor(tile, cv2.COLOR_RGB2BGR)):
                raise OSError(f"cannot write {self.out / rel}")
        return rel

    def _write_record(self, key: str, record: dict) -> None:
        path = record_path(self.out, key)
        with atomic_path(path, durable=True) as tmp:
            tmp.write_text(json.dumps(record, indent=1, default=jsonable) + "\n")
