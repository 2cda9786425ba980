"""Experiment YAMLs stacked in layers, and the run name that says which layers a run was stacked from.

A recipe lists the shared fragments it builds on under ``layers:`` (paths relative to the recipe's
file, e.g. ``../base/trainer_cpu.yaml``); ``csg`` reads them as if each had been given as an earlier
``--config``, so a recipe's own values win and a later ``--config`` wins over the recipe (jsonargparse
merges mappings, replaces lists; ``callbacks+:`` appends). Layers may list layers of their own.

An overlay (``experiments/skeleton/ablations/*.yaml``) names itself with ``overlay: <short name>``.
A run is filed under ``<experiment>+<overlay>+<overlay>...`` in the order the overlays were given,
plus ``+seed<N>`` when ``--seed`` is given: ``skeleton-demo+fusion_cross_attention+target_epsilon+seed1``.
An explicit ``--experiment`` on the command line is used as it is. ``--config.<slot>=FILE`` is a
``--config`` with a name, so a W&B sweep can grid over several overlay slots (``--config.fusion=none``:
no file for that slot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from csg_lightning.io.validation import InputError, check_config_file

LAYERS_KEY = "layers"
OVERLAY_KEY = "overlay"


@dataclass
class Stack:
    """The expanded command line and what the run name needs from it."""

    args: list[str]
    overlays: list[str] = field(default_factory=list)
    explicit_experiment: bool = False


def _config_value(args: list[str], i: int) -> tuple[str | None, int]:
    """The ``--config`` value at ``args[i]`` and how many items it spans (0: not a --config)."""
    arg = args[i]
    if arg in ("--config", "-c") and i + 1 < len(args):
        return args[i + 1], 2
    if arg.startswith("--config="):
        return arg.split("=", 1)[1], 1
    if arg.startswith("--config.") and "=" in arg:  # a named slot (a sweep's overlay parameter); none: no file
        value = arg.split("=", 1)[1]
        return ("" if value.strip().lower() in ("", "none", "null") else value), 1
    return None, 0


def _is_inline(value: str) -> bool:
    return "\n" in value or value.lstrip().startswith("{")  # jsonargparse also takes inline YAML


def _read(path: Path, what: str) -> dict:
    try:
        check_config_file(path, what)
    except InputError as err:
        raise SystemExit(f"csg: {err}") from None
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:  # tags left to the config parser: no layers to read here
        return {}
    return data if isinstance(data, dict) else {}


def _expand(path: Path, what: str, seen: tuple[Path, ...]) -> tuple[list[str], list[str]]:
    """``--config`` arguments for ``path`` preceded by its layers (depth first), and the overlay names."""
    if path.resolve() in seen:
        chain = " -> ".join(str(p) for p in (*seen, path.resolve()))
        raise SystemExit(f"csg: {what} {path}: '{LAYERS_KEY}' form a cycle ({chain})")
    data = _read(path, what)
    layers = data.get(LAYERS_KEY) or []
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
        raise SystemExit(f"csg: {what} {path}: '{LAYERS_KEY}' must be a list of YAML paths, got {layers!r}")
    args: list[str] = []
    overlays: list[str] = []
    for layer in layers:
        layer_path = (path.parent / layer) if not Path(layer).is_absolute() else Path(layer)
        sub_args, sub_overlays = _expand(layer_path, f"{path}: {LAYERS_KEY} entry", (*seen, path.resolve()))
        args += sub_args
        overlays += sub_overlays
    overlay = data.get(OVERLAY_KEY)
    if overlay is not None:
        overlays += str(overlay).split("+")  # a saved config.yaml records them joined
    return args + [f"--config={path}"], overlays


def stack_configs(args: list[str]) -> Stack:
    """Check every ``--config`` file of ``args`` (a missing file, a YAML syntax error with its line or a
    top level that is not a mapping exits naming that file) and insert each file's layers before it."""
    out: list[str] = []
    overlays: list[str] = []
    explicit = False
    i = 0
    while i < len(args):
        value, span = _config_value(args, i)
        if span == 0:
            explicit = explicit or args[i] == "--experiment" or args[i].startswith("--experiment=")
            out.append(args[i])
            i += 1
            continue
        if not value and args[i].startswith("--config."):
            pass
        elif _is_inline(value):
            out += args[i : i + span]
        else:
            expanded, names = _expand(Path(value), "--config", ())
            out += expanded
            overlays += names
        i += span
    return Stack(out, overlays, explicit)


def run_experiment_name(base: str, overlays: list[str], seed: int | None) -> str:
    """``base+overlay+...`` (+ ``seed<N>`` when a seed is given). Parts ``base`` already holds are not
    repeated, so a saved ``config.yaml`` given back as ``--config`` files its run under the same name."""
    parts = base.split("+")
    for part in [*overlays] + ([f"seed{seed}"] if seed is not None else []):
        if part not in parts:
            parts.append(part)
    return "+".join(parts)
