#!/usr/bin/env bash
# W&B sweep agents on one machine: one agent per GPU (each trial sees one GPU through CUDA_VISIBLE_DEVICES),
# or one agent for the whole node whose trials use every GPU with Lightning DDP.
#
#   launchers/agents_per_gpu.sh ENTITY/PROJECT/SWEEP_ID                  # one agent per visible GPU
#   GPUS=0,1,2,3 COUNT=10 launchers/agents_per_gpu.sh ENTITY/PROJECT/SWEEP_ID   # these GPUs, 10 trials each
#   PER_NODE=1 launchers/agents_per_gpu.sh ENTITY/PROJECT/SWEEP_ID       # one agent, DDP over all GPUs
#
# Per-GPU trials must train on one device: the csg405 recipe asks for every GPU (--trainer.devices -1),
# which inside a one-GPU CUDA_VISIBLE_DEVICES is one. Hyper-parameters reach every DDP rank through argv;
# only rank 0 creates the W&B run. Without a W&B server use `csg sweep SWEEP.yaml --local --gpus 0,1,...`.
# CSG_DRY_RUN=1 prints the agent commands instead of running them.
set -euo pipefail
SWEEP_ID="${1:?usage: launchers/agents_per_gpu.sh ENTITY/PROJECT/SWEEP_ID}"
WANDB="${WANDB:-wandb}"
COUNT_ARGS=()
[[ -n "${COUNT:-}" ]] && COUNT_ARGS=(--count "$COUNT")
export WANDB_MODE="${WANDB_MODE:-online}"
if [[ -z "${GPUS:-}" ]]; then
    GPUS=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | paste -sd, -)
fi
if [[ -n "${PER_NODE:-}" || -z "$GPUS" ]]; then
    CMD=("$WANDB" agent "${COUNT_ARGS[@]}" "$SWEEP_ID")
    if [[ -n "${CSG_DRY_RUN:-}" ]]; then printf 'CUDA_VISIBLE_DEVICES=%s ' "${GPUS:-}"; printf '%q ' "${CMD[@]}"; echo; exit 0; fi
    [[ -n "$GPUS" ]] && export CUDA_VISIBLE_DEVICES="$GPUS"
    exec "${CMD[@]}"
fi
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true' INT TERM
IFS=, read -ra LIST <<< "$GPUS"
for gpu in "${LIST[@]}"; do
    CMD=("$WANDB" agent "${COUNT_ARGS[@]}" "$SWEEP_ID")
    if [[ -n "${CSG_DRY_RUN:-}" ]]; then printf 'CUDA_VISIBLE_DEVICES=%s ' "$gpu"; printf '%q ' "${CMD[@]}"; echo; continue; fi
    CUDA_VISIBLE_DEVICES="$gpu" "${CMD[@]}" &
    PIDS+=($!)
    echo "agent on GPU $gpu: pid ${PIDS[-1]}"
done
[[ -n "${CSG_DRY_RUN:-}" ]] && exit 0
wait "${PIDS[@]}"
