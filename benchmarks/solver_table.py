"""Quality vs sampling steps of the few-step samplers on a trained Stage-1 checkpoint (FGD, BC, LipSync).

Every (sampler, steps) pair generates the same test windows from the same noise (seed + batch index) and is
scored with the evaluation's metrics; each value has a 95 % percentile bootstrap interval over the windows,
and the difference to the reference sampler (DDIM, 25 steps) a *paired* interval (the same resampled windows
for both), which is what "no worse than 25-step DDIM" has to be read from. Writes ``OUT/solver_table.json``
and ``OUT/solver_table.md``; prints the table.

    .venv/bin/python benchmarks/solver_table.py --ckpt runs/skeleton-demo/<run>/checkpoints/last.ckpt \
        --fgd-ckpt runs/fgd-autoencoder/<run>/checkpoints/last.ckpt --data data/demo/shards --out runs/eval/solvers
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from csg_lightning.evaluation import baselines
from csg_lightning.evaluation.skeleton import _load_model, file_hash, with_sampler
from csg_lightning.evaluation.windows import collect_windows
from csg_lightning.io.atomic import atomic_path
from csg_lightning.metrics.beat_consistency import BeatConsistency
from csg_lightning.metrics.bootstrap import WindowStates, percentile_interval, resample_indices
from csg_lightning.metrics.fgd import FGD, SkeletonClipFeatures
from csg_lightning.metrics.lip_sync import LipSync
from csg_lightning.models.fgd_autoencoder_module import load_fgd_encoder
from csg_lightning.timing import SAMPLES_PER_FRAME

SAMPLERS = {"DDIM": ("DDIMScheduler", {}),
            "DPM-Solver++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
            "UniPC": ("UniPCMultistepScheduler", {"solver_order": 2})}  # fmt: skip
SHOWN = ("FGD", "BC", "LipSync")
REFERENCE = ("DDIM", 25)


class WindowScores:
    """FGD, BC and LipSync of one row, recorded window by window (the value and the intervals from the same
    states; ``metrics/bootstrap.py``)."""

    def __init__(self, features) -> None:
        self.windows = {"FGD": WindowStates(FGD(features)), "BC": WindowStates(BeatConsistency()),
                        "LipSync": WindowStates(LipSync())}  # fmt: skip

    def update(self, kp, sc, gt_kp, gt_sc, audio) -> None:
        for b in range(kp.shape[0]):
            one = slice(b, b + 1)
            self.windows["FGD"].record(lambda m, one=one: (m.update(gt_kp[one], gt_sc[one], real=True),
                                                           m.update(kp[one], sc[one], real=False)))  # fmt: skip
            self.windows["BC"].update(kp[one], sc[one], audio[one])
            self.windows["LipSync"].update(kp[one], sc[one], audio[one])

    def value(self, name: str) -> float:
        return self.windows[name].value(range(len(self.windows[name])))


def score(features, batches, prefix, predict) -> tuple[WindowScores, float]:
    scores = WindowScores(features)
    began = time.perf_counter()
    for i, batch in enumerate(batches):
        kp, sc = predict(i, batch)
        gt_kp, gt_sc = baselines.ground_truth(batch, prefix)
        scores.update(kp.float(), sc.float(), gt_kp, gt_sc, batch["audio"][:, prefix * SAMPLES_PER_FRAME :])
    return scores, time.perf_counter() - began


def paired_difference(a: WindowScores, b: WindowScores, name: str, resamples: int, seed: int) -> list[float]:
    idx = resample_indices(len(a.windows[name]), resamples, seed)
    diffs = np.array([a.windows[name].value(row) - b.windows[name].value(row) for row in idx])
    return list(percentile_interval(diffs))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True)
    p.add_argument("--fgd-ckpt", required=True)
    p.add_argument("--data", default="data/demo/shards")
    p.add_argument("--out", default="runs/eval/solvers")
    p.add_argument("--samplers", default="DDIM,DPM-Solver++,UniPC")
    p.add_argument("--steps", default="5,8,10,25")
    p.add_argument("--max-windows", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--guidance-scale", type=float, default=None)
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.manual_seed(a.seed)
    model = _load_model(a.ckpt, "cpu")
    pipeline = model.pipeline()
    encoder, stats = load_fgd_encoder(a.fgd_ckpt)
    features = SkeletonClipFeatures(encoder, stats)
    prefix = model.prefix_frames
    batches = collect_windows(a.data, model.window_frames, prefix, a.max_windows, a.seed, a.batch_size)
    num_windows = sum(b["keypoints"].shape[0] for b in batches)
    configs = [(s, int(n)) for s in a.samplers.split(",") for n in a.steps.split(",")]
    if REFERENCE not in configs:
        configs.append(REFERENCE)
    results, scored = {}, {}
    gt, _ = score(features, batches, prefix, lambda i, b: baselines.ground_truth(b, prefix))
    scored["ground_truth"] = gt
    for name, steps in configs:
        cls, kwargs = SAMPLERS[name]
        pipeline.diffusion = with_sampler(model.diffusion, cls, kwargs)

        def predict(i, batch, steps=steps):
            kp, sc = pipeline.sample_batch(batch, steps, a.guidance_scale, seed=a.seed + i)
            return pipeline.smooth(kp), sc

        scored[(name, steps)], seconds = score(features, batches, prefix, predict)
        results[f"{name}@{steps}"] = {"sampler": cls, "steps": steps, "seconds": round(seconds, 1)}
        print(f"{name} {steps} steps: {seconds:.1f} s", flush=True)
    ref = scored[REFERENCE]
    for key, metrics in scored.items():
        label = key if isinstance(key, str) else f"{key[0]}@{key[1]}"
        row = results.setdefault(label, {})
        for m in SHOWN:
            row[m] = metrics.value(m)
            row[f"{m}_ci95"] = list(metrics.windows[m].interval(a.resamples, seed=a.seed))
            if key not in ("ground_truth", REFERENCE):
                row[f"{m}_minus_ddim25_ci95"] = paired_difference(metrics, ref, m, a.resamples, a.seed)
    meta = {"checkpoint": a.ckpt, "checkpoint_sha256": file_hash(a.ckpt), "fgd_encoder_sha256": file_hash(a.fgd_ckpt),
            "num_windows": num_windows, "guidance_scale": a.guidance_scale, "resamples": a.resamples,
            "seed": a.seed, "reference": f"{REFERENCE[0]}@{REFERENCE[1]}"}  # fmt: skip

    def fmt(v, ci):
        return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"

    lines = ["| sampler | steps | " + " | ".join(f"{m} [95% CI]" for m in SHOWN) + " | "
             + " | ".join(f"Δ{m} vs DDIM-25 [95% CI]" for m in SHOWN) + " | s |",
             "|---|---:|" + "---:|" * (2 * len(SHOWN) + 1)]  # fmt: skip
    for label, row in results.items():
        name, _, steps = label.partition("@")
        deltas = [f"[{row[f'{m}_minus_ddim25_ci95'][0]:+.3f}, {row[f'{m}_minus_ddim25_ci95'][1]:+.3f}]"
                  if f"{m}_minus_ddim25_ci95" in row else "–" for m in SHOWN]  # fmt: skip
        lines.append(f"| {name} | {steps or '–'} | " + " | ".join(fmt(row[m], row[f'{m}_ci95']) for m in SHOWN)
                     + " | " + " | ".join(deltas) + f" | {row.get('seconds', '–')} |")  # fmt: skip
    table = "\n".join(lines)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "solver_table.json") as tmp:
        tmp.write_text(json.dumps({"rows": results, "meta": meta}, indent=1))
    with atomic_path(out / "solver_table.md") as tmp:
        tmp.write_text(f"# Samplers vs steps ({num_windows} test windows)\n\n{table}\n\n" + json.dumps(meta) + "\n")
    print(table)


if __name__ == "__main__":
    main()
