"""Which share of the inputs this process takes: ranks from torchrun or SLURM, a fixed partition.

A run is spread over processes and nodes by the launcher the cluster already has: ``torchrun``
sets ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``; ``srun`` sets ``SLURM_PROCID`` / ``SLURM_NTASKS`` /
``SLURM_LOCALID``. Every rank lists the same inputs and keeps its own share, assigned by a
deterministic longest-first rule on file sizes (each video goes to the rank with the least bytes
so far; ties to the lower rank), so no coordinator is needed and shares stay balanced when a few
videos are much longer than the rest. Ranks never write the same file: each video's outputs are its
own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Rank:
    """This process: ``rank`` of ``world_size``, ``local_rank`` on its node (the GPU it uses)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    source: str = "single process"

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ValueError(
                f"rank {self.rank} of world size {self.world_size} ({self.source}): expected 0 <= rank < world size"
            )


def _env_int(env: dict, name: str) -> int | None:
    value = env.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name}={value!r}: expected an integer") from None


def rank_from_env(env: dict | None = None) -> Rank:
    """torchrun's RANK / WORLD_SIZE / LOCAL_RANK, else SLURM's SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID, else 0 of 1."""
    env = os.environ if env is None else env
    for rank_var, world_var, local_var, source in (
        ("RANK", "WORLD_SIZE", "LOCAL_RANK", "torchrun"),
        ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM"),
    ):
        rank, world = _env_int(env, rank_var), _env_int(env, world_var)
        if rank is not None and world is not None:
            local = _env_int(env, local_var)
            return Rank(rank, world, 0 if local is None else local, f"{source} ({rank_var}/{world_var})")
    return Rank()


def partition(paths: list[Path], rank: int, world_size: int, sizes: list[int] | None = None) -> list[Path]:
    """This rank's share of ``paths``: longest-first greedy assignment by ``sizes`` (default: file sizes).

    Deterministic in (paths, sizes, world_size); the shares of all ranks are disjoint and cover ``paths``.
    Returned in the order of ``paths``.
    """
    if world_size == 1:
        return list(paths)
    if sizes is None:
        sizes = [p.stat().st_size if p.exists() else 0 for p in paths]
    order = sorted(range(len(paths)), key=lambda i: (-sizes[i], str(paths[i])))
    load = [0] * world_size
    owner = [0] * len(paths)
    for i in order:
        r = min(range(world_size), key=lambda k: (load[k], k))
        owner[i] = r
        load[r] += max(1, sizes[i])
    return [p for i, p in enumerate(paths) if owner[i] == rank]
