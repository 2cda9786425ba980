"""``csg-data csg405``: the CSG-405 release's clip list + the source videos one has -> clip folders.

For every clip of ``all_with_crop.json`` whose source video is in VIDEOS_DIR
(:mod:`.source_videos`): cut ``[start_time, end_time]`` on the 25 fps frame grid of the source
(:class:`~csg_lightning.preprocess.decode.VideoFrames`: output frame ``k`` shows the source at
``k / 25`` s; the clip is frames ``ceil(25 * start) .. ceil(25 * end) - 1``), crop it to 512 x 512
(:mod:`.crop_geometry`), take the audio of the same frames (16 kHz mono, 640 samples a frame) and
the skeletons (:mod:`.clip_poses`: the release's pose file, or re-estimated), and write
``OUT/clips/<clip id>/`` with :func:`~csg_lightning.preprocess.clip_writer.write_clip` (atomic; the
folder format of :mod:`csg_lightning.data.clip_folder`, ready for ``csg-data shard OUT/clips``).
The speaker id is the video id; the clip id the release's clip name (folder-safe).

Also written to OUT, each atomically:

* ``csg405_missing.txt``: the video ids with clips in the manifest but no file in VIDEOS_DIR, one a
  line (nothing is downloaded);
* ``csg405_skipped.json``: clips that could not be made, ``[{clip, name, vid, reason}]`` (an
  unreadable or mismatched pose file, a clip beyond its video's end, an undecodable video), kept
  across runs for the clips a run did not retry;
* ``test_pairs.json`` from the test list(s) (:mod:`.test_pairs`).

Re-running skips clips whose folder is complete and retries the skipped ones. A release pose file
may differ from the cut by up to ``frame_slack`` frames (the release cut with ffmpeg's ``-ss/-to``);
both are then cut to the shorter. More is a skip.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from csg_lightning.csg405.clip_poses import POSE_FRAMES, estimated_poses, find_pose_file, release_poses
from csg_lightning.csg405.crop_geometry import OUTPUT_SIZE, square_crop
from csg_lightning.csg405.manifest import Release, ReleaseClip, load_release
from csg_lightning.csg405.source_videos import PART_SECONDS, Source, find_source, source_start
from csg_lightning.csg405.test_pairs import TEST_LIST_FILENAME, TestPair, read_test_list, write_test_pairs
from csg_lightning.io.atomic import atomic_path, remove_stale_temps
from csg_lightning.io.validation import InputError
from csg_lightning.preprocess.clip_writer import (
    FPS,
    SAMPLES_PER_FRAME,
    is_complete_clip,
    safe_clip_id,
    write_clip,
)

log = logging.getLogger("csg_lightning.csg405")
MISSING_FILENAME = "csg405_missing.txt"
SKIPPED_FILENAME = "csg405_skipped.json"
CLIPS_DIRNAME = "clips"
MAX_SOURCE_SECONDS = 4 * 3600.0  # longest source video whose audio is read (whole, once per video)
TIME_EPSILON = 1e-6  # frames: a start exactly on a frame time stays on it


@dataclass
class IngestOptions:
    """How clips are made. poses_dir: the release's pose files (else ``estimator`` re-estimates: a
    :class:`~csg_lightning.pose.estimator.PoseEstimator`, or a function building one, called only
    when a clip needs it, after every input was checked);
    pose_frame: whose pixels the pose files use ("crop": the release's 512 x 512 clips, "source");
    limit: make at most this many clips this run; part_seconds: length of a release ``part``;
    frame_slack: frames a pose file may differ from the cut; chunk_frames / batch_frames: frames
    decoded / estimated at a time; crf: H.264 quality; test_lists: test list files (None: the
    manifest folder's ``test.txt`` if there is one)."""

    poses_dir: Path | None = None
    estimator: object | None = None
    pose_frame: str = "crop"
    limit: int | None = None
    part_seconds: float = PART_SECONDS
    frame_slack: int = 2
    chunk_frames: int = 32
    batch_frames: int = 16
    crf: int = 18
    test_lists: list[Path] | None = None


@dataclass
class IngestSummary:
    """What a run did. clips: in the manifest; written: clip ids made this run; done_before: complete
    already; missing_videos: video ids not in VIDEOS_DIR; missing_clips: their clips; skipped: this
    run's skips; not_reached: left for a later run by ``limit``; pairs: test pairs written."""

    clips: int = 0
    written: list[str] = field(default_factory=list)
    done_before: int = 0
    missing_videos: list[str] = field(default_factory=list)
    missing_clips: int = 0
    skipped: list[dict] = field(default_factory=list)
    not_reached: int = 0
    pairs: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self, out: Path) -> list[str]:
        lines = [f"csg405: {self.clips} clip(s) in the manifest: {len(self.written)} written, "
                 f"{self.done_before} done before, {len(self.skipped)} skipped, {self.missing_clips} without "
                 f"their video, {self.not_reached} left for a later run"]  # fmt: skip
        if self.missing_videos:
            lines.append(f"missing: {len(self.missing_videos)} source video(s) ({self.missing_clips} clip(s)), "
                         f"listed in {out / MISSING_FILENAME}")  # fmt: skip
        lines += [f"skipped {s['clip']}: {s['reason']}" for s in self.skipped[:10]]
        if len(self.skipped) > 10:
            lines.append(f"... {len(self.skipped) - 10} more skip(s) in {out / SKIPPED_FILENAME}")
        lines += [f"note: {n}" for n in self.notes[:10]]
        if self.pairs:
            lines.append(f"test pairs: {self.pairs} in {out / 'test_pairs.json'}")
        return lines


def clip_ids(release: Release) -> dict[str, str]:
    """Release name -> clip folder name (:func:`safe_clip_id`); two names sharing a folder are an error."""
    ids: dict[str, str] = {}
    owner: dict[str, str] = {}
    for clip in release.clips:
        cid = safe_clip_id(clip.name)
        if cid in owner:
            raise InputError(f"{release.manifest}: clips {owner[cid]!r} and {clip.name!r} (entry {clip.index}) "
                             f"would share the folder name {cid!r}")  # fmt: skip
        owner[cid] = clip.name
        ids[clip.name] = cid
    return ids


def _test_pairs(
    manifest_dir: Path, release: Release, ids: dict[str, str], lists: list[Path] | None
) -> list[TestPair]:
    if lists is None:
        folder = manifest_dir if manifest_dir.is_dir() else manifest_dir.parent
        lists = [folder / TEST_LIST_FILENAME] if (folder / TEST_LIST_FILENAME).is_file() else []
    by_name = release.by_name()
    return [pair for path in lists for pair in read_test_list(path, by_name, ids)]


def ingest_release(
    manifest_dir: str | os.PathLike,
    videos_dir: str | os.PathLike,
    out: str | os.PathLike,
    options: IngestOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestSummary:
    """Make the clip folders of the release at ``manifest_dir`` from the videos in ``videos_dir``
    into ``out/clips`` (module docstring); returns the summary. Everything the inputs say is checked
    (manifest, test lists, options) before any video is opened."""
    options = options or IngestOptions()
    manifest_dir, videos_dir, out = Path(manifest_dir), Path(videos_dir), Path(out)
    if (options.poses_dir is None) == (options.estimator is None):
        raise InputError(
            "csg405: give the release's pose files (--poses POSE_DIR) or an estimator (--estimator), one of them"
        )
    if options.poses_dir is not None and not Path(options.poses_dir).is_dir():
        raise InputError(
            f"--poses {options.poses_dir}: not a folder (expected the release's <clip name>.npy files)"
        )
    if options.pose_frame not in POSE_FRAMES:
        raise InputError(f"--pose-frame {options.pose_frame!r}: expected one of {list(POSE_FRAMES)}")
    if not videos_dir.is_dir():
        raise InputError(f"VIDEOS_DIR {videos_dir}: not a folder")
    release = load_release(manifest_dir)
    ids = clip_ids(release)
    pairs = _test_pairs(manifest_dir, release, ids, options.test_lists)
    summary = IngestSummary(clips=len(release.clips), notes=list(release.notes))
    clips_dir = out / CLIPS_DIRNAME
    clips_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(clips_dir)

    by_source: dict[Path, tuple[Source, list[ReleaseClip]]] = {}
    missing: dict[str, int] = {}
    todo = 0
    for clip in release.clips:
        source = find_source(videos_dir, clip)
        if source is None:
            missing[clip.vid] = missing.get(clip.vid, 0) + 1
        elif is_complete_clip(clips_dir / ids[clip.name]):
            summary.done_before += 1
        elif options.limit is not None and todo >= options.limit:
            summary.not_reached += 1
        else:
            by_source.setdefault(source.path, (source, []))[1].append(clip)
            todo += 1
    summary.missing_videos = sorted(missing)
    summary.missing_clips = sum(missing.values())

    if by_source and options.estimator is not None:
        options = _with_estimator(options)
    retried = set()
    for source, clips in by_source.values():
        video = _SourceVideo(source)
        for clip in clips:
            cid = ids[clip.name]
            retried.add(cid)
            try:
                _make_clip(clip, cid, video, clips_dir, options)
                summary.written.append(cid)
                if progress:
                    progress(f"{cid}: written")
            except InputError as err:  # a bad input of this clip: a recorded skip, never a crash of the run
                summary.skipped.append({"clip": cid, "name": clip.name, "vid": clip.vid, "reason": str(err)})
                if progress:
                    progress(f"{cid}: skipped - {err}")
        video.close()

    _write_lines(out / MISSING_FILENAME, summary.missing_videos)
    _write_skips(out / SKIPPED_FILENAME, summary.skipped, retried, clips_dir)
    if pairs:
        write_test_pairs(out, pairs, CLIPS_DIRNAME)
        summary.pairs = len(pairs)
    return summary


def _with_estimator(options: IngestOptions) -> IngestOptions:
    from dataclasses import replace

    from csg_lightning.pose.estimator import PoseEstimator

    if isinstance(options.estimator, PoseEstimator):
        return options
    return replace(options, estimator=options.estimator())


class _SourceVideo:
    """One source file, opened (probe, decoder, audio) on first use; an error opening it is kept and
    raised for each of its clips."""

    def __init__(self, source: Source):
        self.source = source
        self._frames = self._audio = self._error = None

    def frames(self):
        if self._error is not None:
            raise self._error
        if self._frames is None:
            from csg_lightning.preprocess.decode import VideoFrames

            try:
                self._frames = VideoFrames(self.source.path)
            except InputError as err:
                self._error = err
                raise
        return self._frames

    def audio(self) -> np.ndarray:
        if self._audio is None:
            from csg_lightning.io.audio import read_audio

            self._audio = read_audio(
                self.source.path, what="CSG-405 source video", max_seconds=MAX_SOURCE_SECONDS
            )
        return self._audio

    def close(self) -> None:
        self._frames = self._audio = None


def _frame_range(clip: ReleaseClip, start: float, num_frames: int, slack: int, path: Path) -> tuple[int, int]:
    k0 = math.ceil(start * FPS - TIME_EPSILON)
    k1 = math.ceil((start + clip.seconds) * FPS - TIME_EPSILON)
    if k0 >= num_frames:
        raise InputError(f"{path}: the clip starts at {start:.3f} s but the video lasts {num_frames / FPS:.3f} s "
                         f"({num_frames} frames at 25 fps)")  # fmt: skip
    if k1 - num_frames > slack:
        raise InputError(f"{path}: the clip ends at {start + clip.seconds:.3f} s but the video lasts "
                         f"{num_frames / FPS:.3f} s")  # fmt: skip
    return k0, min(k1, num_frames)


def _make_clip(
    clip: ReleaseClip, cid: str, video: _SourceVideo, clips_dir: Path, options: IngestOptions
) -> None:
    frames = video.frames()
    probe = frames.probe
    start, reading = source_start(clip, video.source, options.part_seconds)
    k0, k1 = _frame_range(clip, start, len(frames), options.frame_slack, video.source.path)
    crop = square_crop(clip.crop_box, probe.width, probe.height, OUTPUT_SIZE)

    def cropped_chunks(stop: int):  # uint8 [n, 512, 512, 3] at a time
        for _, chunk in frames.iter_chunks(k0, stop, chunk=options.chunk_frames):
            yield crop.frames(chunk)

    def cropped(stop: int):  # one frame at a time, for write_clip
        for chunk in cropped_chunks(stop):
            yield from chunk

    if options.poses_dir is not None:
        path = find_pose_file(options.poses_dir, clip.name)
        if path is None:
            raise InputError(f"--poses {options.poses_dir}: no pose file {clip.name}.npy for this clip")
        keypoints, scores, pose_info = release_poses(path, crop, options.pose_frame)
        if abs(len(keypoints) - (k1 - k0)) > options.frame_slack:
            raise InputError(f"pose file {path}: {len(keypoints)} frames, but the clip cut from {video.source.path} "
                             f"has {k1 - k0} (more than {options.frame_slack} apart)")  # fmt: skip
        k1 = k0 + min(len(keypoints), k1 - k0)
        keypoints, scores = keypoints[: k1 - k0], scores[: k1 - k0]
    else:
        keypoints, scores = estimated_poses(options.estimator, cropped_chunks(k1), options.batch_frames)
        pose_info = {"source": "estimator", "class_path": type(options.estimator).__module__ + "." +
                     type(options.estimator).__qualname__}  # fmt: skip
    audio = video.audio()[k0 * SAMPLES_PER_FRAME : k1 * SAMPLES_PER_FRAME]
    if len(audio) == 0:
        raise InputError(
            f"{video.source.path}: no audio at {k0 / FPS:.3f}..{k1 / FPS:.3f} s (the audio track is shorter)"
        )
    meta = {
        "speaker_id": clip.vid,
        "dataset": "CSG-405",
        "release_name": clip.name,
        "source": {"video": video.source.path.name, "vid": clip.vid, "part": clip.part,
                   "start_time": clip.start_time, "end_time": clip.end_time, "timeline": reading,
                   "start_seconds": k0 / FPS, "stop_seconds": k1 / FPS, "start_frame": k0, "stop_frame": k1,
                   "width": probe.width, "height": probe.height, "fps": probe.fps},
        "crop_box": {"release": None if clip.crop_box is None else list(clip.crop_box), **crop.as_dict()},
        "poses": pose_info,
        "generator": "csg-data csg405",
    }  # fmt: skip
    write_clip(clips_dir, cid, cropped(k1), audio, keypoints, scores, meta, crf=options.crf)


def _write_lines(path: Path, lines: list[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{line}\n" for line in lines))


def _write_skips(path: Path, skips: list[dict], retried: set[str], clips_dir: Path) -> None:
    old = []
    if path.is_file():
        try:
            old = [s for s in json.loads(path.read_text()) if isinstance(s, dict) and s.get("clip") not in retried
                   and not is_complete_clip(clips_dir / str(s.get("clip")))]  # fmt: skip
        except ValueError:
            old = []  # a damaged record of earlier skips is rebuilt by the runs that retry them
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(old + skips, indent=1) + "\n")
