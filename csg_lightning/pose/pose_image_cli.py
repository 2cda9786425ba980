"""``csg-data pose-image``: a photo -> the reference skeleton ``.npz`` (+ ``.png``) for ``sample-skeleton --ref``.

    csg-data pose-image photo.png --out ref.npz [--estimator estimator.yaml | --pose dw-ll_ucoco_384.onnx
        [--detector yolox_l.onnx]] [--person K] [--device cpu|cuda]

The estimator is an estimator YAML (``class_path`` + ``init_args``, optionally under ``estimator:``;
default ``experiments/pose/dwpose_onnx.yaml``), or DWPose ONNX files named directly (``--pose`` without
``--detector``: the whole photo is the person box). See :mod:`csg_lightning.pose.photo_reference` for
which person is taken.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from csg_lightning.io.validation import int_at_least
from csg_lightning.pose.estimator_options import add_estimator_arguments, estimator_spec


def add_pose_image_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``pose-image`` sub-command to ``subparsers`` (of ``csg-data``)."""
    parser = subparsers.add_parser(
        "pose-image", help="photo -> reference skeleton .npz (+ .png) for sample-skeleton --ref",
        description="A photo -> the reference skeleton .npz (+ a .png of it drawn over the photo) that "
        "sample-skeleton --ref reads.",
    )  # fmt: skip
    parser.add_argument("image", type=Path, help="photo (PNG, JPEG, ...)")
    parser.add_argument("--out", type=Path, required=True, help="output .npz; the .png goes beside it")
    add_estimator_arguments(parser)
    parser.add_argument(
        "--person", type=int_at_least(0), default=None,
        help="which person when several are found: 0 = largest (default: the largest, refusing two of similar size)",
    )  # fmt: skip
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> None:
    from csg_lightning.io.validation import InputError, check_image_file, check_output_file
    from csg_lightning.pose.estimator_options import build_estimator_from
    from csg_lightning.pose.photo_reference import estimate_reference, write_reference

    try:
        check_image_file(args.image, "image")
        check_output_file(args.out, "--out", ".npz")
        estimator = build_estimator_from(*estimator_spec(args))
        person, image, index, count = estimate_reference(args.image, estimator, args.person)
        npz, png = write_reference(args.out, person, image)
    except (InputError, FileNotFoundError) as err:
        raise SystemExit(f"csg-data pose-image: {err}") from None
    height, width = image.shape[:2]
    print(
        f"reference skeleton: {npz} and {png} (person {index} of {count}, box "
        f"{', '.join(f'{v:.0f}' for v in person.box)} in a {width}x{height} photo); "
        f"use: make sample-skeleton REF={npz} ... (or sample_skeleton --ref {npz} --width {width} "
        f"--height {height})"
    )
