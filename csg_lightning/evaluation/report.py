"""``report.json`` and ``report.md``: one row per model/baseline, one column per metric, plus ``meta``.

Confidence intervals, when given, are ``{row: {metric: [lo, hi]}}``; they are shown in brackets after each
value of ``report.md`` and stored in ``report.json`` under ``meta.intervals.rows`` (the rows themselves keep
one number per metric).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from csg_lightning.io.atomic import atomic_path

# metric -> (direction shown in the table, one-line meaning)
METRIC_NOTES = {
    "FGD": ("↓", "Fréchet distance of autoencoder clip features to the ground truth"),
    "BC": ("↑", "beat consistency of motion pauses with speech onsets"),
    "Diversity": ("≈GT", "mean L1 between clip features of pairs"),
    "L1div": ("≈GT", "mean deviation from each window's mean pose (px)"),
    "HKV": ("≈GT", "hand keypoint variance (px²)"),
    "HKC": ("↑", "mean hand keypoint confidence"),
    "MPJPE": ("↓", "paired error in the local representation (px)"),
    "PCK": ("↑", "fraction of local points within 0.1 x skeleton size"),
    "LipSync": ("↑", "correlation of mouth opening and loudness"),
    "SSIM": ("↑", "structural similarity"),
    "PSNR": ("↑", "peak signal-to-noise ratio (dB)"),
    "LPIPS": ("↓", "learned perceptual distance"),
    "FID": ("↓", "Fréchet Inception distance of frames"),
    "FVD": ("↓", "Fréchet video distance of 16-frame clips"),
}


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
    return str(value)


def _cell(value, interval=None) -> str:
    if interval is None or len(interval) != 2:
        return _fmt(value)
    return f"{_fmt(value)} [{_fmt(interval[0])}, {_fmt(interval[1])}]"


def markdown_table(rows: dict[str, dict[str, float]], metrics: list[str],
                   intervals: dict[str, dict[str, list]] | None = None) -> str:  # fmt: skip
    """The table of ``rows``; with ``intervals`` ({row: {metric: [lo, hi]}}) each cell reads ``v [lo, hi]``."""
    intervals = intervals or {}
    head = "| row | " + " | ".join(f"{m} {METRIC_NOTES.get(m, ('', ''))[0]}".strip() for m in metrics) + " |"
    sep = "|---|" + "---:|" * len(metrics)
    body = [
        f"| {name} | " + " | ".join(_cell(vals.get(m), intervals.get(name, {}).get(m)) for m in metrics) + " |"
        for name, vals in rows.items()
    ]
    return "\n".join([head, sep, *body])


def write_report(out_dir: Path, title: str, rows: dict[str, dict[str, float]], meta: dict,
                 metrics: list[str], notes: list[str] | None = None) -> dict:  # fmt: skip
    """Write ``report.json`` ({row: {metric: value}, "meta": {...}}; NaN -> null) and ``report.md``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = _clean({**rows, "meta": meta})
    with atomic_path(out_dir / "report.json") as tmp:
        Path(tmp).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    intervals = meta.get("intervals") or {}
    lines = [f"# {title}", "", markdown_table(rows, metrics, intervals.get("rows")), ""]
    if intervals:
        lines += [f"In brackets: {intervals.get('description', 'confidence intervals')}.", ""]
    lines += [f"- **{m}** ({METRIC_NOTES[m][0]}): {METRIC_NOTES[m][1]}" for m in metrics if m in METRIC_NOTES]
    lines += ["", "## Meta", ""] + [f"- {k}: `{v}`" for k, v in meta.items() if k != "intervals"]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    with atomic_path(out_dir / "report.md") as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return report
