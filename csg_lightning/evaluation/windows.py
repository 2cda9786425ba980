"""Evaluation windows: fixed test-split windows from the datamodule, several passes for more samples.

Pass k uses the datamodule seed ``seed + k`` (a different fixed window start per clip); windows
already seen (same clip and start) are skipped, and collection stops at ``max_windows`` or when a
pass adds nothing new. Batches are the datamodule's dicts (see ``data/skeleton_audio.py``).
"""

from __future__ import annotations

import numpy as np
import torch

from csg_lightning.data.skeleton_audio import SkeletonAudioDataModule

_PER_ITEM = ("features", "mask", "keypoints", "scores", "reference_keypoints", "reference_scores", "audio",
             "start", "width", "height")  # fmt: skip


def _select(batch: dict, keep: list[int]) -> dict:
    out = {k: batch[k][keep] for k in _PER_ITEM if k in batch}
    for key in ("clip_id", "speaker_id"):
        out[key] = [batch[key][i] for i in keep]
    return out


def collect_windows(
    data_dir: str, window: int, num_prefix: int, max_windows: int = 48, seed: int = 0, batch_size: int = 8
) -> list[dict]:
    """Batches of distinct test-split windows (P + W frames), at most ``max_windows`` windows in all."""
    batches, seen, total, k = [], set(), 0, 0
    while total < max_windows:
        dm = SkeletonAudioDataModule(data_dir, batch_size=batch_size, num_workers=0, window=window,
                                     num_prefix=num_prefix, seed=seed + k, eval_batch_size=batch_size)  # fmt: skip
        loader = dm.test_dataloader()
        if not isinstance(loader, torch.utils.data.DataLoader):
            raise ValueError(f"{data_dir}: the test split is empty; nothing to evaluate")
        added = 0
        for batch in loader:
            keep = []
            for i, (clip, start) in enumerate(zip(batch["clip_id"], batch["start"].tolist(), strict=True)):
                if (clip, start) not in seen and total + len(keep) < max_windows:
                    seen.add((clip, start))
                    keep.append(i)
            if keep:
                batches.append(_select(batch, keep))
                total += len(keep)
                added += len(keep)
        if added == 0:
            break
        k += 1
    return batches


def train_pool(data_dir: str, window: int, num_prefix: int, size: int = 32, seed: int = 0) -> list[dict]:
    """Up to ``size`` real train-split windows (one per drawn record): dicts of keypoints [L, 134, 2],
    scores [L, 134], speaker_id."""
    dm = SkeletonAudioDataModule(data_dir, num_workers=0, window=window, num_prefix=num_prefix, seed=seed)
    dataset = dm.make_dataset("train")
    if dataset is None:
        return []
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(dataset))[:size]
    pool = []
    for i in order.tolist():
        example = dataset[int(i)]
        pool.append({k: example[k] for k in ("keypoints", "scores", "speaker_id")})
    return pool
