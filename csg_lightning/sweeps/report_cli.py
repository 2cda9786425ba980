"""`csg sweep-report`: one table of a sweep's trials (mean ± std over seeds), as .md + .csv + a plot.

    csg sweep-report runs --sweep ablations-demo                  # every trial of that sweep under runs/
    csg sweep-report runs/skeleton-demo+target_epsilon+seed0/ablations-demo ...   # given run folders
        [--eval-root runs/eval] [--metrics val/loss,FGD,BC] [--metric val/loss --goal minimize] [--out DIR]

Default output folder: ``<first path>/sweep-report[-<sweep>]/``. The table is also printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from csg_lightning.sweeps.report import collect, write_sweep_report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="csg sweep-report", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders, or folders holding them (searched recursively)")
    parser.add_argument("--sweep", default=None, help="only the trials of this sweep (its name)")
    parser.add_argument("--eval-root", action="append", default=[],
                        help="folder of csg-eval reports (report.json) to match to runs by checkpoint path")  # fmt: skip
    parser.add_argument("--metrics", default=None, help="comma list of columns (default: val/loss, FGD, BC, ... found)")
    parser.add_argument("--metric", default="val/loss", help="the metric marked best and plotted (default val/loss)")
    parser.add_argument("--goal", choices=("minimize", "maximize"), default="minimize")
    parser.add_argument("--out", default=None, help="output folder")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        trials = collect(args.runs, sweep=args.sweep, eval_roots=args.eval_root)
    except FileNotFoundError as err:
        raise SystemExit(str(err)) from None
    if not trials:
        what = f" of sweep {args.sweep}" if args.sweep else ""
        raise SystemExit(f"csg sweep-report: no trials{what} under {' '.join(args.runs)} "
                         "(a trial is a run folder with sweep-trial.json or metrics.json)")  # fmt: skip
    metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
    out = Path(args.out) if args.out else Path(args.runs[0]) / ("sweep-report" + (f"-{args.sweep}" if args.sweep else ""))
    table = write_sweep_report(out, trials, metrics, primary=args.metric, goal=args.goal,
                               title=f"Sweep {args.sweep or ''}".strip())  # fmt: skip
    print(table)
    print(f"\n{len(trials)} trial(s) -> {out}/sweep-report.md, sweep-report.csv, sweep-trials.csv, sweep-report.png")
