"""`csg sweep`: check a W&B sweep YAML, print its trials' commands, or run them here without a server.

    csg sweep experiments/sweeps/ablations-demo.yaml                 # check it, print the wandb commands
    csg sweep experiments/sweeps/ablations-demo.yaml --list          # the csg fit command of every trial
    csg sweep experiments/sweeps/ablations-demo.yaml --local [--max-trials N] [--parallel N | --gpus 0,1]
        [--seed S] [--force] [-- extra csg fit arguments for every trial]

``--local`` runs the trials one after another (or N at a time), W&B offline, each in
``runs/<recipe>+<overlays>+seed<N>/<sweep name>/``; finished trials are skipped on a re-run. Then
``csg sweep-report runs --sweep <name>`` tabulates them.
"""

from __future__ import annotations

import argparse
import shlex

from csg_lightning.sweeps.expand import expand
from csg_lightning.sweeps.local_runner import plan, run_local
from csg_lightning.sweeps.sweep_spec import SweepError, load_sweep


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csg sweep", description=__doc__.split("\n")[0])
    parser.add_argument("sweep", help="W&B sweep YAML (experiments/sweeps/*.yaml)")
    parser.add_argument("--local", action="store_true", help="run the trials here (no W&B server)")
    parser.add_argument("--list", action="store_true", help="print every trial's csg command and run folder")
    parser.add_argument("--max-trials", type=int, default=None, help="the first N grid trials / N random draws")
    parser.add_argument("--seed", type=int, default=0, help="seed of random / bayes draws (default 0)")
    parser.add_argument("--parallel", type=int, default=1, help="trials at a time (default 1)")
    parser.add_argument("--gpus", default=None, help="comma list, one trial per entry: CUDA_VISIBLE_DEVICES of each slot")
    parser.add_argument("--force", action="store_true", help="run finished trials again")
    return parser


def agent_instructions(path: str) -> str:
    return "\n".join([
        f"create the sweep (a W&B server and `wandb login` needed):  wandb sweep {path}",
        "then on each GPU node (one agent per GPU, or one per node using all its GPUs):",
        "  launchers/agents_per_gpu.sh ENTITY/PROJECT/SWEEP_ID      (or: wandb agent --count 1 ENTITY/PROJECT/SWEEP_ID)",
        f"without a server:  csg sweep {path} --local [--max-trials N] [-- extra csg fit arguments]",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    argv = list(argv or [])
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    args = build_parser().parse_args(argv)
    if args.parallel < 1:
        raise SystemExit(f"csg sweep: --parallel: expected a positive number, got {args.parallel}")
    try:
        spec = load_sweep(args.sweep)
        trials = expand(spec, seed=args.seed, max_trials=args.max_trials)
        planned = plan(spec, trials, extra)
    except SweepError as err:
        raise SystemExit(f"csg sweep: {err}") from None
    print(f"sweep {spec.name}: method {spec.method}, {len(trials)} trial(s), metric {spec.metric.get('name', '-')}")
    if args.list or not args.local:
        shown = planned if args.list or args.local else planned[:3]
        for p in shown:
            print(f"  {p.run_dir}\n    {shlex.join(['csg', *p.argv])}")
    if not args.local:
        if len(shown) < len(planned):
            print(f"  ... {len(planned) - len(shown)} more (--list shows every trial)")
        print(agent_instructions(args.sweep))
        return
    if spec.method == "bayes":
        print("note: bayes needs a W&B server to model the metric; --local draws these trials at random")
    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else None
    result = run_local(spec, planned, parallel=args.parallel, gpus=gpus, force=args.force)
    runs_root = planned[0].run_dir.parent.parent if planned else "runs"
    print(f"sweep {spec.name}: {len(result['done'])} done, {len(result['skipped'])} skipped (finished before), "
          f"{len(result['failed'])} failed")  # fmt: skip
    print(f"table:  csg sweep-report {runs_root} --sweep {spec.name}")
    if result["failed"]:
        raise SystemExit(1)
