"""The installed environment is the locked one, and torchaudio's compiled extension loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from environment_check import LOCK, TORCH_TRIPLET, locked_versions, torchaudio_load_error, triplet_mismatches

FIX = "re-create the environment from the lock: rm -rf .venv && make setup"


def test_lock_pins_the_torch_triplet_as_pyproject_does():
    tomllib = pytest.importorskip("tomllib")
    deps = tomllib.loads((LOCK.parent / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {d.split("==")[0]: d.split("==")[1] for d in deps if d.split("==")[0] in TORCH_TRIPLET}
    assert set(pins) == set(TORCH_TRIPLET), f"pyproject.toml must pin {TORCH_TRIPLET} exactly (==), has {pins}"
    locked = locked_versions()
    for name, version in pins.items():
        assert locked.get(name) == {version}, f"uv.lock has {name} {locked.get(name)}, pyproject.toml pins {version}: run `make lock`"


def test_installed_torch_triplet_matches_the_lock():
    problems = triplet_mismatches()
    assert not problems, "the torch triplet differs from uv.lock:\n  " + "\n  ".join(problems) + f"\n{FIX}"


def test_torchaudio_compiled_extension_loads():
    error = torchaudio_load_error()
    assert error is None, f"torchaudio does not load beside the installed torch:\n{error}\n{FIX}"


def test_triplet_check_can_fail(tmp_path: Path):
    """The guard reads the lock it is given: a lock naming another torchaudio is reported."""
    text = LOCK.read_text()
    locked = sorted(locked_versions()["torchaudio"])[0]
    fake = tmp_path / "uv.lock"
    fake.write_text(text.replace(f'name = "torchaudio"\nversion = "{locked}"', 'name = "torchaudio"\nversion = "0.0.1"'))
    problems = triplet_mismatches(fake)
    assert len(problems) == 1 and problems[0].startswith("torchaudio: installed ") and "says 0.0.1" in problems[0]


@pytest.mark.parametrize("name", TORCH_TRIPLET)
def test_every_triplet_package_is_in_the_lock(name):
    assert locked_versions().get(name), f"{name} is missing from uv.lock: run `make lock`"
