"""Percentile bootstrap confidence intervals over evaluation windows, for any torchmetrics metric.

A metric's value over a set of windows is a function of its *states* (sums, counts, outer products,
lists of per-window features). :class:`WindowStates` records the states each window alone produces
(a fresh copy of the metric updated with that window only); a bootstrap resample draws windows with
replacement, combines their states the way torchmetrics combines states across processes (``sum``
states added, ``cat`` states concatenated) and calls the metric's own ``compute``. So the interval is
the metric's, whatever it computes (a ratio of sums for BC, a mean for LipSync, a Fréchet distance of the
resampled clip features for FGD), with windows as the resampling unit.

The percentile interval ``[q_(1-level)/2, q_(1+level)/2]`` of ``num_resamples`` resampled values is
returned; resamples whose value is undefined (NaN, e.g. no audio beat drawn) are left out. For pairwise
statistics (Diversity) a resample holds duplicate windows, whose pairs are at distance 0, so that interval
is biased low; it is still a fair gauge of the spread.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat, dim_zero_sum

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95


def percentile_interval(values: np.ndarray, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """[lo, hi] percentile interval of the finite ``values`` (NaN, NaN when there are none)."""
    if not 0 < level < 1:
        raise ValueError(f"bootstrap level must lie in (0, 1), got {level}")
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def resample_indices(num_items: int, num_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """[num_resamples, num_items] indices drawn with replacement (a fixed seed: the same draws every run)."""
    if num_items < 1:
        raise ValueError("bootstrap: nothing to resample (0 windows)")
    return np.random.default_rng(seed).integers(0, num_items, size=(num_resamples, num_items))


def bootstrap_mean(values, num_resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL,
                   seed: int = 0) -> tuple[float, float]:  # fmt: skip
    """Interval of the mean of per-window ``values`` [N] (NaN entries are dropped first)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    idx = resample_indices(v.size, num_resamples, seed)
    return percentile_interval(v[idx].mean(axis=1), level)


class WindowStates:
    """The states of one metric, window by window; :meth:`interval` bootstraps the metric over them.

    ``metric``: a fresh (never updated) instance; it is deep-copied for every window, so pass one that
    holds no large sub-modules by value you would not want copied (an FGD metric shares its frozen
    encoder by reference only if the encoder is not a sub-module: copies are made with ``copy.deepcopy``
    and a ``memo`` that keeps every ``nn.Module`` attribute shared).
    """

    def __init__(self, metric: Metric) -> None:
        self.template = metric
        self.windows: list[dict] = []
        self._scratch = self._fresh()

    def _fresh(self) -> Metric:
        memo = {id(m): m for m in self.template.modules() if m is not self.template}  # share sub-modules
        fresh = copy.deepcopy(self.template, memo)
        fresh.reset()
        return fresh

    def update(self, *args, **kwargs) -> None:
        """Record one window: a batch of exactly one window, the same arguments as the metric's ``update``."""
        self.record(lambda metric: metric.update(*args, **kwargs))

    def record(self, update_fn) -> None:
        """Record one window whose states ``update_fn(metric)`` produces (for metrics updated several times
        per window, e.g. FGD with the real and the generated clips)."""
        scratch = self._scratch
        scratch.reset()
        update_fn(scratch)
        state = {}
        for name in scratch._defaults:
            value = getattr(scratch, name)
            state[name] = [v.detach().clone() for v in value] if isinstance(value, list) else value.detach().clone()
        self.windows.append(state)

    def __len__(self) -> int:
        return len(self.windows)

    def _stacked(self, name: str) -> torch.Tensor:
        """[num_windows, ...] of a summed state (built once, after the last update)."""
        cache = self.__dict__.setdefault("_stack_cache", {})
        if name not in cache or cache[name].shape[0] != len(self.windows):
            cache[name] = torch.stack([w[name] for w in self.windows])
        return cache[name]

    def value(self, indices) -> float:
        """The metric computed on the windows ``indices`` (repeats allowed)."""
        metric = self._scratch
        metric.reset()
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        for name, reduce in metric._reductions.items():
            if isinstance(metric._defaults[name], list):
                setattr(metric, name, [v for i in idx.tolist() for v in self.windows[i][name]])
            elif reduce is dim_zero_sum:
                setattr(metric, name, self._stacked(name)[idx].sum(0))
            elif reduce is dim_zero_cat:
                setattr(metric, name, torch.cat([self.windows[i][name] for i in idx.tolist()]))
            else:
                raise ValueError(f"bootstrap: {type(metric).__name__}.{name} has a state reduction it cannot combine")
        try:
            value = type(metric).compute(metric)  # the raw compute, without torchmetrics' caching wrapper
        except ValueError:  # e.g. a Fréchet distance with < 2 clips
            return float("nan")
        return float(value)

    def interval(self, num_resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL,
                 seed: int = 0) -> tuple[float, float]:  # fmt: skip
        """Percentile bootstrap interval of the metric over the recorded windows."""
        if not self.windows:
            return float("nan"), float("nan")
        idx = resample_indices(len(self.windows), num_resamples, seed)
        return percentile_interval(np.array([self.value(row) for row in idx]), level)
