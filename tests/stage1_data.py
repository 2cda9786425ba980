"""Synthetic Stage-1 batches in the datamodule's contract format, for the model's unit tests.

Skeletons are a fixed base pose plus smooth sinusoidal motion whose amplitude follows the audio
envelope, so the model has something learnable; the datamodule mirrors the attributes of
``SkeletonAudioDataModule`` (``stats``, ``default_reference``, ``window``, ``num_prefix``).
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from csg_lightning.skeleton.layout import NUM_KEYPOINTS, SkeletonLayout
from csg_lightning.skeleton.local import local_confidence, to_local

SPF = 640


def base_pose(rng: np.random.Generator) -> np.ndarray:
    """[134, 2] pixels of a plausible 512 x 512 upper body."""
    kp = rng.normal(0, 4, (NUM_KEYPOINTS, 2)).astype(np.float32) + np.array([256, 300], np.float32)
    kp[SkeletonLayout.NOSE] = (256, 170)
    kp[SkeletonLayout.FACE] = kp[SkeletonLayout.NOSE] + rng.normal(0, 15, (68, 2))
    kp[SkeletonLayout.LEFT_SHOULDER], kp[SkeletonLayout.RIGHT_SHOULDER] = (320, 250), (192, 250)
    kp[SkeletonLayout.NECK] = (256, 250)
    kp[SkeletonLayout.LEFT_WRIST], kp[SkeletonLayout.RIGHT_WRIST] = (340, 380), (172, 380)
    kp[SkeletonLayout.LEFT_HAND] = kp[SkeletonLayout.LEFT_WRIST] + rng.normal(0, 10, (21, 2))
    kp[SkeletonLayout.RIGHT_HAND] = kp[SkeletonLayout.RIGHT_WRIST] + rng.normal(0, 10, (21, 2))
    return kp


def make_clip(rng: np.random.Generator, frames: int) -> dict[str, np.ndarray]:
    """One clip: keypoints [T, 134, 2], scores [T, 134], audio [T * 640]."""
    t = np.arange(frames * SPF) / 16000.0
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.3, 0.8) * t + rng.uniform(0, 6))
    audio = (0.3 * envelope * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    env_frames = envelope[::SPF][:frames]
    kp = np.repeat(base_pose(rng)[None], frames, 0)
    phase = np.arange(frames) / 25.0 * 2 * np.pi * 1.5
    swing = (20 * env_frames * np.sin(phase))[:, None]
    for wrist, hand in ((9, SkeletonLayout.LEFT_HAND), (10, SkeletonLayout.RIGHT_HAND)):
        kp[:, wrist, 1] += swing[:, 0]
        kp[:, hand, 1] += swing
    scores = np.full((frames, NUM_KEYPOINTS), 0.95, np.float32)
    scores[rng.random((frames, NUM_KEYPOINTS)) < 0.05] = 0.3
    return {"keypoints": kp.astype(np.float32), "scores": scores, "audio": audio}


def feature_stats(clips: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    feats = np.concatenate([to_local(c["keypoints"]).reshape(len(c["keypoints"]), -1) for c in clips])
    return {"mean": feats.mean(0).astype(np.float32), "std": (feats.std(0) + 1e-3).astype(np.float32)}


class WindowDataset(Dataset):
    def __init__(self, clips, stats, window: int, num_prefix: int, count: int, seed: int) -> None:
        self.clips, self.stats, self.window, self.num_prefix = clips, stats, window, num_prefix
        self.count, self.seed = count, seed

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict:
        rng = np.random.default_rng(self.seed + i)
        clip = self.clips[i % len(self.clips)]
        n = self.window + self.num_prefix
        start = int(rng.integers(0, len(clip["keypoints"]) - n + 1))
        kp = clip["keypoints"][start : start + n]
        sc = clip["scores"][start : start + n]
        feats = (to_local(kp).reshape(n, -1) - self.stats["mean"]) / self.stats["std"]
        last = self.num_prefix - 1
        return {
            "features": torch.from_numpy(feats.astype(np.float32)),
            "mask": torch.from_numpy((local_confidence(sc) > 0.7).astype(np.float32)),
            "keypoints": torch.from_numpy(kp),
            "scores": torch.from_numpy(sc),
            "reference_keypoints": torch.from_numpy(kp[last]),
            "reference_scores": torch.from_numpy(sc[last]),
            "audio": torch.from_numpy(clip["audio"][start * SPF : (start + n) * SPF]),
            "clip_id": f"clip{i % len(self.clips)}",
            "speaker_id": "spk00",
            "start": torch.tensor(start),
        }


class SyntheticSkeletonData(L.LightningDataModule):
    """Random-but-structured batches with the contract's keys, shapes and attributes."""

    def __init__(
        self,
        window: int = 20,
        num_prefix: int = 5,
        batch_size: int = 4,
        num_clips: int = 3,
        clip_frames: int = 80,
        train_items: int = 16,
        val_items: int = 4,
        seed: int = 0,
    ) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.window, self.num_prefix, self.batch_size = window, num_prefix, batch_size
        self.fps, self.sample_rate = 25, 16000
        self.clips = [make_clip(rng, clip_frames) for _ in range(num_clips)]
        self.stats = feature_stats(self.clips)
        self.default_reference = (self.clips[0]["keypoints"][0], self.clips[0]["scores"][0] * 0 + 0.95)
        self.train_items, self.val_items, self.seed = train_items, val_items, seed

    def _loader(self, count: int, seed: int) -> DataLoader:
        ds = WindowDataset(self.clips, self.stats, self.window, self.num_prefix, count, seed)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=False, num_workers=0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_items, self.seed)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_items, self.seed + 10_000)

    def predict_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def one_batch(self, split: str = "val") -> dict:
        return next(iter(self.val_dataloader() if split == "val" else self.train_dataloader()))
