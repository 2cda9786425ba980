"""Every YAML under experiments/ and callbacks/, sorted into what it is (found by glob, never listed by hand).

* recipe:    has ``experiment:``; ``csg fit --config <recipe>`` trains it (tests/test_experiments.py,
             tests/test_video_experiments.py train each one for a step).
* overlay:   has ``overlay: <short name>``; stacked on every recipe of its stage folder
             (``experiments/skeleton/ablations/x.yaml`` -> the recipes in ``experiments/skeleton/``).
* layer:     ``experiments/base/*.yaml``: named under some recipe's ``layers:``.
* component: ``experiments/components/**``: named by path from some recipe / layer / component, or a
             ``class_path`` fragment validated on its own.
* callback:  ``callbacks/*.yaml``: named by path from some recipe or layer, and validated on its own.
* sweep:     ``experiments/sweeps/*.yaml``: W&B sweep YAMLs (tests/test_sweeps.py checks and expands each).
* tool:      the configs of other commands (``csg-data preprocess``, the pose estimators).
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
CALLBACKS = ROOT / "callbacks"
TOOL_FOLDERS = ("data", "pose", "pipeline")  # experiments/<folder>/: configs of other commands than `csg`
# The one command-line override that shrinks the Stage-1 network of a recipe (tests and drills use it):
# the tiny denoiser fragment (width 32, 1 layer) in place of the recipe's.
TINY_SKELETON_MODEL = [f"--model.init_args.denoiser={ROOT / 'experiments/components/skeleton/denoiser/tiny.yaml'}"]


def all_yamls() -> list[Path]:
    return sorted(EXPERIMENTS.glob("**/*.yaml")) + sorted(CALLBACKS.glob("*.yaml"))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def kind(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    if rel[0] == "callbacks":
        return "callback"
    if rel[1] == "base":
        return "layer"
    if rel[1] == "components":
        return "component"
    if rel[1] in TOOL_FOLDERS:
        return "tool"
    if rel[1] == "sweeps":  # W&B sweep YAMLs: checked and expanded by tests/test_sweeps.py
        return "sweep"
    data = load(path)
    if "overlay" in data:
        return "overlay"
    if "experiment" in data:
        return "recipe"
    return "unknown"


def of_kind(name: str) -> list[Path]:
    return [p for p in all_yamls() if kind(p) == name]


def named_class(path: Path, key: str) -> str | None:
    """The class (short name) that a YAML's ``key`` (model / data) names, or the first of its layers that names
    one (layers in order, depth first), else None."""
    todo = [path]
    while todo:
        current = todo.pop(0)
        data = load(current)
        part = data.get(key)
        if isinstance(part, dict) and part.get("class_path"):
            return str(part["class_path"]).rsplit(".", 1)[-1]
        todo = [(current.parent / layer).resolve() for layer in data.get("layers", [])] + todo
    return None


def model_class(recipe: Path) -> str:
    name = named_class(recipe, "model")
    if name is None:
        raise AssertionError(f"{recipe}: no model.class_path in it or its layers")
    return name


def data_class(recipe: Path) -> str | None:
    """The datamodule class a recipe trains on."""
    return named_class(recipe, "data")


def overlay_model_class(overlay: Path) -> str | None:
    """The model class an overlay (or one of its layers) names, if any: it only stacks on recipes of that model."""
    return named_class(overlay, "model")


def bases_of(overlay: Path) -> list[Path]:
    """The recipes an overlay stacks on: those of its stage folder (the overlay folder's parent), of the
    overlay's model class when it names one (an FSDP overlay of VideoGenerator does not stack on the VAE recipe)."""
    wanted = overlay_model_class(overlay)
    return sorted(p for p in overlay.parent.parent.glob("*.yaml")
                  if kind(p) == "recipe" and wanted in (None, model_class(p)))  # fmt: skip


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def referenced_files(path: Path) -> set[Path]:
    """YAML files named by path (relative to ``path``'s folder) anywhere in ``path``, transitively."""
    found: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        for text in _strings(load(current)):
            if not text.endswith((".yaml", ".yml")):
                continue
            target = (current.parent / text).resolve()
            if target.is_file() and target not in found:
                found.add(target)
                todo.append(target)
    return found


def reachable_from_recipes() -> set[Path]:
    reached: set[Path] = set()
    for recipe in of_kind("recipe") + of_kind("overlay"):
        reached |= referenced_files(recipe)
    return reached


def check_class_fragment(path: Path) -> None:
    """A ``class_path`` + ``init_args`` fragment: the class imports and takes every init arg by name."""
    data = load(path)
    assert "class_path" in data, f"{path}: expected a class_path entry"
    module, _, name = str(data["class_path"]).rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    params = inspect.signature(cls).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key in data.get("init_args") or {}:
        assert takes_kwargs or key in params, f"{path}: {cls.__name__} takes no argument {key!r}"


def leaves(node, keys=()):
    """(key path, value) of every leaf of a nested dict (an overlay's settings, to find in a resolved config)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*keys, key))
    else:
        yield keys, node
