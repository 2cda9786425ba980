"""The CSG-405 test lists -> ``OUT/test_pairs.json``: which clip to generate, with which reference.

A test list (the release's loader reads ``<split>.txt``, so ``test.txt``) has one pair a line::

    <target clip name> <reference clip name>
    <target clip name>                  # no reference: the clip is its own reference

Names are release clip names (:mod:`.clip_names`; a ``.mp4`` / ``.npy`` suffix is dropped, ``#``
starts a comment). A pair is *same-identity* when both clips come from one source video (the
speaker id is the video id), *cross-identity* otherwise: the generated clip must keep the target's
speech and motion timing but show the reference's person.

``test_pairs.json`` is a JSON list, one object per pair, in list order::

    {"target": <clip id>, "ref": <clip id>, "same_identity": bool,
     "target_speaker": vid, "ref_speaker": vid, "target_name": <release name>, "ref_name": ...,
     "target_clip": "clips/<target>", "ref_clip": "clips/<ref>", "available": bool,
     "list": <test list file name>, "line": n}

Clip ids are the clip folder names under ``OUT/clips`` (the release name made folder-safe, normally
unchanged). Paths are relative to ``OUT``. To run a pair: the speech is ``<target_clip>/audio.wav``,
the reference skeleton ``<ref_clip>/pose.npz`` (its first frame, what ``sample-skeleton --ref``
reads) and the reference image the first frame of ``<ref_clip>/video.mp4``; the ground truth is
``<target_clip>/video.mp4``, so ``csg-eval video --generated GEN --reference OUT/clips`` scores
``GEN/<target>.mp4`` (generate the same- and cross-identity pairs into separate GEN folders, as a
target may appear in both). ``available`` says whether both clip folders were written (their source
videos were present).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from csg_lightning.csg405.manifest import ReleaseClip
from csg_lightning.io.atomic import atomic_path
from csg_lightning.io.validation import InputError, check_input_file

TEST_LIST_FILENAME = "test.txt"
PAIRS_FILENAME = "test_pairs.json"
_SUFFIXES = (".mp4", ".npy", ".wav")


@dataclass(frozen=True)
class TestPair:
    """One line of a test list, resolved against the manifest."""

    target: str
    ref: str
    same_identity: bool
    target_speaker: str
    ref_speaker: str
    target_name: str
    ref_name: str
    list: str
    line: int


def _bare(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_test_list(
    path: str | os.PathLike, clips: dict[str, ReleaseClip], clip_ids: dict[str, str]
) -> list[TestPair]:
    """Pairs of the test list at ``path``. ``clips``: release name -> clip (the manifest);
    ``clip_ids``: release name -> clip folder name. A name the manifest lacks, or a line with more
    than two names, is an InputError naming the file and the line."""
    path = check_input_file(path, "CSG-405 test list")
    pairs = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 2:
            raise InputError(f"{path}: line {number} has {len(fields)} names, expected 'target [reference]'")
        target, ref = _bare(fields[0]), _bare(fields[-1])
        for role, name in (("target", target), ("reference", ref)):
            if name not in clips:
                raise InputError(
                    f"{path}: line {number}: {role} {name!r} is not a clip of the manifest (expected a release "
                    "clip name '{vid}_{part}_{start}_{end}' listed in all_with_crop.json)"
                )
        t, r = clips[target], clips[ref]
        pairs.append(TestPair(
            target=clip_ids[target], ref=clip_ids[ref], same_identity=t.vid == r.vid,
            target_speaker=t.vid, ref_speaker=r.vid, target_name=target, ref_name=ref,
            list=path.name, line=number,
        ))  # fmt: skip
    return pairs


def write_test_pairs(out: str | os.PathLike, pairs: list[TestPair], clips_dir: str = "clips") -> Path:
    """Write ``out/test_pairs.json`` atomically (format in the module docstring); returns its path.

    ``available`` is true when both clip folders under ``out/<clips_dir>`` are complete."""
    from csg_lightning.preprocess.clip_writer import is_complete_clip

    out = Path(out)
    rows = []
    for pair in pairs:
        row = asdict(pair)
        row["target_clip"] = f"{clips_dir}/{pair.target}"
        row["ref_clip"] = f"{clips_dir}/{pair.ref}"
        row["available"] = all(is_complete_clip(out / clips_dir / c) for c in (pair.target, pair.ref))
        rows.append(row)
    path = out / PAIRS_FILENAME
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(rows, indent=1) + "\n")
    return path


def read_test_pairs(path: str | os.PathLike) -> list[dict]:
    """``test_pairs.json`` -> its list (checked: each row has target, ref and same_identity)."""
    path = check_input_file(path, "test pairs")
    try:
        rows = json.loads(path.read_text())
    except ValueError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(rows, list):
        raise InputError(f"{path}: expected a JSON list of pairs, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not {"target", "ref", "same_identity"} <= set(row):
            raise InputError(f"{path}: entry {i} must be an object with 'target', 'ref' and 'same_identity'")
    return rows
