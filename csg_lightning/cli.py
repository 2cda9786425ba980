"""`csg`: the LightningCLI entry point (fit / validate / test / predict from experiment YAMLs).

A recipe stacks its shared layers (``layers:``, see :mod:`csg_lightning.experiment_layers`); every
run lives in ``runs/<experiment>/<run>/`` (``<experiment>``: the recipe's name + each overlay's short
name + ``seed<N>`` when ``--seed`` is given, e.g. ``skeleton-demo+target_epsilon+seed1``; ``--run``
defaults to a timestamp): the resolved ``config.yaml``, ``checkpoints/``, ``samples/`` and the
W&B files. ``runs/<experiment>/latest`` points at the newest run. W&B runs offline unless the
user sets ``WANDB_MODE``.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import torch
from lightning.pytorch import seed_everything
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from csg_lightning.experiment_layers import Stack, run_experiment_name, stack_configs
from csg_lightning.run_dir import place_run

# Known-harmless warnings that would otherwise bury the progress output of every run.
_QUIET = (
    r".*`IterableDataset` has `__len__` defined.*",  # litdata datasets know their exact length
    r".*you need to define a `flops_per_batch`.*",  # ThroughputMonitor still logs samples/s
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",
)


class RunDirSaveConfig(SaveConfigCallback):
    """Writes the resolved config to ``<run dir>/config.yaml`` whatever logger is in use."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        path = Path(trainer.default_root_dir) / self.config_filename
        path.parent.mkdir(parents=True, exist_ok=True)
        self.parser.save(self.config, str(path), skip_none=False, overwrite=True, multifile=False)


class CSGCLI(LightningCLI):
    stack = Stack(args=[])  # the overlays and whether --experiment was explicit (set by parse_arguments)

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """Every ``--config`` is checked, then preceded by its ``layers:`` (csg_lightning.experiment_layers)."""
        if args is None or isinstance(args, list):
            self.stack = stack_configs(sys.argv[1:] if args is None else [str(a) for a in args])
            args = self.stack.args
        super().parse_arguments(parser, args)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--experiment", type=str, default="default", help="runs/<experiment>/...")
        parser.add_argument("--layers", type=list[str] | None, default=None, help="YAML layers read before this file")
        parser.add_argument("--overlay", type=str | None, default=None, help="an overlay's short name (run name)")
        parser.add_argument("--seed", type=int | None, default=None, help="seed_everything, and +seed<N> in the name")
        parser.add_argument("--run", type=str, default=None, help="run name (default: a timestamp)")
        parser.add_argument("--runs_root", type=str, default="runs", help="root folder of all runs")
        parser.add_argument(
            "--torch_threads", type=int | None, default=None,
            help="torch intra-op threads (default: torch's); 1 helps next to data workers on a small CPU",
        )  # fmt: skip

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        config.layers = None  # already applied: the saved config.yaml is complete on its own
        config.overlay = "+".join(self.stack.overlays) or None
        if config.seed is not None:
            config.seed_everything = config.seed
            seed_everything(config.seed, workers=True)
        if not self.stack.explicit_experiment:
            config.experiment = run_experiment_name(config.experiment, self.stack.overlays, config.seed)
        run = config.run or os.environ.get("CSG_RUN") or time.strftime("%Y%m%d-%H%M%S")
        config.run = run
        if config.torch_threads:
            torch.set_num_threads(int(config.torch_threads))
        self.run_dir = place_run(config, Path(config.runs_root) / config.experiment / run)
        _check_resume_checkpoint(config)

    def after_fit(self) -> None:
        if not self.trainer.is_global_zero:
            return
        run_dir = Path(self.trainer.default_root_dir)
        latest = run_dir.parent / "latest"
        if latest.is_symlink() or not latest.exists():
            latest.unlink(missing_ok=True)
            latest.symlink_to(run_dir.name)
        ckpt = self.trainer.checkpoint_callback
        print(f"\nrun folder:  {run_dir}")
        if ckpt is not None:
            last = Path(ckpt.dirpath or run_dir / "checkpoints") / "last.ckpt"
            print(f"checkpoint:  {last if last.exists() else ckpt.best_model_path}")
        samples = run_dir / "samples"
        if samples.is_dir():
            print(f"samples:     {samples} ({len(list(samples.glob('*.mp4')))} mp4)")


def _check_resume_checkpoint(config) -> None:
    """``--ckpt_path FILE`` is checked before anything is built (a file that is not a safe checkpoint
    stops the run here, naming it), and checkpoints are always loaded with ``weights_only=True``."""
    if "weights_only" in config and config.weights_only is None:
        config.weights_only = True
    ckpt_path = config.get("ckpt_path") if "ckpt_path" in config else None
    if not ckpt_path or str(ckpt_path) in ("last", "best", "hpc", "registry") or "://" in str(ckpt_path):
        return
    from csg_lightning.checkpoints.safe_load import CheckpointError, load_checkpoint_file

    try:
        load_checkpoint_file(ckpt_path, what="--ckpt_path checkpoint", mmap=True)
    except (CheckpointError, FileNotFoundError) as err:
        raise SystemExit(f"csg: --ckpt_path: {err}") from None


def run(args: list[str] | None = None) -> CSGCLI:
    """Parse ``args`` (default: the command line), run the subcommand and return the CLI object."""
    if args is None or isinstance(args, list):  # bad --config files exit naming the file before LightningCLI starts
        stack_configs(sys.argv[1:] if args is None else [str(a) for a in args])
    if "WANDB_SWEEP_ID" not in os.environ:  # a `wandb agent` trial reports to its sweep's server
        os.environ.setdefault("WANDB_MODE", "offline")
    for pattern in _QUIET:
        warnings.filterwarnings("ignore", message=pattern)
    try:
        return CSGCLI(
            parser_kwargs={"parser_mode": "omegaconf"},
            save_config_callback=RunDirSaveConfig,
            save_config_kwargs={"overwrite": True, "save_to_log_dir": False},
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=args,
        )
    finally:
        _finish_wandb_run()


def _finish_wandb_run() -> None:
    """Close the W&B run of this process, so a later run in the same process starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


# `csg <tool> ...`: commands that are not LightningCLI subcommands, each a module with ``main(argv)``
# (imported only when asked for, so `csg fit` starts no faster or slower for them).
TOOLS = {
    "generate": "csg_lightning.generation.generate_cli",  # audio + photo -> video (one row or a batch)
    "sweep": "csg_lightning.sweeps.sweep_cli",  # run a sweep YAML's trials offline (--local)
    "sweep-report": "csg_lightning.sweeps.report_cli",  # one table of a sweep's trials
    "import-release": "csg_lightning.release.import_cli",  # the paper's Stage-1 checkpoint -> ours
}


def main(args: list[str] | None = None) -> None:
    """Console-script entry (returns None so the exit status is 0 on success): a tool of :data:`TOOLS`,
    else LightningCLI (fit / validate / test / predict)."""
    argv = sys.argv[1:] if args is None else [str(a) for a in args]
    if argv and argv[0] in TOOLS:
        import importlib

        importlib.import_module(TOOLS[argv[0]]).main(argv[1:])
        return
    run(args)


if __name__ == "__main__":
    main()
