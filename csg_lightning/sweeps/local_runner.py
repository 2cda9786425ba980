"""Runs a sweep's trials on this machine, without a W&B server: one after another, or N at a time.

Each trial is the sweep's own ``csg fit`` command (``${args}`` rendered as the agent renders it) plus
``--run=<sweep name>[-<hyper-parameters>]`` and the extra arguments given after ``--``; it lands in
``runs/<recipe>+<overlays>+seed<N>/<run>/`` like any ``csg fit``. W&B runs offline (``disabled`` is
kept). When a trial exits with status 0 and wrote its ``metrics.json``, ``sweep-trial.json`` is written
atomically into its run folder: a later run of the same sweep skips that trial. The trial's output
goes to ``sweep-trial.log`` beside it (and to the terminal when trials run one at a time). With
``gpus=["0", "1"]`` trial slot *k* sees only ``CUDA_VISIBLE_DEVICES=gpus[k]``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from csg_lightning.experiment_layers import run_experiment_name, stack_configs
from csg_lightning.io.atomic import atomic_path
from csg_lightning.sweeps.expand import Trial, trial_command
from csg_lightning.sweeps.sweep_spec import OVERLAY_SLOT, SweepSpec
from csg_lightning.sweeps.trial_metrics import METRICS_FILE

MARKER = "sweep-trial.json"
LOG = "sweep-trial.log"
TRIAL_METRICS = "csg_lightning.sweeps.trial_metrics.TrialMetrics"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _last_value(args: list[str], key: str) -> str | None:
    value = None
    for i, arg in enumerate(args):
        if arg == key and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(key + "="):
            value = arg.split("=", 1)[1]
    return value


def predict_run_dir(fit_args: list[str]) -> Path:
    """``runs_root/<experiment>/<run>`` that ``csg fit <fit_args>`` will use (``--run`` must be given)."""
    stack = stack_configs(fit_args)
    experiment = "default"
    for arg in stack.args:
        if arg.startswith("--config="):
            data = yaml.safe_load(Path(arg.split("=", 1)[1]).read_text()) or {}
            experiment = str(data.get("experiment", experiment)) if isinstance(data, dict) else experiment
    explicit = _last_value(stack.args, "--experiment")
    seed = _last_value(stack.args, "--seed")
    if explicit is not None:
        experiment = explicit
    else:
        experiment = run_experiment_name(experiment, stack.overlays, int(seed) if seed not in (None, "null") else None)
    run = _last_value(stack.args, "--run")
    if run is None:
        raise ValueError("predict_run_dir: the command has no --run")
    return Path(_last_value(stack.args, "--runs_root") or "runs") / experiment / run


def hyper_parameters(params: dict) -> dict:
    """The parameters that are neither overlay slots nor the seed (they are not in the run folder's name)."""
    return {k: v for k, v in params.items() if not k.startswith(OVERLAY_SLOT) and k != "seed"}


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _slug(params: dict) -> str:
    return _SAFE.sub("_", "_".join(f"{k.rsplit('.', 1)[-1]}{_short(v)}" for k, v in hyper_parameters(params).items()))


def run_names(spec: SweepSpec, trials: list[Trial]) -> list[str]:
    """``<sweep name>`` or ``<sweep name>-<hyper-parameters>`` per trial (a hash where short names collide)."""
    base = _SAFE.sub("_", spec.name)
    names = [f"{base}-{_slug(t.params)}" if hyper_parameters(t.params) else base for t in trials]
    groups: dict[tuple, set[str]] = {}
    for t, name in zip(trials, names, strict=True):
        groups.setdefault((name, repr({k: v for k, v in t.params.items() if k == "seed" or k.startswith(OVERLAY_SLOT)})),
                          set()).add(repr(hyper_parameters(t.params)))  # fmt: skip
    if any(len(v) > 1 for v in groups.values()):
        digest = [hashlib.sha1(repr(hyper_parameters(t.params)).encode()).hexdigest()[:8] for t in trials]
        names = [f"{base}-{d}" if hyper_parameters(t.params) else base for t, d in zip(trials, digest, strict=True)]
    return names


@dataclass
class PlannedTrial:
    trial: Trial
    argv: list[str]  # after "csg": ["fit", ...]
    run_dir: Path
    label: str  # the configuration without its seed: what the report averages over

    def finished(self) -> dict | None:
        marker = self.run_dir / MARKER
        if not marker.is_file():
            return None
        try:
            data = json.loads(marker.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return data if data.get("params") == _jsonable(self.trial.params) else None


def _jsonable(params: dict) -> dict:
    return json.loads(json.dumps(params, default=str))


def plan(spec: SweepSpec, trials: list[Trial], extra: list[str]) -> list[PlannedTrial]:
    """The command line, run folder and label of every trial."""
    planned = []
    for trial, run in zip(trials, run_names(spec, trials), strict=True):
        command = trial_command(spec, trial.params)
        argv = [*command[1:], f"--run={run}", *extra]  # command[0] is "csg"
        if not any(TRIAL_METRICS in a for a in argv):  # the report reads metrics.json
            argv.insert(len(command) - 1, f"--trainer.callbacks+={TRIAL_METRICS}")
        run_dir = predict_run_dir(argv[1:])
        label = re.sub(r"\+seed-?\d+$", "", run_dir.parent.name)
        if hyper_parameters(trial.params):
            label += " " + ", ".join(f"{k.rsplit('.', 1)[-1]}={_short(v)}" for k, v in hyper_parameters(trial.params).items())
        planned.append(PlannedTrial(trial, argv, run_dir, label))
    return planned


def _env(spec: SweepSpec, gpu: str | None) -> dict:
    env = dict(os.environ)
    env["WANDB_MODE"] = "disabled" if os.environ.get("WANDB_MODE") == "disabled" else "offline"
    env["CSG_SWEEP"] = spec.name
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


def _start(spec: SweepSpec, p: PlannedTrial, gpu: str | None, stream: bool):
    p.run_dir.mkdir(parents=True, exist_ok=True)
    log = open(p.run_dir / LOG, "wb")  # noqa: SIM115 (closed in _finish)
    cmd = [sys.executable, "-m", "csg_lightning.cli", *p.argv]
    began = time.monotonic()
    proc = subprocess.Popen(cmd, env=_env(spec, gpu), stdout=subprocess.PIPE if stream else log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    if stream:
        while chunk := proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else proc.stdout.read(4096):
            log.write(chunk)
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
    return proc, log, began


def _finish(spec: SweepSpec, p: PlannedTrial, returncode: int, began: float) -> bool:
    metrics = p.run_dir / METRICS_FILE
    if returncode != 0 or not metrics.is_file():
        return False
    record = {"sweep": spec.name, "sweep_file": str(spec.path), "index": p.trial.index,
              "params": _jsonable(p.trial.params), "label": p.label, "argv": ["csg", *p.argv],
              "run_dir": str(p.run_dir), "seconds": round(time.monotonic() - began, 1),
              "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
    with atomic_path(p.run_dir / MARKER) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2) + "\n")
    return True


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_local(spec: SweepSpec, planned: list[PlannedTrial], parallel: int = 1, gpus: list[str] | None = None,
              force: bool = False, say=print) -> dict[str, list[PlannedTrial]]:  # fmt: skip
    """Run every planned trial not finished yet; returns {"done": [...], "skipped": [...], "failed": [...]}."""
    slots = list(gpus) if gpus else [None] * max(1, parallel)
    result: dict[str, list[PlannedTrial]] = {"done": [], "skipped": [], "failed": []}
    todo = []
    n = len(planned)
    for k, p in enumerate(planned, start=1):
        if not force and p.finished():
            say(f"[{k}/{n}] {p.run_dir}: finished before, skipped")
            result["skipped"].append(p)
        else:
            todo.append((k, p))
    running: dict[int, tuple] = {}  # slot -> (k, planned, proc, log, began)
    stream = len(slots) == 1
    while todo or running:
        free = [s for s in range(len(slots)) if s not in running]
        while todo and free:
            slot = free.pop(0)
            k, p = todo.pop(0)
            where = f" on CUDA_VISIBLE_DEVICES={slots[slot]}" if slots[slot] is not None else ""
            say(f"[{k}/{n}] {p.run_dir}: running{where} (log: {p.run_dir / LOG})")
            proc, log, began = _start(spec, p, slots[slot], stream)
            running[slot] = (k, p, proc, log, began)
        for slot, (k, p, proc, log, began) in list(running.items()):
            if proc.poll() is None:
                continue
            log.close()
            del running[slot]
            if _finish(spec, p, proc.returncode, began):
                say(f"[{k}/{n}] {p.run_dir}: done in {time.monotonic() - began:.0f} s")
                result["done"].append(p)
            else:
                why = f"exit status {proc.returncode}" if proc.returncode else f"no {METRICS_FILE} (stopped early?)"
                say(f"[{k}/{n}] {p.run_dir}: FAILED ({why}); last lines of {p.run_dir / LOG}:\n{_tail(p.run_dir / LOG)}")
                result["failed"].append(p)
        if running:
            time.sleep(0.2)
    return result
