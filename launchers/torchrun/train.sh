#!/usr/bin/env bash
# Multi-GPU / multi-node `csg fit` started by torchrun (Lightning detects TorchElasticEnvironment from the
# RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / TORCHELASTIC_RUN_ID variables torchrun sets; on CPU the
# DDP strategy uses the gloo backend).
#
#   one node, 8 GPUs:   launchers/torchrun/train.sh experiments/skeleton/csg405.yaml [csg fit args...]
#   4 nodes x 8 GPUs:   on every node, the same line with the same RUN and rendezvous:
#       NNODES=4 NPROC_PER_NODE=8 RDZV_ENDPOINT=node01:29500 RUN=ablation1 \
#           launchers/torchrun/train.sh experiments/skeleton/csg405.yaml --config experiments/skeleton/ablations/target_epsilon.yaml
#   CPU (gloo), 2 processes:   ACCELERATOR=cpu NPROC_PER_NODE=2 launchers/torchrun/train.sh experiments/skeleton/demo.yaml
#
# Every rank gets the same argv, so every hyper-parameter reaches every rank; W&B starts on rank 0 only
# (Lightning's WandbLogger). RUN names the run folder on every node (default: a timestamp: give the same
# RUN on every node of a multi-node job); it reaches every rank as CSG_RUN: do not pass --run here (torchrun
# would read it as an abbreviation of its own --run-path). CSG_DRY_RUN=1 prints the command instead of running it.
set -euo pipefail
RECIPE="${1:?usage: launchers/torchrun/train.sh RECIPE.yaml [csg fit arguments...]}"
shift
NNODES="${NNODES:-1}"
NPROC_PER_NODE="${NPROC_PER_NODE:-gpu}"            # torchrun: "gpu" = every visible GPU
ACCELERATOR="${ACCELERATOR:-gpu}"
TORCHRUN="${TORCHRUN:-torchrun}"
export CSG_RUN="${RUN:-${CSG_RUN:-$(date +%Y%m%d-%H%M%S)}}"
if [[ "$NPROC_PER_NODE" == "gpu" ]]; then
    DEVICES=$(python3 -c 'import os; v=os.environ.get("CUDA_VISIBLE_DEVICES"); print(len(v.split(",")) if v else "")' 2>/dev/null)
    DEVICES="${DEVICES:-$(nvidia-smi -L 2>/dev/null | wc -l)}"
else
    DEVICES="$NPROC_PER_NODE"
fi
if [[ "$NNODES" == "1" ]]; then
    RDZV=(--standalone)
else
    RDZV=(--rdzv-backend c10d --rdzv-endpoint "${RDZV_ENDPOINT:?multi-node: set RDZV_ENDPOINT=host:port of node 0}" --rdzv-id "$CSG_RUN")
fi
CMD=("$TORCHRUN" --nnodes "$NNODES" --nproc-per-node "$NPROC_PER_NODE" "${RDZV[@]}"
     -m csg_lightning.cli fit --config "$RECIPE"
     --trainer.accelerator="$ACCELERATOR" --trainer.devices="$DEVICES" --trainer.num_nodes="$NNODES"
     --trainer.strategy=ddp "$@")
if [[ -n "${CSG_DRY_RUN:-}" ]]; then printf '%q ' "${CMD[@]}"; echo; exit 0; fi
exec "${CMD[@]}"
