"""``evaluate_skeleton``: score a Stage-1 checkpoint and the baselines on test-split windows.

Rows: ``model`` (the checkpoint, prefix + true audio), ``ground_truth``, ``mean_pose``,
``random_clip`` and ``shuffled_audio`` (see ``baselines.py``); metrics: ``metrics.gesture_suite``.
Writes ``report.json``, ``report.md`` and three PNG plots into ``out_dir``. Every value of every row
comes with a 95 % percentile bootstrap interval over the test windows (``metrics/bootstrap.py``;
``report.json``: ``meta.intervals``), so two rows whose intervals overlap are not told apart by the table.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import torch

from csg_lightning.data.skeleton_audio import SkeletonAudioDataModule
from csg_lightning.evaluation import baselines
from csg_lightning.evaluation.plots import plot_bc_distribution, plot_speed_spectra, plot_trajectories
from csg_lightning.evaluation.report import write_report
from csg_lightning.evaluation.windows import collect_windows, train_pool
from csg_lightning.metrics.fgd import SkeletonClipFeatures
from csg_lightning.metrics.gesture_suite import METRIC_NAMES, GestureMetrics
from csg_lightning.models.fgd_autoencoder_module import load_fgd_encoder
from csg_lightning.timing import SAMPLES_PER_FRAME

log = logging.getLogger(__name__)
ROWS = ("model", "ground_truth", "mean_pose", "random_clip", "shuffled_audio")


def file_hash(path: str | Path, chars: int = 16) -> str:
    """First ``chars`` hex digits of the file's sha256."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:chars]


def with_sampler(diffusion, sampler: str | None, sampler_kwargs: dict | None = None):
    """A copy of a ``DiffusionProcess`` that samples with another diffusers scheduler (the same training
    schedule and prediction type); fails here, naming the scheduler, when diffusers has no such class."""
    out = copy.copy(diffusion)
    out.sampler_name = sampler or diffusion.sampler_name
    out.sampler_kwargs = {"timestep_spacing": "trailing", **(sampler_kwargs or {})}
    out.make_sampler()
    return out


def _load_model(ckpt: str | Path, device: str):
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    if not Path(ckpt).is_file():
        raise FileNotFoundError(
            f"Stage-1 checkpoint not found: {ckpt} (train one with `make train-skeleton`)"
        )
    from csg_lightning.checkpoints.safe_load import load_module

    return load_module(SkeletonDiffusion, ckpt, map_location=device).eval()


def evaluate_skeleton(
    ckpt: str | Path,
    data_dir: str | Path,
    fgd_ckpt: str | Path,
    out_dir: str | Path,
    num_steps: int | None = None,
    guidance_scale: float | None = None,
    seed: int = 0,
    max_windows: int = 48,
    batch_size: int = 8,
    pool_size: int = 32,
    device: str = "cpu",
    smooth: bool = True,
    sampler: str | None = None,
    sampler_kwargs: dict | None = None,
    num_resamples: int = 1000,
    level: float = 0.95,
) -> dict:
    """Score ``ckpt`` and the baselines on up to ``max_windows`` test windows of ``data_dir``.

    ``fgd_ckpt``: an ``FGDAutoencoderModule`` checkpoint (``experiments/eval/fgd_autoencoder.yaml``).
    ``num_steps`` / ``guidance_scale``: sampling settings (None: the checkpoint's). ``smooth``: apply the
    Savitzky-Golay filter (window 11, order 2) that ``SkeletonPipeline`` applies to its output to
    the model rows too, so the scores describe what generation delivers. ``sampler`` / ``sampler_kwargs``:
    another diffusers scheduler for the model rows (None: the checkpoint's; e.g. ``DPMSolverMultistepScheduler``
    with ``{"algorithm_type": "dpmsolver++"}``). ``num_resamples`` / ``level``: the bootstrap intervals
    (0 resamples: none). Returns the report
    dict ({row: {metric: value}, "meta": {...}}) that is also written to ``out_dir/report.json``.
    """
    began = time.time()
    torch.manual_seed(seed)
    out_dir, data_dir = Path(out_dir), str(data_dir)
    model = _load_model(ckpt, device)
    window, prefix = model.window_frames, model.prefix_frames
    if window is None or prefix is None:
        raise ValueError(f"{ckpt}: the window/prefix lengths are unset (not a trained checkpoint?)")
    pipeline = model.pipeline()  # the checkpoint's state_dict holds the EMA weights
    if sampler is not None or sampler_kwargs:
        pipeline.diffusion = with_sampler(model.diffusion, sampler, sampler_kwargs)
    encoder, fgd_stats = load_fgd_encoder(fgd_ckpt)
    features = SkeletonClipFeatures(encoder, fgd_stats)
    if window < features.clip_frames:
        raise ValueError(f"model window {window} is shorter than the FGD clip length {features.clip_frames}")

    batches = collect_windows(data_dir, window, prefix, max_windows, seed, batch_size)
    num_windows = sum(b["keypoints"].shape[0] for b in batches)
    log.info("evaluating on %d test windows of %d + %d frames", num_windows, prefix, window)
    train_mean = SkeletonAudioDataModule(data_dir).stats["mean"]
    pool = train_pool(data_dir, window, prefix, pool_size, seed)
    rng = np.random.default_rng(seed)
    shuffled = baselines.roll_audio(batches) if num_windows > 1 else None
    spf = SAMPLES_PER_FRAME

    def sample(batch: dict, i: int):
        kp, sc = pipeline.sample_batch(batch, num_steps, guidance_scale, seed=seed + i)
        return (pipeline.smooth(kp) if smooth else kp), sc

    def predict(row: str, i: int, batch: dict):
        if row == "model":
            return sample(batch, i)
        if row == "shuffled_audio":
            return sample(shuffled[i], i)
        if row == "ground_truth":
            return baselines.ground_truth(batch, prefix)
        if row == "mean_pose":
            return baselines.mean_pose(batch, train_mean, prefix)
        return baselines.random_clip(batch, pool, prefix, rng)

    rows, bc_windows, kept, intervals = {}, {}, {}, {}
    for row in ROWS:
        if (row == "shuffled_audio" and shuffled is None) or (row == "random_clip" and not pool):
            rows[row] = {m: float("nan") for m in METRIC_NAMES}
            continue
        metrics = GestureMetrics(features, seed=seed, per_window=num_resamples > 0)
        preds = []
        for i, batch in enumerate(batches):
            kp, sc = predict(row, i, batch)
            kp, sc = kp.detach().cpu().float(), sc.detach().cpu().float()
            gt_kp, gt_sc = baselines.ground_truth(batch, prefix)
            metrics.update(kp, sc, gt_kp, gt_sc, batch["audio"][:, prefix * spf :])
            preds.append((kp.numpy(), sc.numpy()))
        rows[row] = metrics.compute()
        if num_resamples > 0:
            intervals[row] = metrics.intervals(num_resamples, level)
        bc_windows[row] = metrics.bc_per_window().numpy()
        kept[row] = (np.concatenate([p[0] for p in preds]), np.concatenate([p[1] for p in preds]))
        log.info("%s: %s", row, {k: round(v, 4) for k, v in rows[row].items()})

    plots = {
        "bc_distribution": plot_bc_distribution(bc_windows, out_dir / "bc_distribution.png"),
        "speed_spectra": plot_speed_spectra(kept, out_dir / "speed_spectra.png"),
        "trajectories": plot_trajectories(
            kept["ground_truth"][0][0], kept["model"][0][0], out_dir / "trajectories.png"
        ),  # fmt: skip
    }
    meta = {
        "checkpoint": str(ckpt),
        "checkpoint_sha256": file_hash(ckpt),
        "fgd_encoder": str(fgd_ckpt),
        "fgd_encoder_sha256": file_hash(fgd_ckpt),
        "data_dir": data_dir,
        "num_windows": num_windows,
        "window_frames": window,
        "prefix_frames": prefix,
        "fgd_clip_frames": features.clip_frames,
        "num_steps": int(num_steps if num_steps is not None else model.diffusion.num_inference_steps),
        "guidance_scale": float(guidance_scale if guidance_scale is not None else model.guider.scales(1)[0]),
        "seed": seed,
        "sampler": pipeline.diffusion.sampler_name,
        "sampler_kwargs": pipeline.diffusion.sampler_kwargs,
        "savgol_smoothing": smooth,
        "plots": [p.name for p in plots.values()],
        "seconds": round(time.time() - began, 1),
    }
    if intervals:
        meta["intervals"] = {
            "description": f"{level:.0%} percentile bootstrap intervals over the {num_windows} test windows "
            f"({num_resamples} resamples, seed {seed})",
            "level": level, "resamples": num_resamples, "unit": "test window", "rows": intervals,
        }  # fmt: skip
    notes = [
        "FGD is measured against the ground-truth test windows (so the ground_truth row is 0 by construction) "
        "and is comparable only under the same FGD encoder hash.",
        "BC and LipSync always use the window's true audio; shuffled_audio is the model driven by another "
        "window's audio.",
        "HKC of generated skeletons is the model's own score (1.0); it matters for pose estimates of videos.",
        "BC grows with the density of motion beats (speed minima), so jittery motion scores high against any "
        "audio: read it beside the ground-truth row and the shuffled_audio row.",
    ]
    return write_report(out_dir, "Skeleton evaluation", rows, meta, list(METRIC_NAMES), notes)
