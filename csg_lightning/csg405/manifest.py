"""Reading the CSG-405 release's clip lists: ``all_with_crop.json`` and ``all.txt``, validated.

``all_with_crop.json`` is a JSON list with one object per clip::

    {"vid": "<YouTube id>", "part": 0, "start_time": "00:01:02.500", "end_time": "00:01:12.500",
     "crop_box": [x1, y1, x2, y2]}          # or [] (no crop: the whole frame)

``vid`` names the source video (``download_videos.py`` fetches ``youtube.com/watch?v=<vid>``), ``part``
the hour-long piece of it the clip lies in (the download script cuts every video into
``{vid}_{part}`` pieces of 3600 s; see :mod:`.ingest` for how times are placed), ``start_time`` /
``end_time`` ffmpeg time strings, ``crop_box`` a rectangle in source pixels, x2 and y2 exclusive
(the clip script crops ``x2 - x1`` by ``y2 - y1`` at ``(x1, y1)``); it need not be square. Other keys
(e.g. ``if_download``) are ignored. ``all.txt`` lists every clip's file name, ``<name>.mp4``, one a
line (:mod:`.clip_names`).

Every problem is an :class:`~csg_lightning.io.validation.InputError` naming the file, the entry
(its 0-based position and, when known, its clip name) and the field, with what was expected.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from csg_lightning.csg405.clip_names import clip_name, parse_time, time_text
from csg_lightning.io.validation import InputError, MissingInputError, check_input_file

MANIFEST_FILENAME = "all_with_crop.json"
NAMES_FILENAME = "all.txt"
REQUIRED_KEYS = ("vid", "part", "start_time", "end_time", "crop_box")


@dataclass(frozen=True)
class ReleaseClip:
    """One entry of ``all_with_crop.json``.

    index: 0-based position in the file. name: the release's clip name. start_time / end_time: the
    strings as given; start / end: the same in seconds (relative to the part, see :mod:`.ingest`).
    crop_box: (x1, y1, x2, y2) source pixels, x2 / y2 exclusive, or None for an empty crop_box.
    """

    index: int
    name: str
    vid: str
    part: int
    start_time: str
    end_time: str
    start: float
    end: float
    crop_box: tuple[float, float, float, float] | None

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Release:
    """The clips of a release (manifest order) and what ``all.txt`` says about them.

    listed: the names in ``all.txt`` (None when there is none); notes: readable remarks (duplicates,
    names only in one of the two files) for the summary.
    """

    manifest: Path
    clips: list[ReleaseClip]
    listed: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    def by_name(self) -> dict[str, ReleaseClip]:
        return {c.name: c for c in self.clips}


def _where(path: Path, index: int, entry) -> str:
    name = ""
    if isinstance(entry, dict):
        try:
            name = f" ({clip_name(entry['vid'], entry['part'], entry['start_time'], entry['end_time'])})"
        except Exception:  # the name itself is what is broken: the error says which field
            name = f" (vid {entry.get('vid')!r})" if "vid" in entry else ""
    return f"{path}: entry {index}{name}"


def parse_crop_box(value, where: str) -> tuple[float, float, float, float] | None:
    """``[x1, y1, x2, y2]`` -> a tuple of floats; ``[]``, ``None`` or ``""`` -> None (no crop)."""
    if value is None or (isinstance(value, (list, str)) and len(value) == 0):
        return None
    expected = "expected [x1, y1, x2, y2] (pixels, x2 > x1, y2 > y1) or [] for the whole frame"
    if not isinstance(value, list) or len(value) != 4:
        raise InputError(f"{where}: field 'crop_box' is {value!r}, {expected}")
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in value):
        raise InputError(f"{where}: field 'crop_box' {value!r} holds a non-number, {expected}")
    x1, y1, x2, y2 = (float(v) for v in value)
    if x2 <= x1 or y2 <= y1:
        raise InputError(f"{where}: field 'crop_box' {value!r} is empty or inverted, {expected}")
    return x1, y1, x2, y2


def _parse_entry(path: Path, index: int, entry) -> ReleaseClip:
    where = _where(path, index, entry)
    if not isinstance(entry, dict):
        raise InputError(
            f"{where}: expected an object with keys {list(REQUIRED_KEYS)}, got {type(entry).__name__}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in entry]
    if missing:
        raise InputError(f"{where}: missing field(s) {missing}; expected {list(REQUIRED_KEYS)}")
    vid = entry["vid"]
    if not isinstance(vid, str) or not vid.strip() or vid != vid.strip() or "/" in vid or "\\" in vid:
        raise InputError(
            f"{where}: field 'vid' is {vid!r}, expected a video id (a non-empty name, no slashes)"
        )
    part = entry["part"]
    if isinstance(part, str) and part.isdigit():
        part = int(part)
    if isinstance(part, bool) or not isinstance(part, int) or part < 0:
        raise InputError(f"{where}: field 'part' is {entry['part']!r}, expected an integer >= 0")
    times = {}
    for key in ("start_time", "end_time"):
        try:
            times[key] = parse_time(entry[key])
        except ValueError as err:
            raise InputError(f"{where}: field '{key}': {err}") from None
    if times["end_time"] <= times["start_time"]:
        raise InputError(
            f"{where}: field 'end_time' {entry['end_time']!r} is not after 'start_time' {entry['start_time']!r}"
        )
    return ReleaseClip(
        index=index, name=clip_name(vid, entry["part"], entry["start_time"], entry["end_time"]),
        vid=vid, part=part, start_time=time_text(entry["start_time"]), end_time=time_text(entry["end_time"]),
        start=times["start_time"], end=times["end_time"], crop_box=parse_crop_box(entry["crop_box"], where),
    )  # fmt: skip


def read_manifest(path: str | os.PathLike) -> tuple[list[ReleaseClip], list[str]]:
    """``all_with_crop.json`` -> (clips in file order, notes). An exact repeat of an entry is dropped
    with a note; two different entries with one name are an error."""
    path = check_input_file(path, "CSG-405 manifest")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, list):
        raise InputError(
            f"{path}: expected a JSON list of clip objects {list(REQUIRED_KEYS)}, got {type(data).__name__}"
        )
    if not data:
        raise InputError(f"{path}: the list is empty, expected at least one clip")
    clips: list[ReleaseClip] = []
    seen: dict[str, ReleaseClip] = {}
    notes = []
    for index, entry in enumerate(data):
        clip = _parse_entry(path, index, entry)
        first = seen.get(clip.name)
        if first is not None:
            if (first.crop_box, first.vid, first.part) != (clip.crop_box, clip.vid, clip.part):
                raise InputError(
                    f"{path}: entries {first.index} and {index} are both named {clip.name!r} but differ "
                    f"(crop_box {list(first.crop_box or [])} vs {list(clip.crop_box or [])}); expected one entry per clip"
                )
            notes.append(f"entry {index} repeats entry {first.index} ({clip.name}): dropped")
            continue
        seen[clip.name] = clip
        clips.append(clip)
    return clips, notes


def read_names(path: str | os.PathLike) -> list[str]:
    """``all.txt`` -> clip names (``.mp4`` removed), blank lines skipped; other suffixes are an error."""
    path = check_input_file(path, "CSG-405 name list")
    names = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text:
            continue
        if text.lower().endswith(".mp4"):
            text = text[:-4]
        if not text or any(c in text for c in " \t/\\.:"):
            raise InputError(
                f"{path}: line {number} is {line!r}, expected one clip file name '{{vid}}_{{part}}_{{start}}_{{end}}.mp4'"
            )
        names.append(text)
    return names


def load_release(manifest: str | os.PathLike) -> Release:
    """The release's lists from a folder holding ``all_with_crop.json`` (and optionally ``all.txt``),
    or from the JSON file itself. ``all.txt`` is cross-checked: its names missing from the manifest,
    and manifest clips it does not list, are notes (the manifest is what is ingested)."""
    manifest = Path(manifest)
    folder = manifest if manifest.is_dir() else manifest.parent
    json_path = manifest / MANIFEST_FILENAME if manifest.is_dir() else manifest
    if not json_path.exists():
        raise MissingInputError(
            f"CSG-405 manifest {json_path}: not found (MANIFEST_DIR must hold the release's {MANIFEST_FILENAME})"
        )
    clips, notes = read_manifest(json_path)
    release = Release(json_path, clips, notes=notes)
    txt = folder / NAMES_FILENAME
    if txt.is_file():
        release.listed = read_names(txt)
        known = {c.name for c in clips}
        listed = set(release.listed)
        extra = [n for n in release.listed if n not in known]
        unlisted = [c.name for c in clips if c.name not in listed]
        if len(listed) != len(release.listed):
            notes.append(f"{txt}: {len(release.listed) - len(listed)} repeated name(s)")
        if extra:
            notes.append(f"{txt}: {len(extra)} name(s) not in {MANIFEST_FILENAME} (no crop box; not ingested), "
                         f"first {extra[0]}")  # fmt: skip
        if unlisted:
            notes.append(
                f"{txt}: does not list {len(unlisted)} clip(s) of {MANIFEST_FILENAME}, first {unlisted[0]}"
            )
    return release
