"""Kill-and-resume runs of the real ``csg fit`` (demo recipe, tiny model) as subprocesses.

:func:`fit_args` is the demo recipe shrunk for a drill: tiny model, 50 + 10 frame windows, CPU,
no validation or logger, and its callbacks replaced by an overlay YAML holding one plain Lightning
``ModelCheckpoint`` (``save_last``, every ``every`` steps) and a :class:`resume_recorder.BatchRecorder`
writing ``records`` (JSON lines, one per step and rank). :func:`kill_at` starts such a run, waits for
the recorder to reach ``step`` (where it holds) and SIGKILLs the whole process group (both DDP
ranks; the output goes to ``{records}.log``); :func:`fit` runs one to its end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from experiment_catalog import TINY_SKELETON_MODEL
from resume_recorder import read_records

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEMO = ROOT / "experiments" / "skeleton" / "demo.yaml"
CSG = Path(sys.executable).parent / "csg"


def fit_args(shards: Path, runs: Path, run: str, max_steps: int, overlay: Path, devices: int = 1,
             batch_size: int = 4, num_workers: int = 0, ckpt_path: Path | None = None) -> list[str]:  # fmt: skip
    """The ``csg fit`` command line of one drill run (run folder: ``runs/skeleton-demo/<run>``)."""
    args = [str(CSG), "fit", f"--config={DEMO}", f"--config={overlay}",
            f"--data.init_args.data_dir={shards}", f"--data.init_args.batch_size={batch_size}",
            f"--data.init_args.num_workers={num_workers}", "--data.init_args.window=50",
            "--data.init_args.num_prefix=10", *TINY_SKELETON_MODEL,
            "--model.init_args.crossfade_frames=5", "--trainer.accelerator=cpu", f"--trainer.devices={devices}",
            f"--trainer.max_steps={max_steps}", "--trainer.max_time=null", "--trainer.val_check_interval=null",
            "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0", "--trainer.logger=false",
            "--trainer.enable_progress_bar=false", "--trainer.deterministic=true",
            f"--runs_root={runs}", f"--run={run}"]  # fmt: skip
    if devices > 1:
        args.append("--trainer.strategy=ddp")
    if ckpt_path is not None:
        args.append(f"--ckpt_path={ckpt_path}")
    return args


def overlay(path: Path, records: Path, every: int, hold_at_step: int | None = None) -> Path:
    """Write the callbacks overlay: ModelCheckpoint(save_last, every ``every`` steps) + BatchRecorder."""
    callbacks = [
        {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
         "init_args": {"save_last": True, "every_n_train_steps": every, "save_top_k": -1}},
        {"class_path": "resume_recorder.BatchRecorder",
         "init_args": {"path": str(records), "hold_at_step": hold_at_step, "hold_seconds": 300.0}},
    ]  # fmt: skip
    path.write_text(yaml.safe_dump({"trainer": {"callbacks": callbacks}}))
    return path


def _env() -> dict:
    path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}


def fit(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``args`` to the end; raise with the tail of stderr if it fails."""
    result = subprocess.run(args, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} ... exited {result.returncode}:\n{result.stderr[-4000:]}")
    return result


def kill_at(args: list[str], records: Path, step: int, ranks: int = 1, timeout: float = 600) -> int:
    """Start ``args``, SIGKILL its process group once every rank recorded ``step``; -> the exit code."""
    files = [records] + [Path(f"{records}.rank{r}") for r in range(1, ranks)]
    log = Path(f"{records}.log")
    with open(log, "w") as out:  # a file, not a pipe: a full pipe would stall the run
        proc = subprocess.Popen(args, cwd=ROOT, env=_env(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + timeout
    try:
        while not all(any(r["step"] == step for r in read_records(f)) for f in files):
            if proc.poll() is not None:
                raise RuntimeError(f"the run ended (exit {proc.returncode}) before step {step}:\n"
                                   f"{log.read_text()[-4000:]}")  # fmt: skip
            if time.monotonic() > deadline:
                raise TimeoutError(f"no record of step {step} in {files} after {timeout} s")
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
