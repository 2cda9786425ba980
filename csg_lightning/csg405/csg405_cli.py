"""``csg-data csg405``: the CSG-405 release + the source videos you have -> 512x512 clip folders.

    csg-data csg405 MANIFEST_DIR VIDEOS_DIR OUT (--poses POSE_DIR | --estimator E.yaml | --pose P.onnx)
        [--pose-frame crop|source] [--test-list test.txt ...] [--limit N]

MANIFEST_DIR holds the release's ``all_with_crop.json`` (and ``all.txt``, ``test.txt``); VIDEOS_DIR
the downloaded videos, ``<vid>.mp4|mkv|webm`` (or the ``<vid>_<part>`` pieces); POSE_DIR the release's
``<clip name>.npy`` pose files. Writes ``OUT/clips/<clip>/`` (then ``csg-data shard OUT/clips DST``),
``OUT/csg405_missing.txt`` (video ids to download; nothing is downloaded here),
``OUT/csg405_skipped.json`` and ``OUT/test_pairs.json``. Re-running makes only the missing clips.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from csg_lightning.io.validation import int_at_least

log = logging.getLogger("csg_lightning.csg405")


def add_csg405_parser(subparsers) -> argparse.ArgumentParser:
    from csg_lightning.csg405.clip_poses import POSE_FRAMES
    from csg_lightning.csg405.source_videos import PART_SECONDS
    from csg_lightning.pose.estimator_options import add_estimator_arguments

    parser = subparsers.add_parser(
        "csg405", help="CSG-405 release + downloaded videos -> 512x512 clip folders (+ test pairs)",
        description=__doc__.split("\n\n")[0],
    )  # fmt: skip
    parser.add_argument("manifest_dir", type=Path, help="folder with all_with_crop.json (or the file itself)")
    parser.add_argument(
        "videos_dir", type=Path, help="folder of source videos named <vid>.mp4 / .mkv / .webm"
    )
    parser.add_argument("out", type=Path, help="output folder (clips/, csg405_missing.txt, test_pairs.json)")
    parser.add_argument("--poses", type=Path, default=None, help="the release's pose files, <clip name>.npy")
    add_estimator_arguments(parser, default=None)
    parser.add_argument(
        "--pose-frame", choices=POSE_FRAMES, default="crop",
        help="pixels of the pose files: the release's 512x512 clips (crop, default) or the source video",
    )  # fmt: skip
    parser.add_argument("--test-list", type=Path, action="append", default=None,
                        help="test list of 'target [reference]' lines (repeatable; default MANIFEST_DIR/test.txt)")  # fmt: skip
    parser.add_argument("--limit", type=int_at_least(1), default=None, help="make at most N clips this run")
    parser.add_argument("--part-seconds", type=float, default=PART_SECONDS,
                        help=f"length of a release 'part' in seconds (default {PART_SECONDS:g})")  # fmt: skip
    parser.add_argument("--frame-slack", type=int_at_least(0), default=2,
                        help="frames a pose file may differ from the cut clip (default 2)")  # fmt: skip
    parser.add_argument("--crf", type=int, default=18, help="H.264 quality of the clip videos (default 18)")
    parser.add_argument("--quiet", action="store_true", help="no line per clip")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    from csg_lightning.io.validation import InputError

    try:
        _run(args)
    except (InputError, FileNotFoundError, ValueError) as err:
        raise SystemExit(f"csg-data csg405: {err}") from None
    except OSError as err:  # disk full / permissions: finished clips stay, none is half-written
        raise SystemExit(f"csg-data csg405: stopped by a write error ({err}); re-run to continue") from None


def _run(args: argparse.Namespace) -> None:
    from csg_lightning.csg405.ingest import IngestOptions, ingest_release
    from csg_lightning.io.validation import InputError
    from csg_lightning.pose.estimator_options import build_estimator_from, estimator_spec

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    chosen = estimator_spec(args, default=None)
    if (args.poses is None) == (chosen is None):
        raise InputError(
            "give --poses POSE_DIR (the release's pose files) or an estimator (--estimator YAML / --pose), one"
        )
    estimator = (lambda: build_estimator_from(*chosen)) if chosen is not None else None  # built once needed
    options = IngestOptions(
        poses_dir=args.poses, estimator=estimator, pose_frame=args.pose_frame, limit=args.limit,
        part_seconds=args.part_seconds, frame_slack=args.frame_slack, crf=args.crf, test_lists=args.test_list,
    )  # fmt: skip
    summary = ingest_release(args.manifest_dir, args.videos_dir, args.out, options,
                             progress=None if args.quiet else log.info)  # fmt: skip
    for line in summary.lines(Path(args.out)):
        log.info(line)
    log.info(f"clips: {Path(args.out) / 'clips'} (next: csg-data shard {Path(args.out) / 'clips'} SHARDS)")
