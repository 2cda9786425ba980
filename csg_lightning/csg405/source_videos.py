"""Finding a CSG-405 clip's source video in VIDEOS_DIR and placing its times on that file.

A source is ``VIDEOS_DIR/{vid}.<ext>`` (the whole video) or ``VIDEOS_DIR/{vid}_{part}.<ext>`` (the
hour-long piece the release's ``download_videos.py`` cuts: piece ``part`` starts at
``part * 3600`` s), ``<ext>`` one of :data:`VIDEO_SUFFIXES`; the whole video is preferred.

Which timeline do ``start_time`` / ``end_time`` use? The release does not say: its download script
cuts pieces (hence ``part``), its clip script reads a whole ``{vid}.mp4``. A piece lasts at most
:data:`PART_SECONDS`, so the two readings cannot be confused for ``part >= 1``: a start below
``part * 3600`` s can only be relative to the piece, a start at or after it only absolute. For
``part = 0`` they coincide. :func:`source_start` applies this rule and says which reading it took.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from csg_lightning.csg405.manifest import ReleaseClip

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm")
PART_SECONDS = 3600.0  # length of the pieces the release's download script cuts


@dataclass(frozen=True)
class Source:
    """A clip's source file. piece: the file is the ``{vid}_{part}`` piece (else the whole video)."""

    path: Path
    piece: bool


def find_source(videos_dir: str | os.PathLike, clip: ReleaseClip) -> Source | None:
    """The file holding ``clip`` (None when VIDEOS_DIR has none)."""
    videos_dir = Path(videos_dir)
    for stem, piece in ((clip.vid, False), (f"{clip.vid}_{clip.part}", True)):
        for suffix in VIDEO_SUFFIXES:
            for name in (stem + suffix, stem + suffix.upper()):
                path = videos_dir / name
                if path.is_file():
                    return Source(path, piece)
    return None


def source_start(clip: ReleaseClip, source: Source, part_seconds: float = PART_SECONDS) -> tuple[float, str]:
    """(seconds on the source file's timeline where the clip starts, which reading was taken)."""
    piece_start = clip.part * part_seconds
    absolute = clip.part > 0 and clip.start >= piece_start
    if source.piece:
        if absolute:
            return (
                clip.start - piece_start,
                f"absolute time, minus part {clip.part} x {part_seconds:g} s (piece file)",
            )
        return clip.start, "relative to the piece (piece file)"
    if clip.part > 0 and not absolute:
        return (
            clip.start + piece_start,
            f"relative to part {clip.part}: plus {clip.part} x {part_seconds:g} s",
        )
    return clip.start, "absolute time" if clip.part > 0 else "part 0: the video's own time"
