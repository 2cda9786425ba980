"""Loading checkpoint files without ever running pickled code, with errors that name the file.

Every checkpoint the project reads goes through :func:`load_checkpoint_file` (a raw dict) or
:func:`load_module` (a LightningModule): ``torch.load(..., weights_only=True)`` with an explicit
allow-list (:data:`TRUSTED_GLOBALS`) of the few non-builtin types our own checkpoints hold. A file
that references anything else (``os.system``, ``builtins.eval``, arbitrary classes) is refused
before any of it runs. :func:`load_module` also checks that the checkpoint belongs to the class
asked for (a Stage-2 checkpoint given where a Stage-1 one is expected is named as such).
"""

from __future__ import annotations

import inspect
import os
import pathlib
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A file that is not a (loadable, safe, matching) checkpoint; the message names the file."""


# Beyond tensors, containers and Python scalars (which ``weights_only`` always accepts), our checkpoints
# hold only hyper-parameters given in YAML; a path given as a ``Path`` object is the one other type.
TRUSTED_GLOBALS: list = [pathlib.PosixPath, pathlib.PurePosixPath, pathlib.WindowsPath, pathlib.PureWindowsPath]


def load_checkpoint_file(path: str | os.PathLike, map_location: Any = "cpu", what: str = "checkpoint",
                         mmap: bool = False) -> dict:  # fmt: skip
    """``torch.load`` ``path`` safely (``weights_only=True`` + :data:`TRUSTED_GLOBALS`) -> the dict.

    Raises ``FileNotFoundError`` or :class:`CheckpointError` naming ``path`` (and ``what`` it should be).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}" + (" (a directory)" if path.is_dir() else ""))
    with open(path, "rb") as f:
        head = f.read(2)
    is_zip = zipfile.is_zipfile(path)
    if not is_zip and head == b"PK":
        raise CheckpointError(
            f"{path}: corrupt or truncated {what} (a zip archive without its central directory: "
            f"{path.stat().st_size} bytes, the write was probably cut off)"
        )
    if not is_zip and head[:1] != b"\x80":  # zip (torch >= 1.6) or a legacy pickle stream
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint (expected the zip archive that torch.save / Lightning write; "
            f"{path.stat().st_size} bytes of something else)"
        )
    try:
        with torch.serialization.safe_globals(TRUSTED_GLOBALS):
            data = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path}: refused: the {what} references Python objects outside the allow-list of "
            f"csg_lightning.checkpoints.safe_load (nothing of it was run): {reason}"
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, KeyError, OSError) as err:
        raise CheckpointError(f"{path}: corrupt or truncated {what} ({type(err).__name__}: {err})") from err
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: a {what} must hold a dict, found {type(data).__name__}")
    return data


def check_module_checkpoint(checkpoint: dict, path: str | os.PathLike, cls: type) -> None:
    """Raise :class:`CheckpointError` unless ``checkpoint`` is a Lightning checkpoint of ``cls``."""
    for key in ("state_dict", "hyper_parameters"):
        if key not in checkpoint:
            raise CheckpointError(
                f"{path}: not a Lightning checkpoint of {cls.__name__} (no '{key}'; found keys "
                f"{sorted(checkpoint)[:8]})"
            )
    hparams = dict(checkpoint["hyper_parameters"])
    stored = hparams.get("_class_path")  # LightningCLI records the class it built
    if stored:
        name = str(stored).rsplit(".", 1)[-1]
        if not issubclass_by_name(cls, str(stored)):
            raise CheckpointError(f"{path}: a checkpoint of {name} ({stored}), expected one of {cls.__name__}")
        return
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(k for k in hparams if not k.startswith("_") and k not in params)
    if unknown:
        raise CheckpointError(
            f"{path}: not a checkpoint of {cls.__name__}: its hyper-parameters {unknown[:6]} are not "
            f"arguments of {cls.__name__} (a checkpoint of another model or stage?)"
        )


def issubclass_by_name(cls: type, class_path: str) -> bool:
    """Whether the class at dotted ``class_path`` is ``cls`` or a subclass of it (imports it)."""
    module, _, name = class_path.rpartition(".")
    try:
        import importlib

        other = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(other, type) and issubclass(other, cls)


def load_module(cls: type, path: str | os.PathLike, map_location: Any = "cpu", **kwargs):
    """``cls.load_from_checkpoint(path)`` after checking the file (safe, a checkpoint of ``cls``)."""
    checkpoint = load_checkpoint_file(path, map_location="cpu", what=f"{cls.__name__} checkpoint", mmap=True)
    check_module_checkpoint(checkpoint, path, cls)
    del checkpoint
    with torch.serialization.safe_globals(TRUSTED_GLOBALS):
        return cls.load_from_checkpoint(str(path), map_location=map_location, weights_only=True, **kwargs)
