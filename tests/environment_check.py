"""What the installed environment is, against what ``uv.lock`` says it must be.

Used by ``test_environment.py`` and by ``conftest.py`` (which, when torchaudio's compiled extension
cannot load, collects only ``test_environment.py`` so the cause shows as one named failing test
instead of a collection error in every file that imports torchaudio).
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "uv.lock"
TORCH_TRIPLET = ("torch", "torchaudio", "torchvision")


def locked_versions(lock: Path = LOCK) -> dict[str, set[str]]:
    """Package name -> the versions ``uv.lock`` holds for it (several where it forks by Python)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the lock's [[package]] tables are regular enough
        text = lock.read_text()
        pairs = re.findall(r'^\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', text, re.M)
    else:
        pairs = [(p["name"], p["version"]) for p in tomllib.loads(lock.read_text())["package"] if "version" in p]
    out: dict[str, set[str]] = {}
    for name, version in pairs:
        out.setdefault(name, set()).add(version)
    return out


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name).split("+")[0]  # "2.11.0+cu130" -> "2.11.0"
    except metadata.PackageNotFoundError:
        return None


def triplet_mismatches(lock: Path = LOCK) -> list[str]:
    """One line per torch-triplet package whose installed version is not the locked one."""
    locked = locked_versions(lock)
    problems = []
    for name in TORCH_TRIPLET:
        want, have = locked.get(name, set()), installed_version(name)
        if have not in want:
            problems.append(f"{name}: installed {have or 'nothing'}, {LOCK.name} says {' or '.join(sorted(want)) or 'nothing'}")
    return problems


@functools.lru_cache(maxsize=1)
def torchaudio_load_error() -> str | None:
    """None when torchaudio and its compiled extension load in a fresh interpreter; else the error."""
    code = (
        "import torch, torchaudio\n"
        "from torchaudio import functional as F\n"  # resample runs through the compiled ops' registration
        "x = torch.zeros(1, 160)\n"
        "assert F.resample(x, 16000, 8000).shape == (1, 80)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    # the exception lines of the whole chain ("OSError: ... undefined symbol: ..." and what it raised)
    errors = [ln for ln in proc.stderr.splitlines() if re.match(r"^[A-Za-z_.]*(Error|Exception)\b.*:", ln)]
    return "\n".join(errors) or proc.stderr.strip()[-2000:] or f"exit code {proc.returncode}"
