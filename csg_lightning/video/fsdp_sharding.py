"""FSDP for Stage 2: the pose-guided UNet sharded block by block with FSDP2 (``fully_shard``).

:class:`UNetBlockSharding` is the ``sharding`` part of :class:`~csg_lightning.video.video_generator.VideoGenerator`
(``experiments/components/video/sharding_fsdp.yaml``). With ``trainer.strategy`` =
:class:`~csg_lightning.video.fsdp_strategy.FullyShardedStrategy` (Lightning's ``ModelParallelStrategy``, its
``data_parallel`` mesh dimension = all ranks),
the module's ``configure_model`` hands it ``net`` (UNet + PoseNet): every down/mid/up spatio-temporal block
(:data:`WRAP_CLASSES`) and the PoseNet become FSDP units, then the whole ``net`` (conv in/out, time and
class embeddings). Parameters live as DTensor shards (1/N per rank), so the optimizer state and the EMA
shadows (:class:`~csg_lightning.models.ema.EMAWeights` clones the shards) are sharded too; each unit
gathers its weights for its forward/backward only (``reshard_after_forward``). Mixed precision is FSDP2's
``MixedPrecisionPolicy``: weights gathered and computed in ``param_dtype`` (bf16), gradients reduced in
``reduce_dtype`` (fp32), master weights fp32; so the trainer runs at ``precision: 32-true``. Activation
checkpointing stays the module's ``gradient_checkpointing`` (res-blocks, spatial and temporal
transformer blocks). The frozen VAE and CLIP are outside ``net``: replicated, bf16 (``frozen_dtype``).

Checkpoints: ``save_distributed_checkpoint=False`` writes one ordinary ``.ckpt`` from
rank 0 (full state dict, the EMA weights gathered), which ``VideoGenerator.load_from_checkpoint`` loads on
one device for generation; ``True`` writes a sharded folder (faster at scale) that resumes on the same
number of ranks. Under any other strategy the part does nothing (no device mesh), so one recipe field
switches FSDP on and off.
"""

from __future__ import annotations

from torch import nn

from csg_lightning.video.dtypes import resolve_dtype

WRAP_CLASSES = (
    "CrossAttnDownBlockSpatioTemporal",
    "DownBlockSpatioTemporal",
    "UNetMidBlockSpatioTemporal",
    "UpBlockSpatioTemporal",
    "CrossAttnUpBlockSpatioTemporal",
)


def wrap_classes() -> tuple[type[nn.Module], ...]:
    """The diffusers block classes sharded one by one (:data:`WRAP_CLASSES`)."""
    from diffusers.models.unets import unet_3d_blocks

    return tuple(getattr(unet_3d_blocks, name) for name in WRAP_CLASSES)


class UNetBlockSharding:
    """``fully_shard`` per UNet block + PoseNet + root, with a bf16/fp32 mixed-precision policy."""

    def __init__(
        self,
        param_dtype: str = "bfloat16",
        reduce_dtype: str = "float32",
        reshard_after_forward: bool = True,
        mesh_dim: str = "data_parallel",
    ) -> None:
        self.param_dtype = resolve_dtype(param_dtype, "sharding.param_dtype")
        self.reduce_dtype = resolve_dtype(reduce_dtype, "sharding.reduce_dtype")
        self.reshard_after_forward = bool(reshard_after_forward)
        self.mesh_dim = mesh_dim

    def units(self, net: nn.Module) -> list[nn.Module]:
        """The modules that become FSDP units, innermost first (the root ``net`` last)."""
        classes = wrap_classes()
        blocks = [m for m in net.unet.modules() if isinstance(m, classes)]
        return [*blocks, net.pose_net, net]

    def __call__(self, net: nn.Module, device_mesh) -> nn.Module:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        if self.mesh_dim not in (device_mesh.mesh_dim_names or ()):
            raise ValueError(
                f"UNetBlockSharding: the device mesh has dimensions {device_mesh.mesh_dim_names}, "
                f"expected {self.mesh_dim!r} (ModelParallelStrategy's data-parallel dimension)"
            )
        mesh = device_mesh[self.mesh_dim]
        policy = MixedPrecisionPolicy(param_dtype=self.param_dtype, reduce_dtype=self.reduce_dtype)
        for unit in self.units(net):
            fully_shard(unit, mesh=mesh, mp_policy=policy, reshard_after_forward=self.reshard_after_forward)
        return net


def is_sharded(module: nn.Module) -> bool:
    """True when any parameter of ``module`` is a DTensor (FSDP2-sharded)."""
    return any(hasattr(p, "placements") for p in module.parameters())


def local_numel(module: nn.Module) -> int:
    """Elements of ``module``'s parameters held by this rank (its shards)."""
    return sum((p.to_local() if hasattr(p, "to_local") else p).numel() for p in module.parameters())

