"""The report of a preprocessing run, from its per-video records (``OUT/videos/<video_key>.json``).

Writes (each atomically) ``OUT/report_plots/*.png`` (one histogram per QC rule, kept vs rejected
segments, the rule's threshold as a vertical line; a histogram of segment lengths),
``OUT/contact_sheet.png`` (when thumbnails exist), ``OUT/report.json`` (counts, hours, per-rule value
distributions) and last ``OUT/report.md`` (a readable summary that links the PNGs).

Counting: a segment may fail several rules. ``failed`` counts every segment a rule failed;
``first_failing`` counts it only under the first failing rule in check order, so those counts add
up to the number of rejected segments. Hours are source-video hours (25 fps frames / 25 / 3600).
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np

from csg_lightning.io.atomic import atomic_path
from csg_lightning.io.validation import InputError, MissingInputError

__all__ = ["load_records", "summarise", "write_report"]

REPORT_VERSION = 1
PLOTS = "report_plots"
MAX_VIDEO_ROWS = 500  # rows of the per-video table in report.md
_QUANTILES = {"p05": 5, "p25": 25, "median": 50, "p75": 75, "p95": 95}


# ------------------------------------------------------------------------------------------- records


def _bad(where: str, field: str, expected: str, got) -> InputError:
    text = repr(got)
    return InputError(f"{where}: field '{field}' {expected}, got {text[:80]}")


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_record(record, where: str) -> dict:
    """A per-video record -> itself, or an :class:`InputError` naming ``where`` and the field.

    Required: video, video_key, status ("done" | "skipped"); skipped: skip_reason; done: seconds and
    segments, each with segment_id, start < stop (25 fps frames), seconds, kept, checks
    ([{name, passed, value, threshold, detail}]) and rejected_by (the failed checks, in check order;
    empty exactly when kept).
    """
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object (a per-video record), got {type(record).__name__}")
    for key in ("video", "video_key", "status"):
        if not isinstance(record.get(key), str):
            raise _bad(where, key, "must be a string", record.get(key))
    if record["status"] not in ("done", "skipped"):
        raise _bad(where, "status", "must be 'done' or 'skipped'", record["status"])
    if record["status"] == "skipped":
        if not isinstance(record.get("skip_reason"), str):
            raise _bad(
                where,
                "skip_reason",
                "must say why the video was skipped (a string)",
                record.get("skip_reason"),
            )
        return record
    if not _is_number(record.get("seconds")) or record["seconds"] < 0:
        raise _bad(where, "seconds", "must be a number >= 0", record.get("seconds"))
    if not isinstance(record.get("segments"), list):
        raise _bad(where, "segments", "must be a list", record.get("segments"))
    if not isinstance(record.get("timing", {}), dict):
        raise _bad(where, "timing", "must be an object of stage -> seconds", record.get("timing"))
    for j, seg in enumerate(record["segments"]):
        _check_segment(seg, where, f"segments[{j}]")
    return record


def _check_segment(seg, where: str, at: str) -> None:
    if not isinstance(seg, dict):
        raise _bad(where, at, "must be an object", seg)
    if not isinstance(seg.get("segment_id"), str):
        raise _bad(where, f"{at}.segment_id", "must be a string", seg.get("segment_id"))
    for key in ("start", "stop"):
        if not isinstance(seg.get(key), int) or isinstance(seg.get(key), bool) or seg[key] < 0:
            raise _bad(where, f"{at}.{key}", "must be a frame index (an integer >= 0)", seg.get(key))
    if seg["stop"] <= seg["start"]:
        raise _bad(where, f"{at}.stop", f"must be > start ({seg['start']})", seg["stop"])
    if not _is_number(seg.get("seconds")):
        raise _bad(where, f"{at}.seconds", "must be a number", seg.get("seconds"))
    if not isinstance(seg.get("kept"), bool):
        raise _bad(where, f"{at}.kept", "must be true or false", seg.get("kept"))
    if seg.get("thumbnail") is not None and not isinstance(seg["thumbnail"], str):
        raise _bad(where, f"{at}.thumbnail", "must be a path relative to OUT or null", seg["thumbnail"])
    checks = seg.get("checks")
    if not isinstance(checks, list):
        raise _bad(
            where, f"{at}.checks", "must be a list of {name, value, threshold, passed, detail}", checks
        )
    for k, check in enumerate(checks):
        if (
            not isinstance(check, dict)
            or not isinstance(check.get("name"), str)
            or not isinstance(check.get("passed"), bool)
        ):
            raise _bad(
                where,
                f"{at}.checks[{k}]",
                "must be an object with a string 'name' and a boolean 'passed'",
                check,
            )
    rejected = seg.get("rejected_by")
    if not isinstance(rejected, list) or not all(isinstance(r, str) for r in rejected):
        raise _bad(where, f"{at}.rejected_by", "must be a list of rule names", rejected)
    failed = [c["name"] for c in checks if not c["passed"]]
    if rejected != failed:
        raise _bad(
            where, f"{at}.rejected_by", f"must list the failed checks {failed} in check order", rejected
        )
    if seg["kept"] == bool(rejected):
        raise _bad(where, f"{at}.kept", f"must be {not rejected} (rejected_by is {rejected})", seg["kept"])


def load_records(out_dir: str | os.PathLike) -> list[dict]:
    """The checked per-video records ``OUT/videos/*.json``, sorted by file name (hidden temp files skipped)."""
    folder = Path(out_dir) / "videos"
    if not folder.is_dir():
        raise MissingInputError(
            f"{folder}: no per-video records folder (is {out_dir} a csg-data preprocess output?)"
        )
    records = []
    for path in sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")):
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); "
                             "expected a per-video record") from err  # fmt: skip
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: cannot be read as a per-video record ({err})") from err
        records.append(check_record(data, str(path)))
    return records


# ------------------------------------------------------------------------------------------- summary


def _summary(values: list[float]) -> dict:
    """count, mean, min, p05, p25, median, p75, p95, max of the finite values (None when there are none)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], np.float64)
    if not len(v):
        return {"count": 0}
    out = {"count": int(len(v)), "mean": float(v.mean()), "min": float(v.min())}
    out.update({k: float(np.percentile(v, q)) for k, q in _QUANTILES.items()})
    out["max"] = float(v.max())
    return out


def _number(value) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _reason(record: dict) -> str:
    """The skip reason without the file's path (so equal reasons of different videos group)."""
    reason = str(record.get("skip_reason") or "unknown")
    video = str(record.get("video", ""))
    at = reason.find(video) if video else -1
    if at >= 0:
        reason = reason[at + len(video) :].lstrip(": ")
    return reason or "unknown"


def summarise(records: list[dict], config: dict | None = None) -> dict:
    """The content of ``report.json`` (without plot paths): see the module docstring."""
    records = [check_record(r, f"records[{i}]") for i, r in enumerate(records)]
    config = dict(config or {})
    done = [r for r in records if r["status"] == "done"]
    skipped = [r for r in records if r["status"] == "skipped"]
    segments = [s for r in done for s in r["segments"]]
    kept = [s for s in segments if s["kept"]]
    rejected = [s for s in segments if not s["kept"]]

    rules: dict[str, dict] = {}
    for seg in segments:
        for check in seg["checks"]:
            rule = rules.setdefault(check["name"], {"threshold": check.get("threshold"), "checked": 0, "passed": 0,
                                                    "failed": 0, "first_failing": 0, "missing_values": 0,
                                                    "_kept": [], "_rejected": []})  # fmt: skip
            rule["checked"] += 1
            rule["passed" if check["passed"] else "failed"] += 1
            value = _number(check.get("value"))
            rule["missing_values"] += value is None
            rule["_kept" if seg["kept"] else "_rejected"].append(value)
        if seg["rejected_by"]:
            rules[seg["rejected_by"][0]]["first_failing"] += 1
    for rule in rules.values():
        k, r = rule.pop("_kept"), rule.pop("_rejected")
        rule["values"] = {"all": _summary(k + r), "kept": _summary(k), "rejected": _summary(r)}

    skip_reasons: dict[str, int] = {}
    for r in skipped:
        skip_reasons[_reason(r)] = skip_reasons.get(_reason(r), 0) + 1
    timing: dict[str, float] = {}
    for r in records:
        for stage, seconds in (r.get("timing") or {}).items():
            if _number(seconds) is not None:
                timing[stage] = timing.get(stage, 0.0) + float(seconds)
    inputs = [str(v) for v in config.get("inputs", [])]
    seen = {r["video"] for r in records}
    hours = lambda segs: sum(float(s["seconds"]) for s in segs) / 3600.0  # noqa: E731
    input_hours = sum(float(r["seconds"]) for r in done) / 3600.0
    skipped_hours = sum(float((r.get("probe") or {}).get("duration") or 0.0) for r in skipped) / 3600.0
    return {
        "version": REPORT_VERSION,
        "inputs": {
            "listed": len(inputs) if inputs else None,
            "records": len(records),
            "done": len(done),
            "skipped": len(skipped),
            "pending": [v for v in inputs if v not in seen],
        },  # fmt: skip
        "videos": {
            "done": [
                {
                    "video": r["video"],
                    "video_key": r["video_key"],
                    "seconds": float(r["seconds"]),
                    "segments": len(r["segments"]),
                    "kept": sum(s["kept"] for s in r["segments"]),
                    "kept_seconds": sum(float(s["seconds"]) for s in r["segments"] if s["kept"]),
                }
                for r in done
            ],
            "skipped": [
                {"video": r["video"], "video_key": r["video_key"], "reason": r["skip_reason"]}
                for r in skipped
            ],
        },  # fmt: skip
        "skip_reasons": dict(sorted(skip_reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "hours": {
            "input": input_hours,
            "skipped_videos": skipped_hours,
            "segments": hours(segments),
            "kept": hours(kept),
            "rejected": hours(rejected),
            "kept_fraction_of_input": hours(kept) / input_hours if input_hours > 0 else None,
        },  # fmt: skip
        "segments": {
            "total": len(segments),
            "kept": len(kept),
            "rejected": len(rejected),
            "failed_by_rule": {name: rule["failed"] for name, rule in rules.items()},
            "first_failing_rule": {name: rule["first_failing"] for name, rule in rules.items()},
        },  # fmt: skip
        "rules": rules,
        "segment_seconds": {
            "all": _summary([float(s["seconds"]) for s in segments]),
            "kept": _summary([float(s["seconds"]) for s in kept]),
            "rejected": _summary([float(s["seconds"]) for s in rejected]),
        },  # fmt: skip
        "timing_seconds": timing,
        "config_hashes": sorted({str(r["config_hash"]) for r in records if r.get("config_hash")}),
        "config": config.get("config", {k: v for k, v in config.items() if k != "inputs"}),
    }


def write_report(out_dir: str | os.PathLike, records: list[dict], config: dict | None = None,
                 contact_sheet: bool = True, columns: int = 6, thumb: int = 192) -> dict[str, Path]:  # fmt: skip
    """Write the report of ``records`` into ``out_dir`` -> {"json", "md", "segment_seconds",
    "qc_<rule>" ..., "contact_sheet"}: the written paths.

    ``config``: ``{"config": <the PreprocessConfig as a dict>, "inputs": [video paths listed]}``
    (any other mapping is stored as the config). ``contact_sheet``: also draw the sheet when at
    least one segment has a thumbnail.
    """
    out = Path(out_dir)
    report = summarise(records, config)
    records = [r for r in records if r["status"] == "done"]
    segments = [s for r in records for s in r["segments"]]
    paths: dict[str, Path] = {}
    plots = {}
    for name, rule in report["rules"].items():
        values = {"kept": [], "rejected": []}
        for seg in segments:
            for check in seg["checks"]:
                if check["name"] == name:
                    values["kept" if seg["kept"] else "rejected"].append(_number(check.get("value")))
        key = "qc_" + re.sub(r"[^A-Za-z0-9_-]", "_", name)
        paths[key] = rule_histogram(out / PLOTS / f"{key}.png", name, values, rule["threshold"])
        rule["plot"] = plots[key] = f"{PLOTS}/{key}.png"
    lengths = {"kept": [float(s["seconds"]) for s in segments if s["kept"]],
               "rejected": [float(s["seconds"]) for s in segments if not s["kept"]]}  # fmt: skip
    paths["segment_seconds"] = seconds_histogram(out / PLOTS / "segment_seconds.png", lengths)
    plots["segment_seconds"] = f"{PLOTS}/segment_seconds.png"
    if contact_sheet and any(s.get("thumbnail") for s in segments):
        from csg_lightning.preprocess.contact_sheet import contact_sheet as draw_sheet

        sheet = draw_sheet(records, out, out / "contact_sheet.png", columns=columns, thumb=thumb)
        paths["contact_sheet"] = sheet.path
        plots["contact_sheet"] = "contact_sheet.png"
        report["contact_sheet"] = {"kept_shown": sheet.kept_shown, "kept_total": sheet.kept_total,
                                   "rejected_shown": sheet.rejected_shown, "rejected_total": sheet.rejected_total}  # fmt: skip
    report["plots"] = plots
    paths["json"] = out / "report.json"
    with atomic_path(paths["json"]) as tmp:
        tmp.write_text(json.dumps(report, indent=1, default=str) + "\n")
    paths["md"] = out / "report.md"
    with atomic_path(paths["md"]) as tmp:
        tmp.write_text(render_markdown(report, max_video_rows=MAX_VIDEO_ROWS))
    return paths


# --------------------------------------------------------------------------------------------- plots

FIG_SIZE = (6.4, 4.0)  # inches at DPI: every plot is 640 x 400 px
DPI = 100
_KEPT, _REJECTED = "#2ca02c", "#d62728"


def _thresholds(threshold) -> list[float]:
    """The number(s) a check compares against: a number, a list of numbers or an object of numbers."""
    items = (
        threshold.values()
        if isinstance(threshold, dict)
        else threshold
        if isinstance(threshold, list | tuple)
        else [threshold]
    )
    return [float(t) for t in items if _is_number(t)]


def _histogram(path: Path, title: str, xlabel: str, values: dict[str, list], lines: list[float]) -> Path:
    """Stacked histogram of ``values["kept"]`` / ``["rejected"]`` (None skipped), vertical ``lines``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIG_SIZE, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    kept = [v for v in values["kept"] if v is not None]
    rejected = [v for v in values["rejected"] if v is not None]
    if kept or rejected:
        lo, hi = min(kept + rejected + lines), max(kept + rejected + lines)
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        ax.hist([kept, rejected], bins=np.linspace(lo, hi, 31), stacked=True, color=[_KEPT, _REJECTED],
                label=[f"kept ({len(kept)})", f"rejected ({len(rejected)})"])  # fmt: skip
    else:
        ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center", va="center")
    for t in lines:
        ax.axvline(t, color="black", linestyle="--", linewidth=1.2, label=f"threshold {t:g}")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("segments")
    if kept or rejected or lines:
        ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def rule_histogram(path: Path, name: str, values: dict[str, list], threshold) -> Path:
    """The PNG histogram of one QC rule's values over kept and rejected segments, threshold marked."""
    missing = sum(v is None for vs in values.values() for v in vs)
    title = f"QC rule {name}" + (f" ({missing} segment(s) without a value)" if missing else "")
    return _histogram(path, title, f"{name} value", values, _thresholds(threshold))


def seconds_histogram(path: Path, lengths: dict[str, list]) -> Path:
    """The PNG histogram of segment lengths (seconds), kept and rejected."""
    return _histogram(path, "segment lengths", "seconds", lengths, [])


# ------------------------------------------------------------------------------------------ markdown


def _cell(value) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
    else:
        text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows] + [""]


def render_markdown(report: dict, max_video_rows: int = MAX_VIDEO_ROWS) -> str:
    """``report.md``: inputs, segments, one row and plot per QC rule, skipped videos, per-video table."""
    inputs, hours, segs = report["inputs"], report["hours"], report["segments"]
    lines = ["# Preprocessing report", ""]
    if report["config_hashes"]:
        lines += [f"Config hash(es): {', '.join(report['config_hashes'])}.", ""]
    lines += ["## Inputs", ""]
    lines += _table(["videos listed", "records", "done", "skipped", "pending", "hours in (done)", "hours in (skipped)"],
                    [[inputs["listed"], inputs["records"], inputs["done"], inputs["skipped"], len(inputs["pending"]),
                      hours["input"], hours["skipped_videos"]]])  # fmt: skip
    lines += ["## Segments", ""]
    share = hours["kept_fraction_of_input"]
    lines += _table(["segments", "kept", "rejected", "hours segmented", "hours kept", "kept share of input"],
                    [[segs["total"], segs["kept"], segs["rejected"], hours["segments"], hours["kept"],
                      "" if share is None else f"{100 * share:.1f}%"]])  # fmt: skip
    lines += ["A segment may fail several rules: *failed* counts each; *first failing* counts it once, under the",
              "first failing rule in check order (these add up to the rejected segments).", ""]  # fmt: skip
    rows = []
    for name, rule in report["rules"].items():
        v = rule["values"]
        rows.append([name, rule["threshold"], rule["checked"], rule["failed"], rule["first_failing"],
                     v["kept"].get("median"), v["rejected"].get("median"), f"[plot]({rule.get('plot', '')})"])  # fmt: skip
    lines += ["## QC rules", ""]
    lines += _table(["rule", "threshold", "checked", "failed", "first failing", "median (kept)", "median (rejected)",
                     "histogram"], rows) if rows else ["No segment was checked.", ""]  # fmt: skip
    for name, rule in report["rules"].items():
        if rule.get("plot"):
            lines += [f"### {name}", "", f"![{name}]({rule['plot']})", ""]
    lengths = report["segment_seconds"]["all"]
    lines += ["## Segment lengths", ""]
    if lengths["count"]:
        lines += [f"{lengths['count']} segment(s), median {lengths['median']:.2f} s, "
                  f"range {lengths['min']:.2f}-{lengths['max']:.2f} s.", ""]  # fmt: skip
    if "segment_seconds" in report.get("plots", {}):
        lines += [f"![segment lengths]({report['plots']['segment_seconds']})", ""]
    if "contact_sheet" in report:
        sheet = report["contact_sheet"]
        lines += ["## Contact sheet", "",
                  f"{sheet['kept_shown']} of {sheet['kept_total']} kept and {sheet['rejected_shown']} of "
                  f"{sheet['rejected_total']} rejected segment(s) shown.", "",
                  f"![contact sheet]({report['plots']['contact_sheet']})", ""]  # fmt: skip
    if report["skip_reasons"]:
        lines += ["## Skipped videos", ""]
        lines += _table(["reason", "videos"], [[r, n] for r, n in report["skip_reasons"].items()])
        lines += _table(["video", "reason"], [[v["video"], v["reason"]] for v in report["videos"]["skipped"]])
    if inputs["pending"]:
        lines += ["## Not processed yet", ""] + [f"- {_cell(v)}" for v in inputs["pending"]] + [""]
    done = report["videos"]["done"]
    if done:
        lines += ["## Videos", ""]
        lines += _table(["video", "seconds", "segments", "kept", "kept seconds"],
                        [[v["video"], v["seconds"], v["segments"], v["kept"], v["kept_seconds"]]
                         for v in done[:max_video_rows]])  # fmt: skip
        if len(done) > max_video_rows:
            lines += [f"({len(done) - max_video_rows} more in report.json)", ""]
    if report["timing_seconds"]:
        total = sum(report["timing_seconds"].values()) or 1.0
        lines += ["## Time per stage", ""]
        lines += _table(["stage", "seconds", "share"], [[k, s, f"{100 * s / total:.1f}%"]
                                                       for k, s in report["timing_seconds"].items()])  # fmt: skip
    return "\n".join(lines).rstrip() + "\n"
