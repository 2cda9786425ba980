"""Rank detection (torchrun / SLURM variables) and the deterministic partition of the inputs."""

from pathlib import Path

import pytest

from csg_lightning.preprocess.partition import Rank, partition, rank_from_env


def test_rank_from_torchrun_slurm_and_nothing():
    assert rank_from_env({}) == Rank()
    r = rank_from_env({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"})
    assert (r.rank, r.world_size, r.local_rank) == (3, 8, 1) and "torchrun" in r.source
    r = rank_from_env({"SLURM_PROCID": "5", "SLURM_NTASKS": "16", "SLURM_LOCALID": "5"})
    assert (r.rank, r.world_size, r.local_rank) == (5, 16, 5) and "SLURM" in r.source
    # torchrun inside an allocation wins over the allocation's SLURM variables
    r = rank_from_env({"RANK": "1", "WORLD_SIZE": "2", "SLURM_PROCID": "0", "SLURM_NTASKS": "1"})
    assert (r.rank, r.world_size) == (1, 2)
    with pytest.raises(ValueError, match="RANK='x'"):
        rank_from_env({"RANK": "x", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="rank 2 of world size 2"):
        rank_from_env({"RANK": "2", "WORLD_SIZE": "2"})


def test_partition_is_disjoint_complete_deterministic_and_balanced():
    paths = [Path(f"v{i:02d}.mp4") for i in range(11)]
    sizes = [100, 1, 1, 1, 1, 50, 50, 1, 1, 1, 1]
    shares = [partition(paths, r, 3, sizes) for r in range(3)]
    flat = [p for s in shares for p in s]
    assert sorted(flat) == paths and len(flat) == len(set(flat))
    assert shares == [partition(paths, r, 3, sizes) for r in range(3)]
    loads = [sum(sizes[paths.index(p)] for p in s) for s in shares]
    assert max(loads) == 100  # the long video alone on one rank, the two 50s on the others
    assert sorted(loads) == [54, 54, 100]
    for share in shares:  # each share keeps the input order
        assert share == sorted(share)
    assert partition(paths, 0, 1, sizes) == paths
