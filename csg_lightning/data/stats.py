"""Normalisation statistics of the local features and the default reference frame.

Both are computed over the train split and written to ``DST/stats.npz``:

* ``mean`` / ``std`` [246]: per local feature, over the frames where that local point is confident
  (``local_confidence > 0.7``; a local offset counts only when the point and its anchor are
  confident). Features never confident get mean 0, std 1; std is floored at ``MIN_STD`` pixels.
* ``reference_keypoints`` [134, 2] / ``reference_scores`` [134]: "a typical confident frame": among
  the frames with the most confident local points (at least ``REFERENCE_MIN_CONFIDENT`` of them,
  or the best available), the one whose z-scored local features are closest to zero in RMS.
  The Stage-1 model uses it as its default reference skeleton.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from csg_lightning.data.normalization import local_features
from csg_lightning.io.atomic import atomic_path
from csg_lightning.skeleton.local import CONFIDENCE_THRESHOLD, NUM_LOCAL_FEATURES, local_confidence

MIN_STD = 1e-3
REFERENCE_MIN_CONFIDENT = 0.95


def feature_mask(scores: np.ndarray) -> np.ndarray:
    """[T, 134] scores -> bool [T, 246]: both coordinates of a confident local point."""
    confident = local_confidence(scores) > CONFIDENCE_THRESHOLD
    return np.repeat(confident, 2, axis=-1)


class LocalMoments:
    """Running confidence-masked sums of the local features (float64, order independent)."""

    def __init__(self) -> None:
        self.count = np.zeros(NUM_LOCAL_FEATURES, dtype=np.int64)
        self.total = np.zeros(NUM_LOCAL_FEATURES, dtype=np.float64)
        self.total_sq = np.zeros(NUM_LOCAL_FEATURES, dtype=np.float64)
        self.num_frames = 0

    def add(self, keypoints: np.ndarray, scores: np.ndarray) -> None:
        """keypoints [T, 134, 2], scores [T, 134]."""
        feats = local_features(keypoints.astype(np.float64))
        mask = feature_mask(scores)
        feats = np.where(mask, feats, 0.0)
        self.count += mask.sum(axis=0)
        self.total += feats.sum(axis=0)
        self.total_sq += (feats * feats).sum(axis=0)
        self.num_frames += keypoints.shape[0]

    def finalize(self) -> tuple[np.ndarray, np.ndarray]:
        """-> mean [246], std [246] as float32."""
        n = np.maximum(self.count, 1)
        mean = self.total / n
        var = np.maximum(self.total_sq / n - mean * mean, 0.0)
        std = np.sqrt(var)
        mean = np.where(self.count > 0, mean, 0.0)
        std = np.where(self.count > 1, np.maximum(std, MIN_STD), 1.0)
        return mean.astype(np.float32), std.astype(np.float32)


class ReferenceSearch:
    """Keeps the most typical confident frame seen so far (needs the final mean/std)."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, stride: int = 1) -> None:
        self.mean, self.std, self.stride = mean.astype(np.float64), std.astype(np.float64), stride
        self.best_key: tuple[float, float] | None = None
        self.best: tuple[np.ndarray, np.ndarray, str, int] | None = None

    def add(self, clip_id: str, keypoints: np.ndarray, scores: np.ndarray) -> None:
        kp, sc = keypoints[:: self.stride], scores[:: self.stride]
        confident = local_confidence(sc) > CONFIDENCE_THRESHOLD  # [T, 123]
        fraction = confident.mean(axis=-1)
        z = (local_features(kp.astype(np.float64)) - self.mean) / self.std
        rms = np.sqrt((z * z).mean(axis=-1))
        # Frames above the bar compete on typicality alone; below it, more confident wins first.
        level = np.minimum(fraction, REFERENCE_MIN_CONFIDENT)
        order = np.lexsort((rms, -level))
        i = int(order[0])
        key = (-float(level[i]), float(rms[i]))
        if self.best_key is None or key < self.best_key:
            self.best_key = key
            self.best = (kp[i].copy(), sc[i].copy(), clip_id, i * self.stride)

    def result(self) -> tuple[np.ndarray, np.ndarray, str, int]:
        if self.best is None:
            raise ValueError("no frames were given to the reference search")
        return self.best


def compute_stats(
    records, progress: bool = False, desc: str = "stats", total: int | None = None
) -> dict[str, np.ndarray]:
    """Statistics over ``records``: a callable returning a fresh iterable of record dicts.

    It is iterated twice (moments, then the reference frame). Returns the dict written to
    stats.npz (see the module docstring).
    """
    from tqdm.auto import tqdm

    moments = LocalMoments()
    for rec in tqdm(records(), desc=f"{desc} (1/2)", disable=not progress, unit="clip", total=total):
        moments.add(rec["keypoints"], rec["scores"])
    if moments.num_frames == 0:
        raise ValueError("cannot compute statistics: the train split holds no frames")
    mean, std = moments.finalize()
    search = ReferenceSearch(mean, std)
    for rec in tqdm(records(), desc=f"{desc} (2/2)", disable=not progress, unit="clip", total=total):
        search.add(rec["clip_id"], rec["keypoints"], rec["scores"])
    ref_kp, ref_sc, ref_clip, ref_frame = search.result()
    return {
        "mean": mean,
        "std": std,
        "count": moments.count,
        "num_frames": np.asarray(moments.num_frames, dtype=np.int64),
        "reference_keypoints": ref_kp.astype(np.float32),
        "reference_scores": ref_sc.astype(np.float32),
        "reference_clip_id": np.asarray(ref_clip),
        "reference_frame": np.asarray(ref_frame, dtype=np.int64),
    }


def save_stats(path: str | os.PathLike, stats: dict[str, np.ndarray]) -> Path:
    """Write stats.npz atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **stats)
    return path
