"""``FullyShardedStrategy``: Lightning's ``ModelParallelStrategy`` with every rank in the data-parallel dimension.

``ModelParallelStrategy``'s "auto" sizes mean data parallel across nodes and tensor parallel within a node;
the video stage wants FSDP over all ranks (no tensor parallelism), whatever the number of nodes and GPUs
per node, so this strategy fixes ``data_parallel_size`` = world size and ``tensor_parallel_size`` = 1 once
the world size is known. The module's ``configure_model`` then shards with the mesh's ``data_parallel``
dimension (:mod:`~csg_lightning.video.fsdp_sharding`). Everything else (launch, SLURM/torchelastic
environments, checkpoint formats via ``save_distributed_checkpoint``) is ``ModelParallelStrategy``'s.
"""

from __future__ import annotations

from lightning.pytorch.strategies import ModelParallelStrategy


class FullyShardedStrategy(ModelParallelStrategy):
    """FSDP2 over all ranks: a 1-D data-parallel mesh of the world size."""

    def __init__(self, save_distributed_checkpoint: bool = False, **kwargs) -> None:
        kwargs.pop("data_parallel_size", None), kwargs.pop("tensor_parallel_size", None)
        super().__init__(save_distributed_checkpoint=save_distributed_checkpoint, **kwargs)

    def setup_environment(self) -> None:
        self._data_parallel_size, self._tensor_parallel_size = self.world_size, 1
        super().setup_environment()
