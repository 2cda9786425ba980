"""The results of a sweep in one place: every trial's final metrics, averaged over seeds, as a paper's table.

A trial is a run folder. Its label (the configuration without the seed) and seed come from its
``sweep-trial.json`` (written by ``csg sweep --local``), else from its ``config.yaml`` (the experiment
name without ``+seed<N>``; runs of ``wandb agent`` or plain ``csg fit``). Its metrics, later sources
winning: the W&B summary (``wandb/*run-*/files/wandb-summary.json``, where W&B wrote one: online
runs), ``metrics.json`` (``TrialMetrics``: last logged ``val/loss``, ``train/loss`` ...), and the
``model`` row of an evaluation report (``csg-eval skeleton --out <run>/eval``, or any ``report.json``
under ``eval_roots`` whose ``meta.checkpoint`` lies in the run folder): FGD, BC, Diversity ...

:func:`write_sweep_report` writes ``sweep-report.md`` (mean ± std over seeds, sample std), ``sweep-report.csv``
(one row per configuration), ``sweep-trials.csv`` (one row per trial) and ``sweep-report.png``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from csg_lightning.evaluation.report import METRIC_NOTES
from csg_lightning.io.atomic import atomic_path
from csg_lightning.sweeps.local_runner import MARKER
from csg_lightning.sweeps.trial_metrics import METRICS_FILE

EVAL_ROW = "model"
_SEED = re.compile(r"\+seed(-?\d+)$")


@dataclass
class TrialResult:
    run_dir: Path
    label: str
    seed: int | None
    sweep: str | None = None
    index: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _numbers(d: dict) -> dict[str, float]:
    out = {}
    for key, value in d.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not str(key).startswith("_"):
            out[str(key)] = float(value)
    return out


def _is_run_dir(path: Path) -> bool:
    return any((path / name).is_file() for name in (MARKER, METRICS_FILE))


def _run_dirs(paths: list[Path]) -> list[Path]:
    found: dict[Path, Path] = {}
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"csg sweep-report: {path}: no such run folder or folder of runs")
        candidates = [path] if _is_run_dir(path) else []
        if not candidates:
            for name in (MARKER, METRICS_FILE):
                for hit in sorted(path.rglob(name)):
                    if not any(part == "latest" or part == "wandb" for part in hit.relative_to(path).parts[:-1]):
                        candidates.append(hit.parent)
        for run_dir in candidates:
            found.setdefault(run_dir.resolve(), run_dir)
    return list(found.values())


def _eval_reports(eval_roots: list[Path]) -> list[tuple[Path, dict]]:
    reports = []
    for root in eval_roots:
        for path in sorted(Path(root).rglob("report.json")):
            data = _read_json(path)
            if EVAL_ROW in data:
                reports.append((path, data))
    return reports


def _inside(child: str | None, parent: Path) -> bool:
    if not child:
        return False
    try:
        Path(child).resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


def load_trial(run_dir: Path, eval_reports: list[tuple[Path, dict]] = ()) -> TrialResult:
    marker = _read_json(run_dir / MARKER)
    config = {}
    if (run_dir / "config.yaml").is_file():
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    if marker:
        label, seed = marker.get("label"), (marker.get("params") or {}).get("seed")
    else:
        experiment = str(config.get("experiment") or run_dir.parent.name)
        match = _SEED.search(experiment)
        label = _SEED.sub("", experiment)
        seed = int(match.group(1)) if match else config.get("seed", config.get("seed_everything"))
    result = TrialResult(run_dir, str(label), seed if isinstance(seed, int) else None, marker.get("sweep"),
                         marker.get("index"))  # fmt: skip
    summaries = sorted((run_dir / "wandb").glob("*run-*/files/wandb-summary.json"))
    if summaries:
        result.metrics.update(_numbers(_read_json(summaries[-1])))
    result.metrics.update(_numbers(_read_json(run_dir / METRICS_FILE).get("metrics") or {}))
    own = sorted(p for p in run_dir.rglob("report.json") if "wandb" not in p.relative_to(run_dir).parts)
    evals = [(p, _read_json(p)) for p in own] + [
        (p, d) for p, d in eval_reports if _inside((d.get("meta") or {}).get("checkpoint"), run_dir)
    ]
    for _, data in evals:  # later (outside) reports win
        if isinstance(data.get(EVAL_ROW), dict):
            result.metrics.update(_numbers(data[EVAL_ROW]))
    return result


def collect(paths: list[str | Path], sweep: str | None = None, eval_roots: list[str | Path] = ()) -> list[TrialResult]:
    """Every trial under ``paths`` (run folders or folders of runs), of sweep ``sweep`` when given."""
    reports = _eval_reports([Path(r) for r in eval_roots])
    trials = [load_trial(d, reports) for d in _run_dirs([Path(p) for p in paths])]
    if sweep is not None:
        trials = [t for t in trials if t.sweep == sweep]
    return sorted(trials, key=lambda t: (t.index if t.index is not None else 1 << 30, t.label, t.seed or 0))


def default_metrics(trials: list[TrialResult]) -> list[str]:
    present = {k for t in trials for k in t.metrics}
    order = ["val/loss", *METRIC_NOTES, "train/loss"]
    return [m for m in order if m in present]


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def aggregate(trials: list[TrialResult], metrics: list[str]) -> dict[str, dict]:
    """{label: {"seeds": [...], "n": N, metric: (mean, std)}} in the order labels first appear."""
    rows: dict[str, dict] = {}
    for t in trials:
        rows.setdefault(t.label, {"trials": []})["trials"].append(t)
    for row in rows.values():
        row["seeds"] = [t.seed for t in row["trials"]]
        row["n"] = len(row["trials"])
        for m in metrics:
            row[m] = mean_std([t.metrics.get(m) for t in row["trials"] if m in t.metrics])
    return rows


def _fmt(mean, std) -> str:
    if mean is None:
        return "–"
    text = f"{mean:.4g}"
    return text if std is None else f"{text} ± {std:.2g}"


def markdown(rows: dict[str, dict], metrics: list[str], primary: str | None, goal: str = "minimize") -> str:
    arrows = {m: METRIC_NOTES.get(m, ("↓" if "loss" in m else "", ""))[0] for m in metrics}
    head = "| configuration | seeds | " + " | ".join(f"{m} {arrows[m]}".strip() for m in metrics) + " |"
    lines = [head, "|---|---|" + "---:|" * len(metrics)]
    means = {k: r[primary][0] for k, r in rows.items() if primary in r and r[primary][0] is not None}
    best = (min if goal == "minimize" else max)(means, key=means.get) if means else None
    for label, row in rows.items():
        cells = [_fmt(*row[m]) for m in metrics]
        if label == best and primary in metrics:
            cells[metrics.index(primary)] = f"**{cells[metrics.index(primary)]}**"
        seeds = ",".join("–" if s is None else str(s) for s in row["seeds"])
        lines.append(f"| {label} | {row['n']} ({seeds}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _csv(header: list[str], body: list[list]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    return buf.getvalue()


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def plot(rows: dict[str, dict], metric: str, path: Path) -> Path:
    """Mean ± std of ``metric`` per configuration (bars) with every seed's value (dots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(rows)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(labels) + 1.5))
    for i, label in enumerate(labels):
        mean, std = rows[label].get(metric, (None, None))
        if mean is not None:
            ax.barh(i, mean, xerr=std or 0.0, color="tab:blue", alpha=0.6, capsize=3)
        values = [t.metrics[metric] for t in rows[label]["trials"] if metric in t.metrics]
        ax.scatter(values, [i] * len(values), color="black", s=12, zorder=3)
    ax.set_yticks(range(len(labels)), labels=labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric} (mean ± std over seeds; dots: seeds)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def write_sweep_report(out_dir: str | Path, trials: list[TrialResult], metrics: list[str] | None = None,
                       primary: str | None = None, goal: str = "minimize", title: str = "Sweep") -> str:  # fmt: skip
    """Write the table (.md, .csv), the per-trial .csv and the plot into ``out_dir``; returns the markdown."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = metrics or default_metrics(trials)
    primary = primary if primary in metrics else (metrics[0] if metrics else None)
    rows = aggregate(trials, metrics)
    table = markdown(rows, metrics, primary, goal)
    notes = [f"# {title}", "", table, "",
             f"{len(trials)} trial(s); mean ± sample std over seeds; bold: best {primary} ({goal}).", "",
             "| run folder | configuration | seed |", "|---|---|---:|"]  # fmt: skip
    notes += [f"| {t.run_dir} | {t.label} | {t.seed} |" for t in trials]
    text = "\n".join(notes) + "\n"
    _write(out_dir / "sweep-report.md", text)
    header = ["configuration", "n", "seeds"] + [f"{m} {s}" for m in metrics for s in ("mean", "std")]
    body = [[label, row["n"], " ".join(str(s) for s in row["seeds"])] + [v for m in metrics for v in row[m]]
            for label, row in rows.items()]  # fmt: skip
    _write(out_dir / "sweep-report.csv", _csv(header, body))
    _write(out_dir / "sweep-trials.csv", _csv(["run_dir", "configuration", "seed", *metrics],
                                              [[str(t.run_dir), t.label, t.seed, *(t.metrics.get(m) for m in metrics)]
                                               for t in trials]))  # fmt: skip
    if primary is not None:
        plot(rows, primary, out_dir / "sweep-report.png")
    return table
