"""Report figures (matplotlib, Agg backend): BC distribution, speed spectra, keypoint trajectories."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from csg_lightning.io.atomic import atomic_path  # noqa: E402
from csg_lightning.metrics.beat_consistency import motion_speed  # noqa: E402
from csg_lightning.skeleton.layout import SkeletonLayout  # noqa: E402
from csg_lightning.timing import FPS  # noqa: E402


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def plot_bc_distribution(window_scores: dict[str, np.ndarray], path: Path) -> Path:
    """Per-row distribution of per-window beat consistency {row: [num_windows]}."""
    fig, ax = plt.subplots(figsize=(7, 4))
    names = list(window_scores)
    data = [np.asarray(window_scores[n], dtype=float) for n in names]
    ax.boxplot([d if d.size else [np.nan] for d in data], tick_labels=names, showmeans=True)
    for i, d in enumerate(data, start=1):
        ax.scatter(
            np.full(d.size, i) + np.random.default_rng(i).uniform(-0.15, 0.15, d.size), d, s=8, alpha=0.5
        )
    ax.set_ylabel("beat consistency per window")
    ax.set_ylim(0, 1)
    ax.set_title("Beat consistency (higher = motion pauses on speech onsets)")
    fig.tight_layout()
    return _save(fig, path)


def speed_spectrum(keypoints: np.ndarray, scores: np.ndarray, fps: int = FPS) -> tuple[np.ndarray, np.ndarray]:
    """Windows [N, T, 134, 2] -> (frequencies [F] Hz, mean power spectrum [F]) of the upper-body + hand speed."""
    spectra = []
    for kp, sc in zip(keypoints, scores, strict=True):
        s = motion_speed(kp, sc, smooth_sigma=0)
        s = s - s.mean()
        spectra.append(np.abs(np.fft.rfft(s * np.hanning(s.size))) ** 2)
    return np.fft.rfftfreq(keypoints.shape[1], 1 / fps), np.mean(spectra, axis=0)


def plot_speed_spectra(rows: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, fps: int = FPS) -> Path:
    """{row: (keypoints [N, T, 134, 2], scores [N, T, 134])} -> log power spectra of keypoint speed."""
    fig, ax = plt.subplots(figsize=(7, 4))
    spectra = {name: speed_spectrum(kp, sc, fps) for name, (kp, sc) in rows.items()}
    top = max((float(p[1:].max()) for _, p in spectra.values()), default=0.0)
    for name, (freq, power) in spectra.items():
        if power[1:].max() <= 1e-9 * max(top, 1e-30):  # a still skeleton: nothing to draw on a log axis
            ax.plot([], [], label=f"{name} (no motion)")
            continue
        ax.semilogy(freq[1:], power[1:], label=name)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("power of upper-body + hand speed")
    ax.set_title("Speed spectra")
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_trajectories(gt: np.ndarray, model: np.ndarray, path: Path, fps: int = FPS) -> Path:
    """One window of ground truth and model keypoints [T, 134, 2]: wrist and nose x / y over time."""
    points = {"right wrist": SkeletonLayout.RIGHT_WRIST, "left wrist": SkeletonLayout.LEFT_WRIST,
              "nose": SkeletonLayout.NOSE}  # fmt: skip
    t = np.arange(gt.shape[0]) / fps
    fig, axes = plt.subplots(len(points), 2, figsize=(10, 7), sharex=True)
    for r, (name, idx) in enumerate(points.items()):
        for c, axis in enumerate("xy"):
            ax = axes[r, c]
            ax.plot(t, gt[:, idx, c], label="ground truth", color="black")
            ax.plot(t, model[:, idx, c], label="model", color="tab:orange")
            ax.set_ylabel(f"{name} {axis} (px)")
    axes[-1, 0].set_xlabel("time (s)")
    axes[-1, 1].set_xlabel("time (s)")
    axes[0, 0].legend()
    fig.suptitle("Keypoint trajectories, model vs ground truth (first test window)")
    fig.tight_layout()
    return _save(fig, path)
