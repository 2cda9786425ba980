"""CSG-405 clip names and time stamps, as the release forms them.

A release clip is named ``{vid}_{part}_{start}_{end}`` where ``start`` / ``end`` are the manifest's
time strings with every ``:`` and ``.`` replaced by ``_``; ``all.txt`` lists these names with
``.mp4``, the pose archive holds ``<name>.npy`` and the test lists use the bare names. Example:
vid ``abc-DEF_123``, part 0, ``00:01:02.500`` .. ``00:01:12.500`` ->
``abc-DEF_123_0_00_01_02_500_00_01_12_500``.

YouTube ids may contain ``_`` and ``-``, so a name cannot be split back into its fields reliably:
look names up in the manifest instead (:func:`csg_lightning.csg405.manifest.clips_by_name`).

Time strings are what ffmpeg's ``-ss`` / ``-to`` take (the release's clip script passes them
through): ``[[HH:]MM:]SS[.fff]``. A JSON number is accepted too (seconds).
"""

from __future__ import annotations

import math
import re

_TIME = re.compile(r"^\s*(?:(\d+):)?(?:(\d+):)?(\d+(?:\.\d*)?|\.\d+)\s*$")


def time_text(value: str | int | float) -> str:
    """The time as the release writes it into names: strings unchanged, numbers with ``str()``."""
    return value if isinstance(value, str) else str(value)


def clip_name(vid: str, part: int | str, start_time: str | float, end_time: str | float) -> str:
    """``{vid}_{part}_{start}_{end}`` with ``:`` and ``.`` of the times replaced by ``_``."""
    clean = [re.sub(r"[:.]", "_", time_text(t)) for t in (start_time, end_time)]
    return f"{vid}_{part}_{clean[0]}_{clean[1]}"


def parse_time(value: str | int | float) -> float:
    """Seconds of ``[[HH:]MM:]SS[.fff]`` (or a number); ValueError for anything else.

    Minutes and seconds of a colon form must be < 60 (``01:75`` is a typo, not 135 s).
    """
    if isinstance(value, bool):
        raise ValueError(f"time {value!r}: expected 'HH:MM:SS.fff' or seconds")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        match = _TIME.match(value)
        if not match:
            raise ValueError(f"time {value!r}: expected 'HH:MM:SS.fff', 'MM:SS.fff' or seconds")
        first, second, secs = match.groups()
        hours, minutes = (first, second) if second is not None else (None, first)
        seconds = float(secs)
        if minutes is not None:
            if seconds >= 60 or (hours is not None and int(minutes) >= 60):
                raise ValueError(f"time {value!r}: minutes and seconds must be below 60")
            seconds += 60 * int(minutes) + 3600 * int(hours or 0)
    else:
        raise ValueError(f"time {value!r}: expected 'HH:MM:SS.fff' or seconds, got {type(value).__name__}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"time {value!r}: expected a finite time >= 0")
    return seconds
