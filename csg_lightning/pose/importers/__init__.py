"""Importers for pose files people already have -> the skeleton ``.npz`` the project reads.

=================  =====================================================  ==============================
format             what                                                   module (index map inside)
=================  =====================================================  ==============================
``dwpose134``      DWPose ``Wholebody`` 134-point arrays (OpenPose-18     :mod:`.dwpose134`
                   body with the neck at 1, then feet, face, hands)
``dwpose-dict``    DWPose / ControlNet / MimicMotion pose dicts saved     :mod:`.dwpose_dict`
                   per frame with ``np.save`` (canvas-normalised)
``csg405``         CSG-405 per-clip ``(T, persons, 134, 3)``, neck first  :mod:`.csg405`
``csg405-local``   CSG-405 ``pose_rescaled_local_smooth`` (neck global,   :mod:`.csg405`
                   body / face / hands relative to neck / nose / wrists)
=================  =====================================================  ==============================

:func:`import_poses` reads a file, or a folder of per-frame files (sorted by name, digit runs compared
as numbers), and applies the shared rules of :mod:`.common` (missing points, score range, coordinate
units, person choice). In a folder, a file that cannot be read becomes an empty frame (all scores 0,
so later frames keep their time) and is listed in the summary's ``skipped`` (``strict=True``: an
error instead). :func:`write_imported` writes the result atomically: ``keypoints`` float32
[T, 134, 2] pixels, ``scores`` float32 [T, 134], ``fps``, plus ``person`` [T] (chosen index, -1 for an
empty frame) and ``summary`` (JSON text) - what ``make sample-skeleton REF=...`` reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from csg_lightning.io.atomic import atomic_path
from csg_lightning.io.validation import InputError, MissingInputError
from csg_lightning.pose.importers import csg405, dwpose134, dwpose_dict
from csg_lightning.pose.importers.common import (
    COORD_MODES,
    ImportedPoses,
    ImportOptions,
    PoseFormatError,
    RawPoses,
    finish,
    frame_files,
)


@dataclass(frozen=True)
class PoseFormat:
    name: str
    help: str
    extensions: tuple[str, ...]
    read_file: Callable[[Path, ImportOptions], RawPoses]
    # (keypoints [P, 134, 2], scores [P, 134], notes) of one per-frame file; None: no folders
    read_frame: Callable[[Path, ImportOptions], tuple[np.ndarray, np.ndarray, list[str]]] | None
    minus_one_missing: bool
    default_coords: str = "auto"


FORMATS: dict[str, PoseFormat] = {
    f.name: f
    for f in (
        PoseFormat(dwpose134.NAME, "DWPose 134-point arrays [T,134,2|3], [T,P,134,2|3], [134,2|3]",
                   dwpose134.EXTENSIONS, dwpose134.read_file, dwpose134.read_frame, True),
        PoseFormat(dwpose_dict.NAME, "DWPose/ControlNet pose dicts saved per frame with np.save (normalised)",
                   dwpose_dict.EXTENSIONS, dwpose_dict.read_file, dwpose_dict.read_frame, True, "unit"),
        PoseFormat(csg405.NAME, "CSG-405 per-clip (T, persons, 134, 3), neck first, global",
                   csg405.EXTENSIONS, csg405.read_file, None, False),
        PoseFormat(csg405.LOCAL_NAME, "CSG-405 pose_rescaled_local_smooth (local form), inverted to global",
                   csg405.EXTENSIONS, csg405.read_local_file, None, False),
    )
}  # fmt: skip

__all__ = [
    "COORD_MODES", "FORMATS", "ImportOptions", "ImportedPoses", "PoseFormatError", "import_poses",
    "write_imported",
]  # fmt: skip


def import_poses(src: str | os.PathLike, fmt: str, options: ImportOptions | None = None) -> ImportedPoses:
    """Read ``src`` (a file, or a folder of per-frame files) in format ``fmt`` -> :class:`ImportedPoses`.

    Raises :class:`~csg_lightning.io.validation.InputError` naming the file and what was expected.
    """
    options = options or ImportOptions()
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: expected one of {sorted(FORMATS)}")
    pose_format = FORMATS[fmt]
    src = Path(src)
    if not src.exists():
        raise MissingInputError(f"{fmt} source {src}: not found")
    if options.scores_path is not None and (fmt != dwpose134.NAME or src.is_dir()):
        raise InputError(
            f"--scores {options.scores_path}: only for one {dwpose134.NAME} file of [..., 134, 2]"
        )
    if (options.face_scale, options.mouth_scale) != (1.0, 1.0) and fmt != csg405.LOCAL_NAME:
        raise InputError(f"--face-scale / --mouth-scale: only for --format {csg405.LOCAL_NAME}")
    if not src.is_dir():
        raw = pose_format.read_file(src, options)
        return finish(raw, options, fmt, src, {"skipped": []})
    if pose_format.read_frame is None:
        raise InputError(f"{fmt} source {src}: is a folder, but {fmt} files hold whole clips; give one file")
    files, ignored = frame_files(src, pose_format.extensions)
    if not files:
        raise PoseFormatError(
            f"{fmt} source {src}: the folder holds no {'/'.join(pose_format.extensions)} files"
            + (f" ({len(ignored)} other entries ignored)" if ignored else "")
        )
    frames, skipped, notes = [], [], []
    for t, path in enumerate(files):
        try:
            kp, sc, frame_notes = pose_format.read_frame(path, options)
            frames.append((kp, sc))
            notes += [f"frame {t} {path.name}: {n}" for n in frame_notes]
        except InputError as err:
            if options.strict:
                raise
            skipped.append({"frame": t, "file": path.name, "error": str(err)})
            frames.append((np.zeros((0, 134, 2)), np.zeros((0, 134))))
    if len(skipped) == len(files):
        raise PoseFormatError(f"{fmt} source {src}: none of its {len(files)} files could be read; first: "
                              f"{skipped[0]['error']}")  # fmt: skip
    raw = RawPoses(frames, clip_persons=False, minus_one_missing=pose_format.minus_one_missing,
                   default_coords=pose_format.default_coords, notes=notes)  # fmt: skip
    return finish(raw, options, fmt, src, {"skipped": skipped, "ignored_files": ignored, "files": len(files)})


def write_imported(out: str | os.PathLike, poses: ImportedPoses) -> Path:
    """Write ``poses`` to ``out`` (an ``.npz``) atomically; returns the path."""
    out = Path(out)
    if out.suffix.lower() != ".npz":
        raise InputError(f"--out {out}: expected a path ending in .npz")
    if out.is_dir():
        raise InputError(f"--out {out}: is a directory, expected an .npz file path")
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            keypoints=poses.keypoints.astype(np.float32),
            scores=poses.scores.astype(np.float32),
            fps=np.int64(poses.fps),
            person=poses.person.astype(np.int64),
            summary=np.array(json.dumps(poses.summary)),
        )
    return out


def format_summary(poses: ImportedPoses) -> list[str]:
    """Readable lines of ``poses.summary`` (what the CLI prints)."""
    s = poses.summary
    coords = s["coords"]
    size = f" x {coords['width']:g} x {coords['height']:g}" if coords["mode"] != "pixels" else ""
    lines = [
        f"{s['frames']} frame(s) at {s['fps']} fps from {s['format']} {s['source']}",
        f"coordinates: {coords['mode']}{size} ({coords['rule']})",
        f"person: {s['person']['rule']} (persons per frame: {s['person']['persons_per_frame'][0]}"
        f"-{s['person']['persons_per_frame'][1]})",
    ]
    if s.get("skipped"):
        lines.append(f"skipped {len(s['skipped'])} unreadable file(s) (kept as empty frames):")
        lines += [f"  frame {e['frame']} {e['file']}: {e['error']}" for e in s["skipped"]]
    if s["empty_frames"]:
        shown = ", ".join(map(str, s["empty_frames"][:20])) + (" ..." if len(s["empty_frames"]) > 20 else "")
        lines.append(f"empty frames (no person, all scores 0): {len(s['empty_frames'])}: {shown}")
        if s["empty_frames"][0] == 0:
            lines.append(
                "warning: frame 0 is empty; make sample-skeleton REF=... uses frame 0 as the reference"
            )
    lines += [f"  {note}" for note in s["empty_notes"][:10]]
    if s.get("ignored_files"):
        lines.append(
            f"ignored {len(s['ignored_files'])} other folder entr(ies): {', '.join(s['ignored_files'][:5])}"
        )
    if s["scores_clipped_to_1"]:
        lines.append(f"scores above 1 clipped to 1: {s['scores_clipped_to_1']}")
    lines += [f"note: {n}" for n in s["notes"][:10]]
    if len(s["notes"]) > 10:
        lines.append(f"note: ... {len(s['notes']) - 10} more in the summary")
    return lines
