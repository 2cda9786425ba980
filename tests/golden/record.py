"""Regenerate the golden values of tests/test_golden.py (golden.json + golden.npz in this folder).

    .venv/bin/python tests/golden/record.py                 # re-record both stages into tests/golden/
    .venv/bin/python tests/golden/record.py --out /tmp/g    # record elsewhere (e.g. to compare two runs)
    .venv/bin/python tests/golden/record.py --compare tests/golden /tmp/g   # max differences of two recordings

Re-record only on purpose (a change that is meant to alter the numbers), and say so in the commit: the
point of these values is that a refactor leaves them as they are. The runs themselves are defined in
tests/test_golden.py (``run_stage1`` / ``run_stage2``), so recording and checking do the same thing.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/: test_golden
sys.path.insert(0, str(HERE))  # golden_recorder

import test_golden as golden  # noqa: E402


def _environment() -> dict:
    import diffusers
    import lightning
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "lightning": lightning.__version__, "diffusers": diffusers.__version__,
            "machine": platform.machine(), "processor": platform.processor()}  # fmt: skip


def _provenance() -> dict:
    """The commit the code came from and whether csg_lightning/ or experiments/ differ from it (read-only git)."""
    import subprocess

    root = HERE.parents[1]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--", "csg_lightning", "experiments")
    return {"commit": commit, "code_differs_from_commit": None if dirty is None else bool(dirty)}


def record(out: Path, stages: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    json_path, npz_path = out / "golden.json", out / "golden.npz"
    data = json.loads(json_path.read_text()) if json_path.is_file() else {}
    arrays = dict(np.load(npz_path)) if npz_path.is_file() else {}
    runs = {"stage1": golden.run_stage1, "stage2": golden.run_stage2}
    specs = {"stage1": golden.STAGE1, "stage2": golden.STAGE2}
    for stage in stages:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"golden_{stage}_") as tmp:
            result = runs[stage](Path(tmp))
        seconds = time.perf_counter() - start
        arrays.update(result["arrays"])
        data[stage] = {
            "spec": specs[stage],
            "losses": result["losses"],
            "lrs": result["lrs"],
            "arrays": {name: golden.summary(a) for name, a in result["arrays"].items()},
            "fingerprints": result["fingerprints"],
            "stats": result["stats"],
            "record_seconds": round(seconds, 1),
        }
        print(f"{stage}: {seconds:.1f} s, losses {result['losses']}", flush=True)
    data["environment"] = _environment()
    data["provenance"] = _provenance()
    data["recorded_with"] = "tests/golden/record.py (CPU, 1 torch thread, deterministic algorithms)"
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    np.savez_compressed(npz_path, **arrays)
    print(f"wrote {json_path} and {npz_path}")


def compare(a: Path, b: Path) -> None:
    """Print, per recorded value, whether two recordings are bit-identical and their max difference."""
    ja, jb = json.loads((a / "golden.json").read_text()), json.loads((b / "golden.json").read_text())
    for stage in ("stage1", "stage2"):
        if stage not in ja or stage not in jb:
            continue
        print(
            f"{stage}: fingerprints {'equal' if ja[stage]['fingerprints'] == jb[stage]['fingerprints'] else 'DIFFER'}"
        )
        for name in sorted(set(ja[stage].get("stats", {})) & set(jb[stage].get("stats", {}))):
            x, y = np.asarray(ja[stage]["stats"][name]), np.asarray(jb[stage]["stats"][name])
            print(f"  stats {name}: max |diff| {np.abs(x.astype(np.float64) - y).max():.3g}")
        for key in ("losses", "lrs"):
            x, y = np.asarray(ja[stage][key]), np.asarray(jb[stage][key])
            rel = np.abs(x - y) / np.abs(x)
            print(f"  {key}: bit-identical={bool((x == y).all())} max rel diff {rel.max():.3g}")
    with np.load(a / "golden.npz") as na, np.load(b / "golden.npz") as nb:
        for name in sorted(set(na.files) & set(nb.files)):
            x, y = na[name].astype(np.float64), nb[name].astype(np.float64)
            d = np.abs(x - y)
            print(f"  {name}: bit-identical={bool((na[name] == nb[name]).all())} max |diff| {d.max():.3g} "
                  f"mean {d.mean():.3g} ({(d > 0).mean():.2%} of values differ)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for golden.json / golden.npz")
    parser.add_argument("--stage", choices=["stage1", "stage2"], action="append",
                        help="record only this stage (repeatable; default: both)")  # fmt: skip
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("DIR_A", "DIR_B"))
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    record(args.out, args.stage or ["stage1", "stage2"])


if __name__ == "__main__":
    main()
