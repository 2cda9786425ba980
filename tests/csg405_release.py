"""A miniature CSG-405 release for the ingest tests, made of tiny real mp4 files with known answers.

Layout written by :func:`make_release` (the release's own file names)::

    root/release/all_with_crop.json   4 clips over 2 videos (see CLIPS)
    root/release/all.txt              <name>.mp4 per clip
    root/release/test.txt             "target ref" / "target" lines (same- and cross-identity)
    root/videos/<VID_A>.mp4           160 x 96, 25 fps, 3 s, a 440 Hz tone; <VID_B> is missing
    root/poses/<name>.npy             (T, 2 persons, 134, 3), neck first, release-clip pixels

Source frame ``i`` of VID_A shows, on a grey (60) background, its index in two blocks (``TIME_BLOCKS``:
``20 + 8 * (i % 25)`` and ``20 + 60 * (i // 25)``, steps far above the codec's error) and a white 7 x 7 marker centred on :data:`MARKER` (source pixels). In each pose file
person 0 (the larger) has CSG-405 point 10 (the left wrist; our index 9) on the marker, in the
pixels of the release's 512 x 512 clip of that clip (the release's framing: the longer side of the
crop rectangle scaled to 512, the shorter to ``int(512 * short / long)`` after a bar of
``(512 - that) // 2``); its other points are spread around it, person 1 is a small cluster.

:class:`MarkerEstimator` is a real :class:`PoseEstimator` (buildable from YAML as
``csg405_release.MarkerEstimator``) that finds the marker: one person, every point on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from csg_lightning.io.mp4 import write_mp4
from csg_lightning.pose.estimator import PersonPose, PoseEstimator

VID_A = "a_B-3xY_9"  # YouTube ids may hold '_' and '-'
VID_B = "missingVid1"
WIDTH, HEIGHT, SECONDS, FPS = 160, 96, 3.0, 25
MARKER = (80, 48)  # source pixel (x, y) of the marker's centre
MARKER_HALF = 3
TIME_BLOCKS = ((slice(24, 40), slice(48, 60)), (slice(24, 40), slice(60, 72)))  # (rows, columns) each
TIME_CENTRES = ((53.5, 31.5), (65.5, 31.5))  # their centres, source pixels (x, y)
BACKGROUND = 60
PART_SECONDS = 1.0  # the tests' length of a release "part" (the release's is 3600 s)
WRIST = 10  # CSG-405 index of the left wrist (ours 9)


@dataclass(frozen=True)
class MiniClip:
    name: str
    vid: str
    part: int
    start_time: str
    end_time: str
    crop_box: list
    pose_frames: int  # frames in its pose file
    k0: int  # its first 25 fps frame in the source (with PART_SECONDS)
    frames: int  # frames of the clip folder


def _name(vid, part, start, end):
    return (
        f"{vid}_{part}_{start.replace(':', '_').replace('.', '_')}_{end.replace(':', '_').replace('.', '_')}"
    )


CLIPS = [
    # a rectangle (80 x 64): square box (40, 8, 80); frames 10..34
    MiniClip(_name(VID_A, 0, "00:00:00.40", "00:00:01.40"), VID_A, 0, "00:00:00.40", "00:00:01.40",
             [40, 16, 120, 80], 25, 10, 25),
    # empty crop_box: the whole 160 x 96 frame, box (0, -32, 160); frames 30..49; pose file one frame longer
    MiniClip(_name(VID_A, 0, "0:00:01.2", "0:00:02.00"), VID_A, 0, "0:00:01.2", "0:00:02.00", [], 21, 30, 20),
    # part 1 with times relative to it: source 1.48 .. 2.28 s -> frames 37..56
    MiniClip(_name(VID_A, 1, "00:00.48", "00:01.28"), VID_A, 1, "00:00.48", "00:01.28",
             [30, 10, 130, 90], 20, 37, 20),
    # its video is not downloaded
    MiniClip(_name(VID_B, 0, "00:00:01.00", "00:00:02.00"), VID_B, 0, "00:00:01.00", "00:00:02.00",
             [0, 0, 64, 64], 25, 25, 25),
]  # fmt: skip
# Where the marker lands in our 512 x 512 crops (crop.py's pixel-centre convention, by hand):
# clip 0: x inside the box: 6.4 * 40 + 2.7 = 258.7; y: box hangs 8 px over the cut, output rows
#   51..461 hold its 64 rows: scale 410 / 64, offset 51 + 0.5 * 410 / 64 - 0.5.
# clip 1: x 3.2 * 80 + 1.1 = 257.1; y: rows 102..410 hold 96 rows: scale 308 / 96, offset 102 + 0.5 * 308 / 96 - 0.5.
EXPECTED_MARKER = {
    CLIPS[0].name: (258.7, 410 / 64 * 32 + 51 + 0.5 * 410 / 64 - 0.5),
    CLIPS[1].name: (257.1, 308 / 96 * 48 + 102 + 0.5 * 308 / 96 - 0.5),
}
TEST_LINES = [
    f"{CLIPS[0].name} {CLIPS[1].name}",  # same identity
    f"{CLIPS[0].name}.mp4 {CLIPS[3].name}.mp4",  # cross identity (the reference's video is missing)
    f"{CLIPS[2].name}",  # its own reference
]


def source_frames() -> np.ndarray:
    """VID_A's frames uint8 [75, 96, 160, 3] (module docstring)."""
    n = int(SECONDS * FPS)
    frames = np.full((n, HEIGHT, WIDTH, 3), BACKGROUND, np.uint8)
    for i in range(n):
        frames[i][TIME_BLOCKS[0]] = 20 + 8 * (i % 25)
        frames[i][TIME_BLOCKS[1]] = 20 + 60 * (i // 25)
    x, y = MARKER
    frames[:, y - MARKER_HALF : y + MARKER_HALF + 1, x - MARKER_HALF : x + MARKER_HALF + 1] = 255
    return frames


def source_audio() -> np.ndarray:
    t = np.arange(int(SECONDS * 16000)) / 16000
    return (0.4 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def release_pixels(point, rect) -> np.ndarray:
    """Source pixel -> the release's 512 x 512 clip pixel (its framing; pixel centres)."""
    x1, y1, x2, y2 = rect
    sides, long = (x2 - x1, y2 - y1), max(x2 - x1, y2 - y1)
    out = []
    for v, start, side in zip(point, (x1, y1), sides, strict=True):
        scaled = 512 if side == long else int(512 * side / long)
        out.append((v - start + 0.5) * scaled / side + (512 - scaled) // 2 - 0.5)
    return np.array(out)


def pose_array(clip: MiniClip, seed: int = 0) -> np.ndarray:
    """The clip's release pose file content: float64 (T, 2, 134, 3)."""
    rng = np.random.default_rng(seed)
    rect = clip.crop_box or [0, 0, WIDTH, HEIGHT]
    marker = release_pixels(MARKER, rect)
    arr = np.zeros((clip.pose_frames, 2, 134, 3))
    arr[:, 0, :, :2] = marker + rng.uniform(-60, 60, (clip.pose_frames, 134, 2))
    arr[:, 0, WRIST, :2] = marker
    arr[:, 1, :, :2] = marker + rng.uniform(-5, 5, (clip.pose_frames, 134, 2))
    arr[..., 2] = 0.9
    return arr


def make_release(root: Path) -> dict[str, Path]:
    """Write the miniature release under ``root``; returns its folders (release, videos, poses)."""
    root = Path(root)
    dirs = {k: root / k for k in ("release", "videos", "poses")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    entries = [{"vid": c.vid, "part": c.part, "start_time": c.start_time, "end_time": c.end_time,
                "crop_box": c.crop_box, "if_download": c.vid == VID_A} for c in CLIPS]  # fmt: skip
    (dirs["release"] / "all_with_crop.json").write_text(json.dumps(entries, indent=2))
    (dirs["release"] / "all.txt").write_text("".join(f"{c.name}.mp4\n" for c in CLIPS))
    (dirs["release"] / "test.txt").write_text("\n".join(TEST_LINES) + "\n")
    write_mp4(dirs["videos"] / f"{VID_A}.mp4", source_frames(), fps=FPS, audio=source_audio(), crf=12)
    for i, clip in enumerate(CLIPS):
        np.save(dirs["poses"] / f"{clip.name}.npy", pose_array(clip, seed=i))
    return dirs


def marker_centroid(frame: np.ndarray, threshold: int = 240) -> np.ndarray:
    """(x, y) pixel-centre centroid of the white marker in an RGB frame, weighted by brightness above threshold."""
    level = frame.astype(np.float64).mean(-1) - threshold
    weight = np.where(level > 0, level, 0.0)
    if weight.sum() == 0:
        raise ValueError("no marker in this frame")
    ys, xs = np.indices(weight.shape)
    return np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()


def time_code(frame: np.ndarray, centres) -> int:
    """The source frame index shown by the time blocks, read in 9 x 9 windows at ``centres`` (output (x, y))."""
    levels = [
        frame[int(y) - 4 : int(y) + 5, int(x) - 4 : int(x) + 5].astype(np.float64).mean() for x, y in centres
    ]
    return int(round((levels[0] - 20) / 8)) + 25 * int(round((levels[1] - 20) / 60))


class MarkerEstimator(PoseEstimator):
    """Finds the white marker: one person with every point on it (score 0.9), its box the marker's."""

    def __init__(self, threshold: int = 240):
        self.threshold = threshold

    def estimate(self, frames: list[np.ndarray]) -> list[list[PersonPose]]:
        out = []
        for frame in frames:
            try:
                x, y = marker_centroid(frame, self.threshold)
            except ValueError:
                out.append([])
                continue
            kp = np.tile(np.array([x, y], np.float32), (134, 1))
            box = np.array([x - 10, y - 10, x + 10, y + 10], np.float32)
            out.append([PersonPose(kp, np.full(134, 0.9, np.float32), box, 0.9)])
        return out
