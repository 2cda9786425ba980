"""``csg-data import-poses``: pose files people already have -> the skeleton .npz the project reads.

    csg-data import-poses SRC --format {dwpose134,dwpose-dict,csg405,csg405-local} --out OUT.npz
        [--width W --height H] [--coords {auto,pixels,unit,signed}] [--person K] [--fps 25]
        [--scores SCORES.npy] [--strict] [--face-scale S] [--mouth-scale S]

SRC is a file, or a folder of per-frame files (dwpose134, dwpose-dict) sorted by name. OUT.npz
holds ``keypoints`` [T, 134, 2] pixels, ``scores`` [T, 134], ``fps`` (what ``make sample-skeleton
REF=OUT.npz`` reads), plus ``person`` and a JSON ``summary``. Formats, index maps and the rules for
missing points, coordinates and persons: :mod:`csg_lightning.pose.importers`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from csg_lightning.io.validation import InputError, finite_float, int_at_least


def add_import_poses_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``import-poses`` on an ``argparse`` sub-parsers object; returns its parser."""
    from csg_lightning.pose.importers import COORD_MODES, FORMATS

    parser = subparsers.add_parser(
        "import-poses",
        help="convert DWPose / CSG-405 pose files into the project's skeleton .npz",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="formats:\n" + "\n".join(f"  {name:14s} {f.help}" for name, f in FORMATS.items()),
    )
    parser.add_argument("src", type=Path, help="a pose file, or a folder of per-frame pose files")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="the layout of SRC")
    parser.add_argument("--out", required=True, type=Path, help="output .npz (written atomically)")
    parser.add_argument("--width", type=finite_float(0, exclusive=True), help="canvas width in pixels "
                        "(needed for normalised coordinates)")  # fmt: skip
    parser.add_argument("--height", type=finite_float(0, exclusive=True), help="canvas height in pixels")
    parser.add_argument(
        "--coords", choices=COORD_MODES, default=None,
        help="units of the file's coordinates: pixels, unit [0,1], signed [-1,1], or auto (decide from the "
        "values; the default, except dwpose-dict: unit)",
    )  # fmt: skip
    parser.add_argument("--person", type=int_at_least(0), default=None,
                        help="which person of several (default: the largest by box area)")  # fmt: skip
    parser.add_argument("--fps", type=int_at_least(1), default=25, help="frame rate to record (default 25)")
    parser.add_argument("--scores", type=Path, default=None, dest="scores_path",
                        help="dwpose134: a .npy of scores [..., 134] for a [..., 134, 2] keypoint file")  # fmt: skip
    parser.add_argument("--strict", action="store_true",
                        help="folder: stop at the first unreadable file instead of recording it as skipped")  # fmt: skip
    parser.add_argument("--face-scale", type=finite_float(0, exclusive=True), default=1.0,
                        help="csg405-local: factor the face offsets were multiplied by (release: 1)")  # fmt: skip
    parser.add_argument("--mouth-scale", type=finite_float(0, exclusive=True), default=1.0,
                        help="csg405-local: factor the mouth offsets were multiplied by (release: 1)")  # fmt: skip
    parser.set_defaults(func=run_import_poses)
    return parser


def run_import_poses(args: argparse.Namespace) -> None:
    from csg_lightning.pose.importers import ImportOptions, format_summary, import_poses, write_imported

    options = ImportOptions(
        width=args.width, height=args.height, person=args.person, fps=args.fps, coords=args.coords,
        scores_path=args.scores_path, strict=args.strict, face_scale=args.face_scale, mouth_scale=args.mouth_scale,
    )  # fmt: skip
    if args.out.suffix.lower() != ".npz":
        raise SystemExit(f"csg-data import-poses: --out {args.out}: expected a path ending in .npz")
    try:
        poses = import_poses(args.src, args.format, options)
        out = write_imported(args.out, poses)
    except InputError as err:
        raise SystemExit(f"csg-data import-poses: {err}") from None
    print(f"import-poses: {out}")
    for line in format_summary(poses):
        print(f"  {line}")
