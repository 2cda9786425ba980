"""A sweep's trials, expanded here as a W&B server would, and each trial's ``csg fit`` command line.

``grid``: every combination of the parameters' values, in the YAML's order with the last parameter
varying fastest (put ``seed`` last and the first trials are one configuration over all its seeds).
``random`` (and ``bayes``, which needs a server to model the metric: run locally, it samples at
random): ``max_trials`` (or the sweep's ``run_cap``) draws from a ``random.Random(seed)``, so a local
sweep is the same on every machine; repeated draws of a discrete space are dropped.

``${args}`` renders exactly as the W&B agent renders it (``wandb/sdk/launch/sweeps/utils.py``):
``--<key>=<str(value)>`` per parameter, in order.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

from csg_lightning.sweeps.sweep_spec import ARGS_MACRO, SweepError, SweepSpec


@dataclass(frozen=True)
class Trial:
    index: int  # 0-based position in the expansion
    params: dict  # parameter name -> value (YAML order)


def render_args(params: dict) -> list[str]:
    """``${args}``: ``--key=value`` per parameter, as the W&B agent writes it (values through ``str``)."""
    return [f"--{key}={value}" for key, value in params.items()]


def trial_command(spec: SweepSpec, params: dict) -> list[str]:
    """The sweep's ``command`` with ``${args}`` rendered and ``${env}`` dropped: ``["csg", "fit", ...]``."""
    out: list[str] = []
    for word in spec.command:
        if word == ARGS_MACRO:
            out += render_args(params)
        elif word != "${env}":
            out.append(word)
    return out


def _grid_values(spec: SweepSpec, name: str) -> list:
    p = spec.parameters[name]
    if "value" in p:
        return [p["value"]]
    if "values" in p:
        return list(p["values"])
    return list(range(int(p["min"]), int(p["max"]) + 1))  # int_uniform (the only distribution grid takes)


def _sample(p: dict, rng: random.Random, where: str):
    if "value" in p:
        return p["value"]
    if "values" in p:
        return rng.choices(p["values"], weights=p.get("probabilities"))[0]
    dist = p.get("distribution") or ("int_uniform" if all(isinstance(p.get(k), int) for k in ("min", "max"))
                                     else "uniform")  # fmt: skip
    lo, hi, q = p.get("min"), p.get("max"), p.get("q", 1.0)
    mu, sigma = p.get("mu", 0.0), p.get("sigma", 1.0)
    if dist == "int_uniform":
        return rng.randint(int(lo), int(hi))
    draws = {
        "uniform": lambda: rng.uniform(lo, hi),
        "q_uniform": lambda: round(rng.uniform(lo, hi) / q) * q,
        "log_uniform": lambda: math.exp(rng.uniform(lo, hi)),  # min/max are natural logs
        "log_uniform_values": lambda: math.exp(rng.uniform(math.log(lo), math.log(hi))),
        "q_log_uniform_values": lambda: round(math.exp(rng.uniform(math.log(lo), math.log(hi))) / q) * q,
        "inv_log_uniform_values": lambda: 1.0 / math.exp(rng.uniform(math.log(1.0 / hi), math.log(1.0 / lo))),
        "normal": lambda: rng.gauss(mu, sigma),
        "q_normal": lambda: round(rng.gauss(mu, sigma) / q) * q,
        "log_normal": lambda: math.exp(rng.gauss(mu, sigma)),
    }
    if dist not in draws:
        raise SweepError(f"{where}: distribution {dist} is not sampled by csg sweep --local "
                         f"(supported: values, int_uniform, {', '.join(draws)})")  # fmt: skip
    return draws[dist]()


def _is_discrete(spec: SweepSpec) -> bool:
    return all("value" in p or "values" in p or (p.get("distribution") or "int_uniform") == "int_uniform"
               and isinstance(p.get("min", 0), int) for p in spec.parameters.values())  # fmt: skip


def expand(spec: SweepSpec, seed: int = 0, max_trials: int | None = None) -> list[Trial]:
    """The trials of ``spec``: the whole grid (or its first ``max_trials``), or ``max_trials`` random draws."""
    if max_trials is not None and max_trials < 1:
        raise SweepError(f"--max-trials: expected a positive number, got {max_trials}")
    names = list(spec.parameters)
    if spec.method == "grid":
        combos = itertools.product(*(_grid_values(spec, n) for n in names))
        limit = max_trials if max_trials is not None else spec.run_cap
        combos = itertools.islice(combos, limit) if limit is not None else combos
        return [Trial(i, dict(zip(names, combo, strict=True))) for i, combo in enumerate(combos)]
    count = max_trials if max_trials is not None else spec.run_cap
    if count is None:
        raise SweepError(f"sweep {spec.path}: method {spec.method} has no end: give --max-trials N or run_cap")
    rng = random.Random(seed)
    trials: list[Trial] = []
    seen: set[tuple] = set()
    discrete = _is_discrete(spec)
    for _ in range(count * 50 if discrete else count):
        params = {n: _sample(spec.parameters[n], rng, f"sweep {spec.path}: parameters.{n}") for n in names}
        key = tuple(repr(v) for v in params.values())
        if discrete and key in seen:
            continue
        seen.add(key)
        trials.append(Trial(len(trials), params))
        if len(trials) == count:
            break
    return trials
