"""Clip folders -> litdata shards split by speaker, plus stats.npz and manifest.json.

Layout written by :func:`write_shards` (documented in ``data/README.md``)::

    DST/train/  DST/val/  DST/test/   litdata dirs: chunk-*.bin, index.json, split.json (marker)
    DST/stats.npz                     normalisation stats + default reference (train split)
    DST/manifest.json                 written last: its presence means the whole dir is complete

Atomicity: each split is written into ``DST/.tmp-<split>-<random>`` and renamed to ``DST/<split>``
only once its chunks, ``index.json`` and ``split.json`` are all on disk, so a split dir either is
complete or does not exist. Readers require ``split.json`` (see :func:`check_split_dir`) and
``manifest.json``. Re-running skips complete splits whose plan (the clip folders assigned to it)
is unchanged, removes stale ``.tmp-*`` dirs, and finishes the stats and the manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from csg_lightning.data.clip_folder import list_clip_folders, read_clip, read_meta
from csg_lightning.data.normalization import STATS_FILENAME
from csg_lightning.data.records import RecordError
from csg_lightning.data.stats import compute_stats, save_stats
from csg_lightning.io.atomic import atomic_path
from csg_lightning.skeleton.layout import NUM_KEYPOINTS
from csg_lightning.timing import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME

SPLITS = ("train", "val", "test")
MANIFEST_FILENAME = "manifest.json"
SPLIT_MARKER = "split.json"
INDEX_FILENAME = "index.json"
FORMAT = "csg-lightning-shards"
FORMAT_VERSION = 1
_TMP_PREFIX = ".tmp-"


class ShardDirError(RuntimeError):
    """A shard dir that is incomplete, inconsistent or not ours (message says what to do)."""


def split_speakers(speakers: list[str], val_speakers: int = 1, test_speakers: int = 1, seed: int = 0) -> dict:
    """Deterministic speaker split: sorted speakers permuted by ``seed``; val first, then test, rest train.

    Returns {"train": [...], "val": [...], "test": [...]} (each sorted). Needs at least one
    train speaker.
    """
    speakers = sorted(set(speakers))
    if val_speakers < 0 or test_speakers < 0:
        raise ValueError(f"val_speakers/test_speakers must be >= 0, got {val_speakers}/{test_speakers}")
    if val_speakers + test_speakers >= len(speakers):
        raise ValueError(
            f"{len(speakers)} speaker(s) cannot give {val_speakers} val + {test_speakers} test speaker(s) "
            "and still leave one for training"
        )
    order = [speakers[i] for i in np.random.default_rng(seed).permutation(len(speakers))]
    val, test = order[:val_speakers], order[val_speakers : val_speakers + test_speakers]
    train = order[val_speakers + test_speakers :]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def check_split_dir(split_dir: str | os.PathLike) -> dict:
    """Return the ``split.json`` marker of a complete local split dir, or raise :class:`ShardDirError`."""
    split_dir = Path(split_dir)
    marker = split_dir / SPLIT_MARKER
    if not marker.is_file():
        raise ShardDirError(
            f"{split_dir}: not a complete shard split (no {SPLIT_MARKER}); it may be an interrupted write. "
            "Re-run `csg-data shard SRC DST` to finish it."
        )
    info = _read_json(marker)
    if info.get("num_records", 0) > 0 and not (split_dir / INDEX_FILENAME).is_file():
        raise ShardDirError(f"{split_dir}: {SPLIT_MARKER} present but litdata's {INDEX_FILENAME} is missing")
    return info


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ShardDirError(
            f"{path}: not a readable JSON file ({err}); re-run `csg-data shard SRC DST`"
        ) from err
    if not isinstance(data, dict):
        raise ShardDirError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_manifest(dst: str | os.PathLike) -> dict:
    """Read ``DST/manifest.json`` of a complete local shard dir, or raise :class:`ShardDirError`."""
    path = Path(dst) / MANIFEST_FILENAME
    if not path.is_file():
        raise ShardDirError(
            f"{dst}: no {MANIFEST_FILENAME}, so the shard dir is incomplete or not a shard dir. "
            "Run (or re-run) `csg-data shard SRC DST`."
        )
    manifest = _read_json(path)
    if manifest.get("format") != FORMAT or not manifest.get("complete"):
        raise ShardDirError(f"{path}: not a complete {FORMAT} manifest")
    return manifest


def iter_split_records(split_dir: str | os.PathLike, num_records: int | None = None) -> Iterator[dict]:
    """Read every record of a local split dir in storage order (main process, via litdata)."""
    from litdata import StreamingDataset

    if num_records is None:
        num_records = check_split_dir(split_dir)["num_records"]
    if num_records == 0:
        return
    dataset = StreamingDataset(str(split_dir))
    for i in range(num_records):  # global indices; len(dataset) would be per-rank under DDP
        yield dataset[i]


class BadClipsError(RecordError):
    """One or more clip folders failed validation; ``bad`` lists every one ({"clip_dir", "error"})."""

    def __init__(self, src: Path, bad: list[dict]):
        self.bad = bad
        lines = "\n".join(f"  - {b['error']}" for b in bad)
        super().__init__(
            f"{src}: {len(bad)} bad clip folder(s), so no shard was written. Fix or remove them, or "
            f"leave them out with --skip-bad (write_shards(skip_bad=True)):\n{lines}"
        )


def _read_speakers(folders: list[Path]) -> tuple[dict, list[dict]]:
    """{clip name: speaker_id} of the folders whose meta.json is valid, and the bad ones."""
    speaker_of, bad = {}, []
    for folder in folders:
        try:
            speaker_of[folder.name] = read_meta(folder)["speaker_id"]
        except RecordError as err:
            bad.append({"clip_dir": str(folder), "error": str(err)})
    return speaker_of, bad


def _plan(src: Path, val_speakers: int, test_speakers: int, seed: int, skip_bad: bool):
    folders = list_clip_folders(src)
    if not folders:
        raise ValueError(
            f"{src}: no clip folders found (expected SRC/<clip_id>/meta.json, pose.npz, audio.wav)"
        )
    speaker_of, bad = _read_speakers(folders)
    try:
        speakers = split_speakers(sorted(set(speaker_of.values())), val_speakers, test_speakers, seed)
    except ValueError:
        if bad and not skip_bad:  # the bad meta.json files are the likelier cause: report them
            raise BadClipsError(src, bad) from None
        raise
    plan = {name: [c for c in speaker_of if speaker_of[c] in set(spk)] for name, spk in speakers.items()}
    return plan, speakers, bad


def _complete_split(dst: Path, name: str, planned: list[str]) -> dict | None:
    """The split.json of ``dst/name`` when that split is complete with this plan; None when absent."""
    split_dir = dst / name
    if not split_dir.exists():
        return None
    info = check_split_dir(split_dir)
    if info.get("planned") != planned:
        raise ShardDirError(
            f"{split_dir} was written from a different plan (other clips, seed or speaker counts). "
            f"Delete {dst} or write to a new DST."
        )
    return info


def check_clips(
    src: Path, clips: list[str], include_video: bool = True, progress: bool = False
) -> list[dict]:
    """Validate every clip folder ``src/<clip>`` completely (videos decoded frame by frame); return the
    bad ones as [{"clip_dir", "error"}], in order."""
    from tqdm.auto import tqdm

    bad = []
    for clip in tqdm(clips, desc="check clips", disable=not progress, unit="clip"):
        try:
            read_clip(src / clip, include_video=include_video, decode_video=True)
        except RecordError as err:
            bad.append({"clip_dir": str(src / clip), "error": str(err)})
    return bad


def _write_split(
    src: Path,
    dst: Path,
    name: str,
    clips: list[str],
    speakers: list[str],
    *,
    bad: dict[str, str],
    skip_bad: bool,
    include_video: bool,
    chunk_bytes: str | int,
    progress: bool,
) -> dict:
    from litdata.streaming.writer import BinaryWriter
    from tqdm.auto import tqdm

    tmp = dst / f"{_TMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        writer = BinaryWriter(str(tmp), chunk_bytes=chunk_bytes)
        written, skipped, num_frames, has_video = [], [], 0, False
        for clip in tqdm(clips, desc=f"shard {name}", disable=not progress, unit="clip"):
            if clip in bad:  # found by check_clips; skip_bad is set, or we would not be here
                skipped.append({"clip_dir": str(src / clip), "error": bad[clip]})
                continue
            try:  # checked in full by check_clips already: only the mp4 header again here
                record = read_clip(src / clip, include_video=include_video, decode_video=False)
            except RecordError as err:  # the folder changed since it was checked
                if not skip_bad:
                    raise
                skipped.append({"clip_dir": str(src / clip), "error": str(err)})
                continue
            writer.add_item(len(written), record)
            written.append(record["clip_id"])
            num_frames += record["keypoints"].shape[0]
            has_video = has_video or len(record["video"]) > 0
        if name == "train" and not written:
            raise ValueError(f"{src}: the train split has no usable clips")
        if written:
            writer.done()
            # merge() waits for WORLD_SIZE x workers partial indexes (it assumes the optimizer's
            # process grid); we write from one process, so merge our single partial index directly.
            writer._merge_no_wait()
        info = {
            "split": name,
            "speakers": speakers,
            "planned": clips,
            "clip_ids": written,
            "num_records": len(written),
            "num_frames": num_frames,
            "skipped": skipped,
            "has_video": has_video,
        }
        (tmp / SPLIT_MARKER).write_text(json.dumps(info, indent=1))
        os.rename(tmp, dst / name)
        return info
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_shards(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    val_speakers: int = 1,
    test_speakers: int = 1,
    seed: int = 0,
    progress: bool = True,
    skip_bad: bool = False,
    include_video: bool = True,
    chunk_bytes: str | int = "64MB",
) -> Path:
    """Convert the clip folders under ``src`` into litdata shards in ``dst``; return ``dst``.

    Speakers are split deterministically by ``seed`` (see :func:`split_speakers`). Before anything
    is written, every clip of the splits to write is validated in full (:func:`check_clips`: the
    arrays, the audio and every frame of the video). Bad clips raise one :class:`BadClipsError`
    (a :class:`~csg_lightning.data.records.RecordError`) listing each folder with its reason,
    unless ``skip_bad`` is set, which leaves them out and lists them under "skipped" in
    manifest.json. Idempotent and resumable: complete splits with an unchanged plan are kept as
    they are (their clips were checked when they were written).
    """
    src, dst = Path(src), Path(dst)
    if dst.exists() and not dst.is_dir():
        raise ShardDirError(f"{dst}: DST is a file, expected a folder (or a path that does not exist yet)")
    plan, speakers, skipped = _plan(src, val_speakers, test_speakers, seed, skip_bad)
    complete = {name: _complete_split(dst, name, plan[name]) for name in SPLITS}
    to_check = [clip for name in SPLITS if complete[name] is None for clip in plan[name]]
    bad_content = check_clips(src, to_check, include_video=include_video, progress=progress)
    if (skipped or bad_content) and not skip_bad:
        raise BadClipsError(src, skipped + bad_content)
    bad = {Path(b["clip_dir"]).name: b["error"] for b in bad_content}
    if complete["train"] is None and all(clip in bad for clip in plan["train"]):
        raise ValueError(f"{src}: the train split has no usable clips (all {len(plan['train'])} are bad)")
    dst.mkdir(parents=True, exist_ok=True)
    for stale in dst.glob(f"{_TMP_PREFIX}*"):  # left by an interrupted run; never read by anyone
        shutil.rmtree(stale, ignore_errors=True)

    if any(not (dst / name).exists() for name in SPLITS) or not (dst / STATS_FILENAME).is_file():
        (dst / MANIFEST_FILENAME).unlink(missing_ok=True)  # incomplete until this run finishes
    infos, rewrote_train = {}, False
    for name in SPLITS:
        if complete[name] is not None:
            infos[name] = complete[name]
            continue
        infos[name] = _write_split(
            src,
            dst,
            name,
            plan[name],
            speakers[name],
            bad={c: bad[c] for c in plan[name] if c in bad},
            skip_bad=skip_bad,
            include_video=include_video,
            chunk_bytes=chunk_bytes,
            progress=progress,
        )
        rewrote_train = rewrote_train or name == "train"

    stats_path = dst / STATS_FILENAME
    if rewrote_train or not stats_path.is_file():
        train = infos["train"]
        stats = compute_stats(
            lambda: iter_split_records(dst / "train", train["num_records"]),
            progress=progress,
            total=train["num_records"],
        )
        save_stats(stats_path, stats)

    keys = ("speakers", "clip_ids", "num_records", "num_frames", "has_video")
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "complete": True,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "source": str(src.resolve()),
        "seed": seed,
        "val_speakers": val_speakers,
        "test_speakers": test_speakers,
        "fps": FPS,
        "sample_rate": SAMPLE_RATE,
        "samples_per_frame": SAMPLES_PER_FRAME,
        "num_keypoints": NUM_KEYPOINTS,
        "stats": STATS_FILENAME,
        "splits": {name: {k: infos[name][k] for k in keys} for name in SPLITS},
        "skipped": skipped + [s for name in SPLITS for s in infos[name].get("skipped", [])],
    }
    with atomic_path(dst / MANIFEST_FILENAME) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    return dst
