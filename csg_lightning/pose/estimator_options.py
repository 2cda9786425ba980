"""The command-line options that choose a pose estimator, shared by every command that runs one.

--estimator estimator.yaml          class_path + init_args (optionally under ``estimator:``)
--pose dw-ll_ucoco_384.onnx [--detector yolox_l.onnx]   DWPose ONNX files named directly
--device cpu|cuda|cuda:N            overrides the estimator's device
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_ESTIMATOR = Path("experiments/pose/dwpose_onnx.yaml")
DWPOSE_CLASS = "csg_lightning.pose.dwpose_onnx.DWPoseONNX"


def add_estimator_arguments(
    parser: argparse.ArgumentParser, default: Path | None = DEFAULT_ESTIMATOR
) -> None:
    """Add ``--estimator``, ``--pose``, ``--detector`` and ``--device`` to ``parser``."""
    parser.add_argument(
        "--estimator", type=Path, default=None,
        help=f"pose estimator YAML (class_path + init_args); default {default}",
    )  # fmt: skip
    parser.add_argument("--pose", type=Path, default=None, help="DWPose pose model (dw-ll_ucoco_384.onnx)")
    parser.add_argument(
        "--detector", type=Path, default=None,
        help="DWPose person detector (yolox_l.onnx); without it the whole frame is the person box",
    )  # fmt: skip
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: the estimator's)")


def estimator_spec(
    args: argparse.Namespace, default: Path | None = DEFAULT_ESTIMATOR
) -> tuple[dict, str] | None:
    """The estimator's {class_path, init_args} from the options, and how to name it in errors
    (None when no option was given and there is no ``default``)."""
    from csg_lightning.io.validation import InputError, check_config_file

    if args.estimator is not None and (args.pose is not None or args.detector is not None):
        raise InputError(
            "--estimator and --pose/--detector: give an estimator YAML or the model files, not both"
        )
    if args.pose is None and args.detector is not None:
        raise InputError(
            f"--detector {args.detector}: also give --pose (the pose model, dw-ll_ucoco_384.onnx)"
        )
    if args.pose is None and args.estimator is None and default is None:
        return None
    if args.pose is not None:
        init = {"detector": None if args.detector is None else str(args.detector), "pose": str(args.pose)}
        spec, what = {"class_path": DWPOSE_CLASS, "init_args": init}, "--pose/--detector"
    else:
        import yaml

        path = check_config_file(args.estimator or default, "--estimator")
        spec, what = yaml.safe_load(path.read_text()), f"--estimator {path}"
        if not isinstance(spec, dict):
            raise InputError(
                f"{what}: expected a mapping with 'class_path' and 'init_args', got {type(spec).__name__}"
            )
        if isinstance(spec.get("estimator"), dict):
            spec = spec["estimator"]
        if not isinstance(spec.get("class_path"), str):
            raise InputError(f"{what}: expected a 'class_path' (e.g. {DWPOSE_CLASS}) and 'init_args'")
    if args.device is not None:
        spec = {**spec, "init_args": {**(spec.get("init_args") or {}), "device": args.device}}
    return spec, what


def build_estimator_from(spec: dict, what: str):
    """Build the estimator of :func:`estimator_spec`; a bad class or argument is an InputError naming ``what``."""
    from csg_lightning.io.validation import InputError
    from csg_lightning.pose.estimator import build_estimator

    try:
        return build_estimator(spec)
    except (InputError, FileNotFoundError):
        raise
    except Exception as err:  # jsonargparse: unknown class or init arg, bad value
        raise InputError(f"{what}: cannot build the pose estimator ({type(err).__name__}: {err})") from err
