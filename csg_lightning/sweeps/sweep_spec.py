"""A W&B sweep YAML (``experiments/sweeps/*.yaml``), loaded and checked before anything runs.

The same file feeds ``wandb sweep`` (a W&B server expands it, ``wandb agent`` runs the trials) and
``csg sweep --local`` (:mod:`csg_lightning.sweeps.expand` expands it here). The checks follow W&B's
schema (top-level keys, ``method``, ``metric``, one search constraint per parameter) plus this
project's rules:

* ``command`` runs ``csg fit`` and passes the parameters with ``${args}`` (rendered by the agent as
  ``--key=value``: dotted LightningCLI keys). ``${args_no_hyphens}`` (Hydra's ``key=value``) is refused:
  LightningCLI would read those as positional arguments.
* a parameter ``config.<slot>`` is an overlay slot: every value is an overlay YAML (a file with
  ``overlay:``) or ``none`` (no overlay for that slot); ``seed`` takes integers.

Every error is a :class:`SweepError` naming the file, the field and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

METHODS = ("grid", "random", "bayes")
TOP_LEVEL = {"program", "method", "metric", "parameters", "command", "name", "description", "project",
             "entity", "early_terminate", "run_cap", "controller", "job"}  # fmt: skip
DISTRIBUTIONS = {  # distribution -> the keys it needs
    "constant": ("value",), "categorical": ("values",), "int_uniform": ("min", "max"), "uniform": ("min", "max"),
    "q_uniform": ("min", "max"), "log_uniform": ("min", "max"), "log_uniform_values": ("min", "max"),
    "q_log_uniform": ("min", "max"), "q_log_uniform_values": ("min", "max"), "inv_log_uniform": ("min", "max"),
    "inv_log_uniform_values": ("min", "max"), "normal": (), "q_normal": (), "log_normal": (), "q_log_normal": (),
    "beta": (), "q_beta": (),
}  # fmt: skip
PARAMETER_KEYS = {"value", "values", "probabilities", "distribution", "min", "max", "mu", "sigma", "q", "a", "b",
                  "parameters"}  # fmt: skip
ARGS_MACRO = "${args}"
REFUSED_MACROS = ("${args_no_hyphens}", "${args_append_hydra}", "${args_override_hydra}")
OVERLAY_SLOT = "config."
NO_OVERLAY = ("none", "null", "")


class SweepError(ValueError):
    """A sweep YAML that cannot run (the message names the file, the field and what was expected)."""


@dataclass
class SweepSpec:
    """A checked sweep YAML: ``raw`` is the mapping as written (what ``wandb sweep`` receives)."""

    path: Path
    raw: dict

    @property
    def name(self) -> str:
        return str(self.raw.get("name") or self.path.stem)

    @property
    def method(self) -> str:
        return self.raw["method"]

    @property
    def parameters(self) -> dict[str, dict]:
        return self.raw["parameters"]

    @property
    def command(self) -> list[str]:
        return [str(c) for c in self.raw["command"]]

    @property
    def metric(self) -> dict:
        return self.raw.get("metric") or {}

    @property
    def run_cap(self) -> int | None:
        return self.raw.get("run_cap")

    def overlay_slots(self) -> list[str]:
        return [k for k in self.parameters if k.startswith(OVERLAY_SLOT)]


def is_no_overlay(value) -> bool:
    return value is None or str(value).strip().lower() in NO_OVERLAY


def _fail(path: Path, field: str, message: str):
    raise SweepError(f"sweep {path}: {field}: {message}")


def _check_parameter(path: Path, name: str, spec, method: str, root: Path) -> None:
    field = f"parameters.{name}"
    if not isinstance(spec, dict):
        _fail(path, field, f"expected a mapping with value / values / distribution, got {spec!r}")
    unknown = sorted(set(spec) - PARAMETER_KEYS)
    if unknown:
        _fail(path, field, f"unknown key(s) {unknown}; expected some of {sorted(PARAMETER_KEYS)}")
    if "parameters" in spec:
        _fail(path, field, "nested parameters render as one dict-valued --key=value: give dotted keys instead")
    if "value" in spec:
        values = [spec["value"]]
    elif "values" in spec:
        values = spec["values"]
        if not isinstance(values, list) or not values:
            _fail(path, f"{field}.values", f"expected a non-empty list, got {values!r}")
        probs = spec.get("probabilities")
        if probs is not None and (not isinstance(probs, list) or len(probs) != len(values)
                                  or abs(sum(probs) - 1.0) > 1e-6):  # fmt: skip
            _fail(path, f"{field}.probabilities", f"expected {len(values)} numbers summing to 1, got {probs!r}")
    else:
        dist = spec.get("distribution") or ("int_uniform" if all(isinstance(spec.get(k), int) for k in ("min", "max"))
                                            else "uniform")  # fmt: skip
        if dist not in DISTRIBUTIONS:
            _fail(path, f"{field}.distribution", f"unknown distribution {dist!r}; expected one of {sorted(DISTRIBUTIONS)}")
        missing = [k for k in DISTRIBUTIONS[dist] if k not in spec]
        if missing:
            _fail(path, field, f"distribution {dist} needs {missing}")
        if "min" in spec and "max" in spec and not spec["min"] < spec["max"]:
            _fail(path, field, f"min {spec['min']!r} must be below max {spec['max']!r}")
        if method == "grid" and dist != "int_uniform":
            _fail(path, field, f"method grid needs value / values (or int_uniform), got distribution {dist}")
        values = []
    if name == "seed" and not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        _fail(path, field, f"seeds must be integers, got {values!r}")
    if name.startswith(OVERLAY_SLOT):
        if not values:
            _fail(path, field, "an overlay slot takes value / values (overlay YAML paths or none), not a distribution")
        for value in values:
            if is_no_overlay(value):
                continue
            file = root / str(value)
            if not file.is_file():
                _fail(path, field, f"overlay {value!r} not found (paths are relative to the folder the sweep "
                                   f"runs from, {root})")  # fmt: skip
            try:
                data = yaml.safe_load(file.read_text()) or {}
            except yaml.YAMLError as err:
                _fail(path, field, f"overlay {value!r} is not valid YAML ({err})")
            if not isinstance(data, dict) or "overlay" not in data:
                _fail(path, field, f"{value!r} is not an overlay (expected a YAML with 'overlay: <short name>')")


def _check_command(path: Path, command, root: Path) -> None:
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        _fail(path, "command", f"expected a list of strings, got {command!r}")
    for macro in REFUSED_MACROS:
        if macro in command:
            _fail(path, "command", f"{macro} renders key=value without '--' (Hydra); LightningCLI needs {ARGS_MACRO}")
    if command.count(ARGS_MACRO) != 1:
        _fail(path, "command", f"expected {ARGS_MACRO} exactly once (the agent renders it as --key=value)")
    words = [c for c in command if c != "${env}"]
    if words[:2] != ["csg", "fit"]:
        _fail(path, "command", f"expected it to run 'csg fit' (after an optional ${{env}}), got {words[:2]}")
    configs = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("--config", "-c")]
    configs += [w.split("=", 1)[1] for w in words if w.startswith("--config=")]
    if not configs:
        _fail(path, "command", "expected a recipe: '--config', 'experiments/<stage>/<recipe>.yaml'")
    for config in configs:
        if not (root / config).is_file():
            _fail(path, "command", f"--config {config} not found (relative to {root})")


def check_sweep(raw, path: Path, root: Path) -> SweepSpec:
    """Check a parsed sweep mapping; ``root`` is the folder the commands run from (the repository)."""
    if not isinstance(raw, dict):
        _fail(path, "top level", f"expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - TOP_LEVEL)
    if unknown:
        _fail(path, "top level", f"unknown key(s) {unknown}; W&B accepts {sorted(TOP_LEVEL)}")
    for key in ("program", "method", "parameters", "command"):
        if key not in raw:
            _fail(path, key, "missing (program, method, parameters and command are required)")
    if raw["method"] not in METHODS:
        _fail(path, "method", f"expected one of {list(METHODS)}, got {raw['method']!r}")
    metric = raw.get("metric")
    if metric is not None:
        if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
            _fail(path, "metric", f"expected a mapping with a name (e.g. val/loss), got {metric!r}")
        if metric.get("goal", "minimize") not in ("minimize", "maximize"):
            _fail(path, "metric.goal", f"expected minimize or maximize, got {metric.get('goal')!r}")
    elif raw["method"] == "bayes":
        _fail(path, "metric", "method bayes needs a metric to model")
    run_cap = raw.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or run_cap < 1):
        _fail(path, "run_cap", f"expected a positive integer, got {run_cap!r}")
    params = raw["parameters"]
    if not isinstance(params, dict) or not params:
        _fail(path, "parameters", f"expected a non-empty mapping of parameter name -> search constraint, got {params!r}")
    for name, spec in params.items():
        if not isinstance(name, str) or name.startswith("-") or " " in name:
            _fail(path, f"parameters.{name}", "expected a dotted LightningCLI key without leading '--'")
        _check_parameter(path, name, spec, raw["method"], root)
    _check_command(path, raw["command"], root)
    return SweepSpec(path=path, raw=raw)


def load_sweep(path: str | Path, root: str | Path = ".") -> SweepSpec:
    """Read and check the sweep YAML at ``path``; overlay and recipe paths are relative to ``root``."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep {path}: file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        raise SweepError(f"sweep {path}: {where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    return check_sweep(raw, path, Path(root))
