"""The launch templates (launchers/), tested as far as a CPU machine allows.

* Lightning's real SLURMEnvironment / TorchElasticEnvironment are detected (or, for the sweep array, not
  detected) from the variables SLURM / torchrun set for the commands the templates print (``CSG_DRY_RUN=1``),
  and the trainer's device / node counts the templates pass agree with them;
* the per-GPU agent launcher gives each agent one GPU;
* (slow) the torchrun template starts a real 2-process gloo `csg fit`; the SLURM template's command,
  started twice with the variables srun gives its two tasks, trains as a 2-rank SLURM DDP job. Both
  stack an overlay that changes the network (DDP checks that every rank built the same parameters) and
  leave exactly one W&B run (rank 0's).
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from experiment_catalog import ROOT
from lightning.fabric.plugins.environments import (
    LightningEnvironment,
    SLURMEnvironment,
    TorchElasticEnvironment,
)
from lightning.pytorch import Trainer
from lightning_utilities.core.rank_zero import rank_zero_only
from test_sweeps import tiny_trial_args

LAUNCHERS = ROOT / "launchers"
SLURM_KEYS = [k for k in os.environ if k.startswith(("SLURM_", "TORCHELASTIC_", "PMI_", "OMPI_"))]
OVERLAY = "experiments/skeleton/ablations/fusion_cross_attention.yaml"  # adds cross-attention weights
TRIAL_METRICS = "--trainer.callbacks+=csg_lightning.sweeps.trial_metrics.TrialMetrics"


def _dry_run(script: Path, args: list[str], env: dict) -> list[str]:
    """The command a template would run (it prints it under CSG_DRY_RUN=1)."""
    clean = {k: v for k, v in os.environ.items() if k not in SLURM_KEYS}
    out = subprocess.run(["bash", str(script), *args], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**clean, **env, "CSG_DRY_RUN": "1"}).stdout  # fmt: skip
    return shlex.split(out.strip().splitlines()[-1])


def _arg(command: list[str], key: str) -> str:
    return next(a.split("=", 1)[1] for a in command if a.startswith(key + "="))


def _sbatch(script: Path, option: str) -> str:
    return re.search(rf"^#SBATCH --{option}=(\S+)", script.read_text(), re.M).group(1)


def _trainer(monkeypatch, env: dict, devices: int, num_nodes: int) -> Trainer:
    # a DDP Trainer sets the process-wide rank_zero_only.rank to its global rank and a later single-device
    # Trainer does not reset it: restore it after the test, or every later rank-zero-only call (loggers!) is
    # silently skipped in this process
    monkeypatch.setattr(rank_zero_only, "rank", getattr(rank_zero_only, "rank", 0))
    for key in SLURM_KEYS + ["RANK", "WORLD_SIZE", "LOCAL_RANK", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT"]:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, str(value))
    return Trainer(accelerator="cpu", devices=devices, num_nodes=num_nodes, strategy="ddp", logger=False,
                   enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)  # fmt: skip


def _srun_env(nodes: int, per_node: int, rank: int, job_id: int = 4242, name: str = "csg-train") -> dict:
    """What srun sets for task ``rank`` of a ``nodes`` x ``per_node`` step."""
    return {"SLURM_JOB_ID": job_id, "SLURM_JOB_NAME": name, "SLURM_NNODES": nodes, "SLURM_NTASKS": nodes * per_node,
            "SLURM_NTASKS_PER_NODE": per_node, "SLURM_TASKS_PER_NODE": f"{per_node}(x{nodes})",
            "SLURM_PROCID": rank, "SLURM_LOCALID": rank % per_node, "SLURM_NODEID": rank // per_node,
            "SLURM_NODELIST": "gpu[01-04]" if nodes > 1 else "127.0.0.1", "SLURM_CPUS_PER_TASK": 1}  # fmt: skip


def test_multinode_template_matches_what_lightning_reads_from_slurm(monkeypatch):
    script = LAUNCHERS / "slurm" / "train_multinode.sbatch"
    nodes, per_node = int(_sbatch(script, "nodes")), int(_sbatch(script, "ntasks-per-node"))
    assert per_node == int(_sbatch(script, "gpus-per-node")), "one task per GPU"
    env = _srun_env(nodes, per_node, rank=per_node + 1)
    command = _dry_run(script, ["experiments/skeleton/csg405.yaml", "--seed", "1"], {k: str(v) for k, v in env.items()})
    assert command[:2] == ["srun", "--kill-on-bad-exit=1"] and command[3] == "fit"
    assert _arg(command, "--run") == "4242" and "--ckpt_path=last" in command and command[-2:] == ["--seed", "1"]
    devices, num_nodes = int(_arg(command, "--trainer.devices")), int(_arg(command, "--trainer.num_nodes"))
    assert (devices, num_nodes) == (per_node, nodes)
    trainer = _trainer(monkeypatch, env, devices, num_nodes)
    cluster = trainer.strategy.cluster_environment
    assert isinstance(cluster, SLURMEnvironment)
    assert (cluster.world_size(), trainer.global_rank, trainer.local_rank, trainer.node_rank) == (nodes * per_node,
                                                                                                  per_node + 1, 1, 1)  # fmt: skip
    assert cluster.main_address == "gpu01"
    assert trainer.num_devices * trainer.num_nodes == cluster.world_size()  # one process per srun task


def test_sweep_array_template_leaves_the_ddp_ranks_to_lightning(monkeypatch, tmp_path):
    script = LAUNCHERS / "slurm" / "sweep_array.sbatch"
    assert _sbatch(script, "ntasks-per-node") == "1" and _sbatch(script, "nodes") == "1"
    dump = tmp_path / "agent.json"  # stands in for the wandb binary: records what the template hands the agent
    agent = tmp_path / "wandb"
    agent.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                     f"json.dump({{'argv': sys.argv[1:], 'env': dict(os.environ)}}, open({str(dump)!r}, 'w'))\n")  # fmt: skip
    agent.chmod(0o755)
    sbatch_env = {**_srun_env(1, 1, 0, name="csg-sweep"), "SLURM_ARRAY_JOB_ID": 7, "SLURM_ARRAY_TASK_ID": 3}
    clean = {k: v for k, v in os.environ.items() if k not in SLURM_KEYS and k != "WANDB_MODE"}
    subprocess.run(["bash", str(script), "me/csg/abc123"], cwd=ROOT, check=True, capture_output=True,
                   env={**clean, **{k: str(v) for k, v in sbatch_env.items()}, "WANDB": str(agent)})  # fmt: skip
    seen = json.loads(dump.read_text())
    assert seen["argv"] == ["agent", "--count", "1", "me/csg/abc123"]
    assert seen["env"]["WANDB_MODE"] == "online" and seen["env"]["CSG_RUN"] == "7_3"
    assert seen["env"]["PATH"].split(":")[0] == str(ROOT / ".venv" / "bin")
    env = {k: v for k, v in seen["env"].items() if k.startswith("SLURM_")}
    trainer = _trainer(monkeypatch, env, devices=2, num_nodes=1)  # the trial: DDP over the node's devices
    assert isinstance(trainer.strategy.cluster_environment, LightningEnvironment)
    assert not trainer.strategy.cluster_environment.creates_processes_externally  # Lightning starts the ranks
    # without the template's export Lightning takes the one SLURM task for the world and starts no ranks
    unexported = _trainer(monkeypatch, {**env, "SLURM_JOB_NAME": "csg-sweep"}, devices=2, num_nodes=1)
    assert isinstance(unexported.strategy.cluster_environment, SLURMEnvironment)
    assert unexported.strategy.cluster_environment.creates_processes_externally


def test_torchrun_template_matches_what_lightning_reads_from_torchelastic(monkeypatch):
    command = _dry_run(LAUNCHERS / "torchrun" / "train.sh", ["experiments/skeleton/demo.yaml"],
                       {"ACCELERATOR": "cpu", "NPROC_PER_NODE": "2", "RUN": "r1"})  # fmt: skip
    assert command[:6] == ["torchrun", "--nnodes", "1", "--nproc-per-node", "2", "--standalone"]
    assert command[6:9] == ["-m", "csg_lightning.cli", "fit"] and not any(a.startswith("--run") for a in command)
    devices, num_nodes = int(_arg(command, "--trainer.devices")), int(_arg(command, "--trainer.num_nodes"))
    env = {"RANK": 1, "LOCAL_RANK": 1, "WORLD_SIZE": 2, "GROUP_RANK": 0, "LOCAL_WORLD_SIZE": 2,
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": 29511, "TORCHELASTIC_RUN_ID": "r1"}  # what torchrun sets
    trainer = _trainer(monkeypatch, env, devices, num_nodes)
    assert isinstance(trainer.strategy.cluster_environment, TorchElasticEnvironment)
    assert (trainer.world_size, trainer.global_rank, trainer.local_rank) == (2, 1, 1)
    multi = _dry_run(LAUNCHERS / "torchrun" / "train.sh", ["experiments/skeleton/csg405.yaml"],
                     {"NNODES": "4", "NPROC_PER_NODE": "8", "RDZV_ENDPOINT": "node01:29500", "RUN": "big"})  # fmt: skip
    assert multi[multi.index("--rdzv-endpoint") + 1] == "node01:29500" and _arg(multi, "--trainer.num_nodes") == "4"


def test_agents_per_gpu_gives_every_agent_one_gpu():
    lines = subprocess.run(["bash", str(LAUNCHERS / "agents_per_gpu.sh"), "me/csg/abc"], cwd=ROOT, check=True,
                           capture_output=True, text=True,
                           env={**os.environ, "GPUS": "0,1,2", "COUNT": "5", "CSG_DRY_RUN": "1"}).stdout.splitlines()  # fmt: skip
    lines = [line.strip() for line in lines]
    assert lines == [f"CUDA_VISIBLE_DEVICES={g} wandb agent --count 5 me/csg/abc" for g in range(3)]
    node = subprocess.run(["bash", str(LAUNCHERS / "agents_per_gpu.sh"), "me/csg/abc"], cwd=ROOT, check=True,
                          capture_output=True, text=True,
                          env={**os.environ, "GPUS": "0,1", "PER_NODE": "1", "CSG_DRY_RUN": "1"}).stdout  # fmt: skip
    assert node.strip() == "CUDA_VISIBLE_DEVICES=0,1 wandb agent me/csg/abc"


def _check_two_rank_run(run_dir: Path) -> None:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_step"] == 2
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 2
    assert any("cross_attention" in k or "attn" in k for k in ckpt["state_dict"]), "the overlay did not apply"
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1, "W&B must start on rank 0 only"


def _fit_args(shards: Path, runs: Path) -> list[str]:
    args = [a for a in tiny_trial_args(shards, runs) if not a.startswith(("--trainer.devices", "--trainer.strategy",
                                                                          "--trainer.accelerator"))]  # fmt: skip
    return [*args, "--trainer.max_steps=2", "--data.init_args.batch_size=1", "--config", OVERLAY, "--seed", "3",
            TRIAL_METRICS]  # fmt: skip


@pytest.mark.slow
def test_torchrun_template_starts_a_two_process_gloo_fit(demo_shards, tmp_path):
    env = {**os.environ, "ACCELERATOR": "cpu", "NPROC_PER_NODE": "2", "RUN": "torchrun", "OMP_NUM_THREADS": "1",
           "WANDB_MODE": "offline", "TORCHRUN": str(Path(sys.executable).parent / "torchrun")}  # fmt: skip
    began = time.monotonic()
    result = subprocess.run(["bash", str(LAUNCHERS / "torchrun" / "train.sh"), "experiments/skeleton/demo.yaml",
                             *_fit_args(demo_shards, tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    _check_two_rank_run(tmp_path / "skeleton-demo+fusion_cross_attention+seed3" / "torchrun")
    print(f"torchrun 2 x gloo: {time.monotonic() - began:.0f} s")


@pytest.mark.slow
def test_slurm_template_command_trains_as_two_srun_tasks(demo_shards, tmp_path):
    script = LAUNCHERS / "slurm" / "train_multinode.sbatch"
    job = random.randint(1000, 9999)  # SLURMEnvironment derives MASTER_PORT from the job id
    step = {k: str(v) for k, v in _srun_env(1, 2, 0, job_id=job).items()}
    command = _dry_run(script, ["experiments/skeleton/demo.yaml", "--trainer.accelerator=cpu",
                                *_fit_args(demo_shards, tmp_path)], {**step, "CSG": str(Path(sys.executable).parent / "csg")})  # fmt: skip
    task = command[2:]  # what srun runs on every task
    assert _arg(task, "--trainer.devices") == "2" and _arg(task, "--run") == str(job)
    clean = {k: v for k, v in os.environ.items() if k not in SLURM_KEYS}
    began = time.monotonic()
    procs = []
    for rank in (0, 1):
        env = {**clean, **{k: str(v) for k, v in _srun_env(1, 2, rank, job_id=job).items()},
               "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}  # fmt: skip
        procs.append(subprocess.Popen(task, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))  # fmt: skip
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    _check_two_rank_run(tmp_path / "skeleton-demo+fusion_cross_attention+seed3" / str(job))
    print(f"srun-style 2 tasks: {time.monotonic() - began:.0f} s")
