"""Checks of user inputs that run before any expensive work (model loading, sampling, sharding).

Every check raises :class:`InputError` (a ``ValueError``), or :class:`MissingInputError` (also a
``FileNotFoundError``) for a path that does not exist, with a message that names the input (a file,
an option such as ``--steps``, or a field such as ``'keypoints'``) and says what was expected.
Command-line tools turn these into ``SystemExit(message)``; the ``argparse`` types below make
``argparse`` itself reject bad numbers (exit status 2, the option named).
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import numpy as np

MIN_IMAGE_SIZE = 16  # pixels, each side of a reference photo


class InputError(ValueError):
    """An input file, option or field that is unusable (the message names it and what was expected)."""


class MissingInputError(InputError, FileNotFoundError):
    """An input path that does not exist."""


# ---------------------------------------------------------------------------------------------- files


def check_input_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` must be an existing, non-empty regular file; ``what`` names it (e.g. ``"--audio"``)."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{what} {path}: file not found")
    if not path.is_file():
        raise InputError(f"{what} {path}: is a directory (or not a regular file), expected a file")
    if path.stat().st_size == 0:
        raise InputError(f"{what} {path}: the file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise InputError(f"{what} {path}: the file is not readable (permissions)")
    return path


def check_output_file(path: str | os.PathLike, what: str, suffix: str) -> Path:
    """``path`` can be written: it ends in ``suffix``, is not a directory, and its parent is (or can be
    created as) a writable folder. Nothing is created."""
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise InputError(f"{what} {path}: expected a path ending in {suffix}")
    if path.is_dir():
        raise InputError(f"{what} {path}: is a directory, expected a {suffix} file path")
    parent = path.parent
    while not parent.exists():  # atomic_path creates the missing folders; the first existing one decides
        if parent.is_symlink():  # a dangling link cannot be created as a folder
            raise InputError(f"{what} {path}: folder {parent} is a broken symlink")
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{what} {path}: {parent} is a file, so the output folder cannot be created")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path}: folder {parent} is not writable")
    return path


def load_npz(path: str | os.PathLike, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()):
    """Arrays ``required`` (+ those of ``optional`` present) of the .npz file ``path`` -> dict.

    Refuses a missing file, a damaged or non-npz file (no bare ``BadZipFile``), pickled object arrays
    and missing keys, each with an error naming the file.
    """
    path = check_input_file(path, what)
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        raise InputError(
            f"{what} {path}: holds a single array (.npy), expected an .npz with {list(required)}"
        )
    if not magic.startswith(b"PK"):
        raise InputError(
            f"{what} {path}: not a readable .npz file (not a zip archive of arrays); expected {list(required)}"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in required if k not in data.files]
            if missing:
                raise InputError(
                    f"{what} {path}: missing array(s) {missing}; found {data.files}, expected {list(required)}"
                )
            return {k: np.asarray(data[k]) for k in (*required, *optional) if k in data.files}
    except InputError:
        raise
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise InputError(
                f"{what} {path}: holds pickled Python objects, expected plain numeric arrays"
            ) from err
        raise InputError(f"{what} {path}: not a readable .npz file ({err})") from err
    except Exception as err:  # BadZipFile, EOFError, OSError, zlib errors of a damaged file
        raise InputError(f"{what} {path}: not a readable .npz file ({type(err).__name__}: {err})") from err


def check_image_file(path: str | os.PathLike, what: str, min_size: int = MIN_IMAGE_SIZE) -> Path:
    """``path`` must be an image that decodes completely (a truncated file is refused) and is at least
    ``min_size`` pixels on each side."""
    from PIL import Image, UnidentifiedImageError

    path = check_input_file(path, what)
    try:
        with Image.open(path) as image:
            image.load()  # full decode: raises on truncated data
            width, height = image.size
    except UnidentifiedImageError as err:
        raise InputError(
            f"{what} {path}: not an image (expected a PNG, JPEG or other common format)"
        ) from err
    except Exception as err:  # truncated / damaged data
        raise InputError(f"{what} {path}: the image is damaged or truncated ({err})") from err
    if width < min_size or height < min_size:
        raise InputError(
            f"{what} {path}: the image is {width}x{height}, expected at least {min_size}x{min_size}"
        )
    return path


def check_config_file(path: str | os.PathLike, what: str = "--config") -> Path:
    """``path`` must be a YAML file whose top level is a mapping; syntax errors give their line."""
    import yaml

    path = check_input_file(path, what)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{what} {path}: cannot be read as text ({err})") from err
    try:
        node = yaml.compose(text)  # parse only: tags are left to the config parser
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(str(p) for p in (err.context, err.problem) if p)
        raise InputError(f"{what} {path}: YAML syntax error{where}: {problem}") from err
    except yaml.YAMLError as err:
        raise InputError(f"{what} {path}: not valid YAML ({err})") from err
    if node is None:
        raise InputError(f"{what} {path}: the file holds no YAML document, expected a mapping of options")
    if not isinstance(node, yaml.MappingNode):
        kind = {"SequenceNode": "a list", "ScalarNode": "a single value"}.get(
            type(node).__name__, "no mapping"
        )
        raise InputError(
            f"{what} {path}: the top level is {kind} (line {node.start_mark.line + 1}), "
            "expected a mapping of options (key: value)"
        )
    return path


# --------------------------------------------------------------------------------------------- arrays


def check_finite(array: np.ndarray, what: str, field: str) -> None:
    """No NaN/inf in ``array`` (``what`` names the file, ``field`` the array)."""
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"{what}: field '{field}' holds {int(bad.sum())} NaN/inf value(s) (first at index {first}), "
            "expected finite numbers"
        )


def check_skeleton(keypoints, scores, what: str, sequence: bool) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints [T, 134, 2] and scores [T, 134] (``sequence``; T >= 1), or [134, 2] and [134]: numeric,
    finite, scores in [0, 1] -> float32 arrays. ``scores`` None -> all ones."""
    from csg_lightning.skeleton.layout import NUM_KEYPOINTS as K

    expect_kp, expect_sc = ("[T, {K}, 2]", "[T, {K}]") if sequence else ("[{K}, 2]", "[{K}]")
    expect_kp, expect_sc = expect_kp.format(K=K), expect_sc.format(K=K)
    keypoints = np.asarray(keypoints)
    if not (np.issubdtype(keypoints.dtype, np.floating) or np.issubdtype(keypoints.dtype, np.integer)):
        raise InputError(f"{what}: field 'keypoints' has dtype {keypoints.dtype}, expected float pixels")
    ok = keypoints.ndim == 3 and keypoints.shape[1:] == (K, 2) if sequence else keypoints.shape == (K, 2)
    if not ok:
        raise InputError(f"{what}: field 'keypoints' has shape {_shape(keypoints)}, expected {expect_kp}")
    if sequence and keypoints.shape[0] < 1:
        raise InputError(
            f"{what}: field 'keypoints' has no frames (shape {_shape(keypoints)}), expected T >= 1"
        )
    keypoints = keypoints.astype(np.float32)
    check_finite(keypoints, what, "keypoints")
    if scores is None:
        return keypoints, np.ones(keypoints.shape[:-1], dtype=np.float32)
    scores = np.asarray(scores)
    if not (np.issubdtype(scores.dtype, np.floating) or np.issubdtype(scores.dtype, np.integer)):
        raise InputError(f"{what}: field 'scores' has dtype {scores.dtype}, expected float confidences")
    if scores.shape != keypoints.shape[:-1]:
        raise InputError(
            f"{what}: field 'scores' has shape {_shape(scores)}, expected {_shape(keypoints[..., 0])} "
            f"({expect_sc}, T from 'keypoints')"
        )
    scores = scores.astype(np.float32)
    check_finite(scores, what, "scores")
    if scores.min() < 0.0 or scores.max() > 1.0:
        raise InputError(
            f"{what}: field 'scores' must lie in [0, 1], found [{scores.min():.3g}, {scores.max():.3g}]"
        )
    return keypoints, scores


def load_skeleton_npz(path: str | os.PathLike, what: str, sequence: bool) -> tuple[np.ndarray, np.ndarray]:
    """A checked skeleton .npz: ``keypoints`` and ``scores`` (see :func:`check_skeleton`).

    ``sequence``: keypoints [T, 134, 2] and scores [T, 134] are both required. Otherwise one skeleton:
    keypoints [134, 2] or [T, 134, 2] (first frame used), scores [134] / [T, 134] or absent (all ones).
    """
    arrays = load_npz(path, what, ("keypoints", "scores") if sequence else ("keypoints",), ("scores",))
    keypoints, scores = arrays["keypoints"], arrays.get("scores")
    where = f"{what} {path}"
    if not sequence and keypoints.ndim == 3:
        if keypoints.shape[0] < 1:
            raise InputError(f"{where}: field 'keypoints' has no frames (shape {_shape(keypoints)})")
        keypoints = keypoints[0]
        if scores is not None and scores.ndim == 2 and scores.shape[0] >= 1:
            scores = scores[0]
    return check_skeleton(keypoints, scores, where, sequence)


def _shape(array: np.ndarray) -> str:
    return "[" + ", ".join(map(str, array.shape)) + "]"


# -------------------------------------------------------------------------------------------- options


def int_at_least(minimum: int):
    """An ``argparse`` type: an integer >= ``minimum`` (argparse names the option in its error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def finite_float(minimum: float | None = None, exclusive: bool = False):
    """An ``argparse`` type: a finite float, optionally >= ``minimum`` (> with ``exclusive``)."""
    bound = "" if minimum is None else f" {'>' if exclusive else '>='} {minimum:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a finite number{bound}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number{bound}, got {text}")
        if minimum is not None and (value <= minimum if exclusive else value < minimum):
            raise argparse.ArgumentTypeError(f"expected a finite number{bound}, got {value:g}")
        return value

    parse.__name__ = f"number{bound}"
    return parse


def check_device(name: str, what: str = "--device") -> str:
    """A torch device name that this machine has (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as err:
        raise InputError(f"{what} {name!r}: not a torch device (expected cpu, cuda, cuda:N or mps)") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{what} {name!r}: CUDA is not available on this machine (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"{what} {name!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"{what} {name!r}: MPS is not available on this machine (use --device cpu)")
    return name
