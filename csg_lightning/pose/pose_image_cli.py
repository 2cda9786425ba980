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

DEFAULT_ESTIMATOR = Path("experiments/pose/dwpose_onnx.yaml")
DWPOSE_CLASS = "csg_lightning.pose.dwpose_onnx.DWPoseONNX"


def add_pose_image_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``pose-image`` sub-command to ``subparsers`` (of ``csg-data``)."""
    parser = subparsers.add_parser(
        "pose-image", help="photo -> reference skeleton .npz (+ .png) for sample-skeleton --ref",
        description="A photo -> the reference skeleton .npz (+ a .png of it drawn over the photo) that "
        "sample-skeleton --ref reads.",
    )  # fmt: skip
    parser.add_argument("image", type=Path, help="photo (PNG, JPEG, ...)")
    parser.add_argument("--out", type=Path, required=True, help="output .npz; the .png goes beside it")
    parser.add_argument(
        "--estimator", type=Path, default=None,
        help=f"pose estimator YAML (class_path + init_args); default {DEFAULT_ESTIMATOR}",
    )  # fmt: skip
    parser.add_argument("--pose", type=Path, default=None, help="DWPose pose model (dw-ll_ucoco_384.onnx)")
    parser.add_argument(
        "--detector", type=Path, default=None,
        help="DWPose person detector (yolox_l.onnx); without it the whole photo is the person box",
    )  # fmt: skip
    parser.add_argument(
        "--person", type=int_at_least(0), default=None,
        help="which person when several are found: 0 = largest (default: the largest, refusing two of similar size)",
    )  # fmt: skip
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: the estimator's)")
    parser.set_defaults(func=run)
    return parser


def estimator_spec(args: argparse.Namespace) -> tuple[dict, str]:
    """The estimator's {class_path, init_args} from the options, and how to name it in errors."""
    from csg_lightning.io.validation import InputError, check_config_file

    if args.estimator is not None and (args.pose is not None or args.detector is not None):
        raise InputError(
            "--estimator and --pose/--detector: give an estimator YAML or the model files, not both"
        )
    if args.pose is None and args.detector is not None:
        raise InputError(
            f"--detector {args.detector}: also give --pose (the pose model, dw-ll_ucoco_384.onnx)"
        )
    if args.pose is not None:
        init = {"detector": None if args.detector is None else str(args.detector), "pose": str(args.pose)}
        spec, what = {"class_path": DWPOSE_CLASS, "init_args": init}, "--pose/--detector"
    else:
        import yaml

        path = check_config_file(args.estimator or DEFAULT_ESTIMATOR, "--estimator")
        spec, what = yaml.safe_load(path.read_text()), f"--estimator {path}"
        if isinstance(spec.get("estimator"), dict):
            spec = spec["estimator"]
        if not isinstance(spec.get("class_path"), str):
            raise InputError(f"{what}: expected a 'class_path' (e.g. {DWPOSE_CLASS}) and 'init_args'")
    if args.device is not None:
        spec = {**spec, "init_args": {**(spec.get("init_args") or {}), "device": args.device}}
    return spec, what


def run(args: argparse.Namespace) -> None:
    from csg_lightning.io.validation import InputError, check_image_file, check_output_file
    from csg_lightning.pose.estimator import build_estimator
    from csg_lightning.pose.photo_reference import estimate_reference, write_reference

    try:
        check_image_file(args.image, "image")
        check_output_file(args.out, "--out", ".npz")
        spec, what = estimator_spec(args)
        try:
            estimator = build_estimator(spec)
        except (InputError, FileNotFoundError):
            raise
        except Exception as err:  # jsonargparse: unknown class or init arg, bad value
            raise InputError(
                f"{what}: cannot build the pose estimator ({type(err).__name__}: {err})"
            ) from err
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
