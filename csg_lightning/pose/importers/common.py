"""What every pose importer shares: reading arrays, missing points, coordinates, choosing the person.

A format reader turns a file into :class:`RawPoses`: per frame, every person's 134 points already in
our storage order (:mod:`csg_lightning.skeleton.layout`) but still in the file's coordinate units.
:func:`finish` then applies the same rules to every format:

* **missing points** - NaN/inf coordinates or scores, a score <= 0, and (for the DWPose formats,
  whose writers mark undetected points so) a point at exactly (-1, -1) - get score 0 and, in the
  output, coordinates (0, 0): the output stays finite, a consumer masks by score. Half-body poses
  need nothing special: their knees/ankles/feet are missing points.
* **scores** are clipped to [0, 1] (DWPose / RTMPose SimCC confidences can exceed 1; the count is
  recorded). The neck's score becomes ``min(neck, left shoulder, right shoulder)``, the rule of
  :func:`~csg_lightning.skeleton.layout.add_neck` (DWPose writes 0/1 there, CSG-405 local files 1).
* **coordinates** (``coords``): ``pixels`` as they are; ``unit`` canvas-normalised [0, 1]
  (x * width, y * height); ``signed`` [-1, 1] as the CSG-405 release's Stage-1 files
  ((x + 1) / 2 * width). ``auto`` looks at every point with a score > 0: any |coordinate| > 2 ->
  pixels; otherwise normalised, ``signed`` when some coordinate is below -0.25 and ``unit``
  otherwise. Normalised coordinates need ``width`` and ``height`` (an error says so). The decision
  and its reason are recorded in the summary.
* **person**: ``person=K`` takes person K; by default the largest, by the box area of its points
  with a score > 0.3 (DWPose's own visibility threshold). Formats whose persons keep their index
  over a clip (CSG-405, DWPose arrays with a persons axis) choose once per clip (largest mean area);
  per-frame pose dicts choose per frame. The chosen index per frame is written as ``person``.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from csg_lightning.io.validation import InputError, check_input_file, load_npz
from csg_lightning.skeleton.layout import NUM_KEYPOINTS, SkeletonLayout

COORD_MODES = ("auto", "pixels", "unit", "signed")
PERSON_MIN_SCORE = 0.3  # a point counts towards a person's box above this score (DWPose's threshold)
PIXEL_MIN_EXTENT = 2.0  # auto: any |coordinate| above this -> pixels
SIGNED_BELOW = -0.25  # auto: normalised with a coordinate below this -> signed [-1, 1]


class PoseFormatError(InputError):
    """A pose file that does not hold what its format promises (the message names file and format)."""


@dataclass
class ImportOptions:
    """What the formats themselves lack (all optional)."""

    width: float | None = None
    height: float | None = None
    person: int | None = None
    fps: int = 25
    coords: str | None = None  # None: the format's default ("auto"; "unit" for pose dicts)
    scores_path: str | os.PathLike | None = None  # dwpose134: separate scores for an [...,134,2] .npy
    strict: bool = False  # folder: stop at the first bad file instead of recording a skip
    face_scale: float = 1.0  # csg405-local: the release's face/mouth up-scaling of local offsets
    mouth_scale: float = 1.0


@dataclass
class RawPoses:
    """Per frame: ``(keypoints [P, 134, 2], scores [P, 134])`` in storage order and file units."""

    frames: list[tuple[np.ndarray, np.ndarray]]
    clip_persons: bool  # persons keep their index over the clip: choose one index for all frames
    minus_one_missing: bool  # (-1, -1) marks a missing point in this format
    default_coords: str = "auto"
    notes: list[str] = field(default_factory=list)


@dataclass
class ImportedPoses:
    """The result: what ``make sample-skeleton REF=...`` reads, plus how it was obtained."""

    keypoints: np.ndarray  # float32 [T, 134, 2] pixels
    scores: np.ndarray  # float32 [T, 134] in [0, 1]
    fps: int
    person: np.ndarray  # int64 [T]: chosen person per frame, -1 for an empty frame
    summary: dict


# ------------------------------------------------------------------------------------------ reading


def load_arrays(
    path: Path, fmt: str, keys: tuple[str, ...] = ("keypoints", "scores")
) -> dict[str, np.ndarray]:
    """A plain (not pickled) ``.npy`` -> ``{keys[0]: array}``; an ``.npz`` -> its ``keys`` present
    (a one-array ``.npz`` under any name counts as ``keys[0]``)."""
    what = f"{fmt} pose file"
    suffix = path.suffix.lower()
    if suffix == ".npz":
        names = _npz_names(path, what)
        if keys[0] not in names and len(names) == 1:
            return {keys[0]: load_npz(path, what, (names[0],))[names[0]]}
        return load_npz(path, what, (keys[0],), keys[1:])
    if suffix != ".npy":
        raise PoseFormatError(
            f"{what} {path}: expected a .npy or .npz file, got {path.suffix or 'no suffix'!r}"
        )
    from csg_lightning.io.restricted_pickle import load_npy

    array = load_npy(path, what)
    if not isinstance(array, np.ndarray) or array.dtype.hasobject:
        raise PoseFormatError(
            f"{what} {path}: holds pickled Python objects ({type(array).__name__}), expected a numeric "
            f"array (pose dicts saved with np.save are --format dwpose-dict)"
        )
    return {keys[0]: array}


def _npz_names(path: Path, what: str) -> list[str]:
    check_input_file(path, what)
    with open(path, "rb") as f:
        if f.read(2) != b"PK":
            raise PoseFormatError(f"{what} {path}: not a readable .npz file (not a zip archive of arrays)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return list(data.files)
    except Exception as err:  # BadZipFile, OSError, ... of a damaged archive
        raise PoseFormatError(
            f"{what} {path}: not a readable .npz file ({type(err).__name__}: {err})"
        ) from err


def numeric(array: np.ndarray, where: str, field_name: str) -> np.ndarray:
    """``array`` as float64, refusing non-numeric dtypes."""
    array = np.asarray(array)
    if array.dtype == bool or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise PoseFormatError(f"{where}: {field_name} has dtype {array.dtype}, expected numbers")
    return array.astype(np.float64)


def split_channels(array: np.ndarray, scores: np.ndarray | None, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``[..., 134, 3]`` (x, y, score) or ``[..., 134, 2]`` (+ ``scores [..., 134]``, else all ones)."""
    if array.shape[-1] == 3:
        if scores is not None:
            raise PoseFormatError(
                f"{where}: the array has a score channel ([..., 134, 3]) and separate scores were given too; "
                "give one of them"
            )
        return array[..., :2], array[..., 2]
    if scores is None:
        return array, np.ones(array.shape[:-1])
    scores = numeric(scores, where, "scores")
    if scores.shape != array.shape[:-1]:
        raise PoseFormatError(
            f"{where}: scores have shape {list(scores.shape)}, expected {list(array.shape[:-1])} (one per point)"
        )
    return array, scores


def natural_key(name: str) -> list:
    """Sort key comparing digit runs as numbers (frame_2 before frame_10)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def frame_files(folder: Path, extensions: tuple[str, ...]) -> tuple[list[Path], list[str]]:
    """Files of ``folder`` with one of ``extensions``, sorted by name (numbers numerically), and the
    names of the other (non-hidden) entries, which are ignored."""
    chosen, ignored = [], []
    for entry in sorted(folder.iterdir(), key=lambda p: natural_key(p.name)):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix.lower() in extensions:
            chosen.append(entry)
        else:
            ignored.append(entry.name)
    return chosen, ignored


# ------------------------------------------------------------------------------------------ rules


def missing_mask(kp: np.ndarray, sc: np.ndarray, minus_one_missing: bool) -> np.ndarray:
    """Points that are missing (see the module docstring): ``[..., 134]`` booleans."""
    bad = ~np.isfinite(kp).all(axis=-1) | ~np.isfinite(sc) | (np.nan_to_num(sc, nan=0.0) <= 0.0)
    if minus_one_missing:
        bad |= (kp[..., 0] == -1.0) & (kp[..., 1] == -1.0)
    return bad


def decide_coords(
    mode: str, explicit: bool, values: np.ndarray, width, height, where: str
) -> tuple[str, str]:
    """-> (``pixels`` | ``unit`` | ``signed``, the reason). ``values``: the coordinates of present points;
    ``explicit``: ``mode`` came from ``--coords`` (else it is the format's default)."""
    if mode not in COORD_MODES:
        raise InputError(f"--coords {mode!r}: expected one of {list(COORD_MODES)}")
    if mode == "auto":
        if values.size == 0:
            return "pixels", "auto: no point with a score > 0 (nothing to scale)"
        lo, hi = float(values.min()), float(values.max())
        span = f"present coordinates within [{lo:.3g}, {hi:.3g}]"
        if max(abs(lo), abs(hi)) > PIXEL_MIN_EXTENT:
            return "pixels", f"auto: {span} (beyond +-{PIXEL_MIN_EXTENT:g}) -> pixels"
        mode = "signed" if lo < SIGNED_BELOW else "unit"
        reason = f"auto: {span} -> normalised, {'[-1, 1]' if mode == 'signed' else '[0, 1]'}"
    else:
        reason = f"--coords {mode}" if explicit else f"the format's coordinates are {mode}"
    if mode != "pixels" and (width is None or height is None):
        raise InputError(
            f"{where}: coordinates are normalised ({reason}); give --width and --height (the canvas size in "
            "pixels), or --coords pixels if they are pixels"
        )
    return mode, reason


def to_pixels(kp: np.ndarray, mode: str, width, height) -> np.ndarray:
    if mode == "pixels":
        return kp
    size = np.array([width, height], dtype=np.float64)
    return kp * size if mode == "unit" else (kp + 1.0) / 2.0 * size


def box_area(kp: np.ndarray, sc: np.ndarray) -> np.ndarray:
    """``[..., P, 134, 2]``, ``[..., P, 134]`` -> ``[..., P]`` box area of the points with score > 0.3
    (-1 for a person with none)."""
    good = (sc > PERSON_MIN_SCORE) & np.isfinite(kp).all(axis=-1)
    x = np.where(good, kp[..., 0], np.nan)
    y = np.where(good, kp[..., 1], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: persons without a good point
        area = (np.nanmax(x, -1) - np.nanmin(x, -1)) * (np.nanmax(y, -1) - np.nanmin(y, -1))
    return np.where(good.any(axis=-1), area, -1.0)


def finish(
    raw: RawPoses, options: ImportOptions, fmt: str, source: Path, extra: dict | None = None
) -> ImportedPoses:
    """Missing points, scores, coordinates and person choice (module docstring) -> :class:`ImportedPoses`."""
    where = f"{fmt} {source}"
    if not raw.frames:
        raise PoseFormatError(f"{where}: no frames")
    frames = []
    for kp, sc in raw.frames:
        kp = np.array(kp, dtype=np.float64)
        sc = np.array(sc, dtype=np.float64)
        assert kp.shape[-2:] == (NUM_KEYPOINTS, 2) and sc.shape == kp.shape[:-1], (kp.shape, sc.shape)
        missing = missing_mask(kp, sc, raw.minus_one_missing)
        kp[missing] = np.nan
        sc[missing] = 0.0
        frames.append((kp, sc))
    clipped = int(sum((sc > 1.0).sum() for _, sc in frames))
    L = SkeletonLayout
    for _, sc in frames:
        np.clip(sc, 0.0, 1.0, out=sc)
        sc[..., L.NECK] = np.minimum(
            sc[..., L.NECK], np.minimum(sc[..., L.LEFT_SHOULDER], sc[..., L.RIGHT_SHOULDER])
        )
    present = [kp[sc > 0] for kp, sc in frames]
    values = np.concatenate([v.reshape(-1) for v in present]) if present else np.zeros(0)
    mode, reason = decide_coords(
        options.coords or raw.default_coords,
        options.coords is not None,
        values,
        options.width,
        options.height,
        where,
    )
    frames = [(to_pixels(kp, mode, options.width, options.height), sc) for kp, sc in frames]

    T = len(frames)
    chosen = np.full(T, -1, dtype=np.int64)
    counts = np.array([len(kp) for kp, _ in frames])
    empty_notes: list[str] = []
    if raw.clip_persons and counts.max(initial=0) > 0:
        P = int(counts.max())
        if options.person is not None:
            if options.person >= P:
                raise InputError(
                    f"--person {options.person}: {where} holds {P} person(s) (indices 0..{P - 1})"
                )
            index, rule = options.person, f"--person {options.person}"
        else:
            areas = np.stack([box_area(kp, sc) for kp, sc in frames])  # [T, P]
            mean_area = np.where(areas >= 0, areas, 0).mean(axis=0)
            index = int(np.argmax(mean_area))
            rule = f"largest mean box area over the clip of {P} person(s): index {index}"
        chosen[:] = index
    else:
        rule = (
            f"--person {options.person} in every frame" if options.person is not None else "largest per frame"
        )
        for t, (kp, sc) in enumerate(frames):
            if len(kp) == 0:
                continue
            if options.person is not None:
                if options.person < len(kp):
                    chosen[t] = options.person
                else:
                    empty_notes.append(f"frame {t}: no person {options.person} ({len(kp)} person(s))")
            else:
                chosen[t] = int(np.argmax(box_area(kp, sc)))
    keypoints = np.zeros((T, NUM_KEYPOINTS, 2), dtype=np.float32)
    scores = np.zeros((T, NUM_KEYPOINTS), dtype=np.float32)
    for t, (kp, sc) in enumerate(frames):
        if chosen[t] >= 0:
            keypoints[t] = np.nan_to_num(kp[chosen[t]], nan=0.0).astype(np.float32)
            scores[t] = sc[chosen[t]].astype(np.float32)
    keypoints[scores <= 0] = 0.0
    for t in np.flatnonzero((chosen >= 0) & ~(scores > 0).any(axis=1)):
        empty_notes.append(f"frame {t}: person {chosen[t]} has no point with a score > 0")
        chosen[t] = -1
    empty = [int(t) for t in np.flatnonzero(chosen < 0)]
    if len(empty) == T:
        raise PoseFormatError(f"{where}: no frame holds a person with a point present ({T} frame(s) read)")
    summary = {
        "format": fmt,
        "source": str(source),
        "frames": T,
        "fps": int(options.fps),
        "coords": {"mode": mode, "rule": reason, "width": options.width, "height": options.height},
        "person": {"rule": rule, "persons_per_frame": [int(counts.min()), int(counts.max())]},
        "empty_frames": empty,
        "empty_notes": empty_notes,
        "scores_clipped_to_1": clipped,
        "notes": list(raw.notes),
    }
    if extra:
        summary.update(extra)
    return ImportedPoses(keypoints, scores, int(options.fps), chosen, summary)
