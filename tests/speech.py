"""Real speech for tests: ``espeak-ng -w out.wav "text"`` (22.05 kHz mono), skipped when it is absent.

``speech_wav(path, text)`` writes the sentence as a wav and returns its path; ``SPEECH`` is a sentence
of about 3 s. Tests that need speech call :func:`require_espeak` (``pytest.skip`` with the reason when
the binary is not on PATH: ``apt-get install espeak-ng``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SPEECH = "Hello, this is a test of the talking video chain, with gestures."


def require_espeak() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng): no test speech")
    return binary


def speech_wav(path: str | Path, text: str = SPEECH, speed: int = 175) -> Path:
    """``text`` spoken by espeak-ng -> ``path`` (.wav, 22.05 kHz mono int16)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([require_espeak(), "-s", str(speed), "-w", str(path), text], check=True, capture_output=True)
    return path
