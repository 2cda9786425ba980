"""The contact sheet of a preprocessing run: one tile per segment, kept and rejected side by side.

Tiles are the thumbnails the pipeline writes (``OUT/thumbs/<segment_id>.jpg``: the source frame in
the middle of the segment with the speaker's skeleton drawn by :func:`draw_thumbnail`). Each tile gets
a green frame ("kept") or a red one ("rejected: <rules>") and a label with the clip id (or segment
id) and the segment's time in the source video. Kept tiles come first, then rejected ones; each
section shows at most ``max_tiles`` tiles, sampled evenly, and its header says how many are shown.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from csg_lightning.io.atomic import atomic_path
from csg_lightning.skeleton.drawing import draw_pose

KEPT_COLOUR = (0, 200, 0)  # RGB of a kept tile's frame
REJECTED_COLOUR = (220, 0, 0)  # RGB of a rejected tile's frame
BACKGROUND = (32, 32, 32)
FRAME = 4  # px of the coloured frame around a tile
GAP = 6  # px between tiles
LINE = 14  # px per label line
LABEL_LINES = 3
HEADER = 30  # px of a section header
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def draw_thumbnail(frame_rgb: np.ndarray, keypoints, scores, size: int = 192) -> np.ndarray:
    """A frame [H, W, 3] uint8 shrunk so its long side is ``size`` px, with the skeleton drawn over it.

    keypoints [134, 2] are pixels of ``frame_rgb``, scores [134] in [0, 1]. The skeleton is drawn by
    :func:`~csg_lightning.skeleton.drawing.draw_pose` (listed OpenPose colours) on a black canvas
    of the thumbnail's size; its non-black pixels replace the frame's. Returns uint8 [h, w, 3].
    """
    frame = np.asarray(frame_rgb)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(
            f"draw_thumbnail: expected an RGB uint8 [H, W, 3] frame, got {frame.dtype} {frame.shape}"
        )
    height, width = frame.shape[:2]
    factor = size / max(height, width)
    h, w = max(1, round(height * factor)), max(1, round(width * factor))
    small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
    pose = draw_pose(keypoints, scores, width, height, out_size=(h, w), canvas_size=None, swap_rb=False)
    drawn = pose.max(axis=-1) > 0
    small[drawn] = pose[drawn]
    return small


@dataclass(frozen=True)
class ContactSheet:
    """What a written sheet shows: its path, (width, height) px, and tiles shown / segments per section."""

    path: Path
    size: tuple[int, int]
    kept_total: int
    kept_shown: int
    rejected_total: int
    rejected_shown: int


def sample_evenly(items: list, limit: int) -> list:
    """At most ``limit`` items spread evenly over ``items`` (first and last included), in order."""
    if len(items) <= limit:
        return list(items)
    if limit <= 1:
        return list(items[:limit])
    picks = np.unique(np.round(np.linspace(0, len(items) - 1, limit)).astype(int))
    return [items[i] for i in picks]


def _segments(records: list[dict], kept: bool) -> list[dict]:
    out = []
    for record in records:
        if record.get("status") != "done":
            continue
        out += [seg for seg in record.get("segments", []) if bool(seg["kept"]) == kept]
    return out


def _fit_text(text: str, width: int, scale: float) -> str:
    if cv2.getTextSize(text, _FONT, scale, 1)[0][0] <= width:
        return text
    while text and cv2.getTextSize(text + "..", _FONT, scale, 1)[0][0] > width:
        text = text[:-1]
    return text + ".."


def _label(seg: dict) -> list[str]:
    status = "kept" if seg["kept"] else "rejected: " + ", ".join(seg.get("rejected_by") or ["?"])
    name = seg.get("clip_id") or seg["segment_id"]
    start = seg.get("start_seconds", seg["start"] / 25)
    stop = seg.get("stop_seconds", seg["stop"] / 25)
    return [status, str(name), f"{start:.2f}-{stop:.2f} s"]


def _tile(seg: dict, out_dir: Path, thumb: int) -> np.ndarray:
    """One tile [thumb + 2*FRAME + label, thumb + 2*FRAME, 3]: the letterboxed thumbnail, frame, label."""
    cell_w = thumb + 2 * FRAME
    tile = np.empty((cell_w + LABEL_LINES * LINE, cell_w, 3), np.uint8)
    tile[:] = BACKGROUND
    tile[:cell_w] = KEPT_COLOUR if seg["kept"] else REJECTED_COLOUR
    inner = np.zeros((thumb, thumb, 3), np.uint8)
    image = None
    if seg.get("thumbnail"):
        bgr = cv2.imread(str(out_dir / seg["thumbnail"]), cv2.IMREAD_COLOR)
        image = None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if image is None:
        inner[:] = 90
        cv2.putText(inner, "no thumbnail", (4, thumb // 2), _FONT, 0.35, (230, 230, 230), 1, cv2.LINE_AA)
    else:
        factor = thumb / max(image.shape[:2])
        h, w = max(1, round(image.shape[0] * factor)), max(1, round(image.shape[1] * factor))
        image = cv2.resize(image, (min(w, thumb), min(h, thumb)), interpolation=cv2.INTER_AREA)
        y, x = (thumb - image.shape[0]) // 2, (thumb - image.shape[1]) // 2
        inner[y : y + image.shape[0], x : x + image.shape[1]] = image
    tile[FRAME : FRAME + thumb, FRAME : FRAME + thumb] = inner
    for k, text in enumerate(_label(seg)):
        cv2.putText(tile, _fit_text(text, cell_w - 4, 0.38), (2, cell_w + (k + 1) * LINE - 3), _FONT, 0.38,
                    (235, 235, 235), 1, cv2.LINE_AA)  # fmt: skip
    return tile


def _section(
    title: str, segments: list[dict], out_dir: Path, columns: int, thumb: int, width: int
) -> np.ndarray:
    cell_h, cell_w = thumb + 2 * FRAME + LABEL_LINES * LINE, thumb + 2 * FRAME
    rows = -(-len(segments) // columns)
    section = np.empty((HEADER + rows * (cell_h + GAP), width, 3), np.uint8)
    section[:] = BACKGROUND
    cv2.putText(section, _fit_text(title, width - 2 * GAP, 0.55), (GAP, HEADER - 10), _FONT, 0.55,
                (255, 255, 255), 1, cv2.LINE_AA)  # fmt: skip
    for i, seg in enumerate(segments):
        r, c = divmod(i, columns)
        y, x = HEADER + r * (cell_h + GAP), GAP + c * (cell_w + GAP)
        section[y : y + cell_h, x : x + cell_w] = _tile(seg, out_dir, thumb)
    return section


def contact_sheet(
    records: list[dict],
    out_dir: str | os.PathLike,
    path: str | os.PathLike,
    columns: int = 6,
    thumb: int = 192,
    max_tiles: int = 48,
) -> ContactSheet:
    """Write the PNG contact sheet of ``records`` (per-video records; thumbnails relative to ``out_dir``).

    Each of the two sections (kept, rejected) shows at most ``max_tiles`` tiles sampled evenly over
    its segments (in record order). Tiles are ``thumb`` px square plus a frame and a 3-line label;
    the sheet is ``columns`` tiles wide. Written atomically.
    """
    if columns < 1 or thumb < 16 or max_tiles < 1:
        raise ValueError(
            f"contact_sheet: columns >= 1, thumb >= 16, max_tiles >= 1 expected, got {columns}, {thumb}, {max_tiles}"
        )
    out_dir, path = Path(out_dir), Path(path)
    width = GAP + columns * (thumb + 2 * FRAME + GAP)
    kept, rejected = _segments(records, True), _segments(records, False)
    kept_shown, rejected_shown = sample_evenly(kept, max_tiles), sample_evenly(rejected, max_tiles)
    sections = [
        _section(f"kept: {len(kept_shown)} of {len(kept)} segment(s) shown", kept_shown, out_dir, columns, thumb, width),
        _section(f"rejected: {len(rejected_shown)} of {len(rejected)} segment(s) shown", rejected_shown, out_dir,
                 columns, thumb, width),
    ]  # fmt: skip
    sheet = np.concatenate(sections, axis=0)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
            raise OSError(f"contact_sheet: cannot write {path}")
    return ContactSheet(path, (sheet.shape[1], sheet.shape[0]), len(kept), len(kept_shown), len(rejected),
                        len(rejected_shown))  # fmt: skip
