"""Shared helpers of the bad-input drills: real files with real defects, and the checks every drill makes.

Every drill feeds one broken input to the real code (a CLI's ``main(argv)`` in-process where there is
one) and asserts three things: the exact error kind, that the message names the input (the file, the
option or the field) and says what was expected, and that nothing half-written is left behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

SR = 16_000
K = 134


# ------------------------------------------------------------------------------------------- files


def tone(seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def write_float_wav(path: Path, samples: np.ndarray, sr: int = SR) -> Path:
    """A real 32-bit float wav: the one wav format that can hold NaN/inf samples."""
    sf.write(str(path), np.asarray(samples, dtype=np.float32), sr, subtype="FLOAT", format="WAV")
    return path


def skeleton(frames: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Plausible keypoints [T, 134, 2] pixels and scores [T, 134] (or [134, 2] / [134] for None)."""
    rng = np.random.default_rng(seed)
    kp = rng.uniform(150, 350, (frames or 1, K, 2)).astype(np.float32)
    sc = rng.uniform(0.5, 1.0, (frames or 1, K)).astype(np.float32)
    return (kp, sc) if frames else (kp[0], sc[0])


def save_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def zero_middle(path: Path, nbytes: int) -> Path:
    """Overwrite ``nbytes`` in the middle of ``path`` with zeros (the file keeps its size)."""
    data = bytearray(path.read_bytes())
    assert len(data) > nbytes, f"{path} is only {len(data)} bytes"
    start = (len(data) - nbytes) // 2
    data[start : start + nbytes] = bytes(nbytes)
    path.write_bytes(bytes(data))
    return path


def truncate(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


# ------------------------------------------------------------------------------------------ checks


def tree(folder: Path) -> list[str]:
    """Every file and folder under ``folder``, hidden ones (temporaries) included."""
    folder = Path(folder)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def assert_names(message: str, *names) -> None:
    """``message`` names each of ``names`` (paths or option/field names) and is not a traceback dump."""
    for name in names:
        assert str(name) in message, f"{name!r} not named in: {message}"
    assert "Traceback" not in message


def expect_exit(main, argv: list[str], *names, folder: Path | None = None, before=None) -> str:
    """Run a CLI ``main(argv)``: it must stop with ``SystemExit(message)`` naming ``names``, and leave
    ``folder`` as it was (``before``: its :func:`tree`, default empty). Returns the message."""
    before = tree(folder) if before is None and folder is not None else before
    with pytest.raises(SystemExit) as info:
        main(argv)
    message = str(info.value.code)
    assert not isinstance(info.value.code, int), f"exited with bare status {info.value.code}"
    assert_names(message, *names)
    if folder is not None:
        assert tree(folder) == before, f"{folder} changed: {tree(folder)} (was {before})"
    return message


def expect_usage_error(main, argv: list[str], option: str, capsys, pattern: str) -> str:
    """argparse's own refusal: exit status 2, the option and what it expects on stderr."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and re.search(pattern, err), err
    return err


class MustNotLoad:
    """Stand-in for ``load_from_checkpoint``: validation must stop a run before any model is loaded."""

    def __init__(self):
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        raise AssertionError("the model was loaded although an input is bad: validation must come first")
