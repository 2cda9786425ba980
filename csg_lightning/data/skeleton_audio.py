"""``SkeletonAudioDataModule``: aligned skeleton + audio windows streamed from litdata shards.

Each example is a window of ``num_prefix + window`` frames (default 25 + 250 at 25 fps) cut from
one clip, with its audio (640 samples per frame). Batches are dicts (B = batch, L = P + W):

- "features": float32 [B, L, 246] z-scored local features (prefix frames first)
- "mask": float32 [B, L, 123] 1.0 where the local point is confident (local_confidence > 0.7)
- "keypoints": float32 [B, L, 134, 2] raw pixels, "scores": float32 [B, L, 134]
- "reference_keypoints": float32 [B, 134, 2], "reference_scores": float32 [B, 134] (last prefix frame)
- "audio": float32 [B, L * 640] in [-1, 1]; frame f <-> samples [f * 640, (f + 1) * 640)
- "clip_id": list[str], "speaker_id": list[str], "start": int64 [B] (first prefix frame in the clip)
- "width", "height": int64 [B], the pixel frame the keypoints live in
- with precomputed audio features (``csg-data features``; ``audio_features``, default: ``DATA/audio_features``
  when it exists): "audio_features" float32 [B, L, C] (frame f <-> the same samples as above) and
  "audio_features_id": list[str], the encoder's identity (``data/audio_features.py``); the model uses them
  instead of running its (frozen, identical) encoder

Training windows start uniformly at random, drawn from (seed, epoch, record index), so a resumed
run sees the same windows. Validation/test windows are fixed: drawn from (seed, record index),
never shuffled. Clips shorter than L are padded at the end (see ``csg_lightning.data.windows``).
Splitting across DDP ranks and DataLoader workers is litdata's (each record once per epoch; under
DDP litdata drops the remainder so every rank gets the same number of records).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from litdata import StreamingDataset
from litdata.streaming.sampler import ChunkedIndex

from csg_lightning.data.audio_features import (
    AudioFeatureFolder,
    AudioFeaturesError,
    AudioFeaturesMissing,
    cut_features,
)
from csg_lightning.data.normalization import local_features, normalize
from csg_lightning.data.records import check_record
from csg_lightning.data.resumable_loader import ResumableStreamingDataLoader
from csg_lightning.data.shard_folder import ShardFolder, join_uri, read_bytes
from csg_lightning.data.shards import SPLITS, ShardDirError
from csg_lightning.data.windows import choose_start, cut_window
from csg_lightning.skeleton.local import CONFIDENCE_THRESHOLD, local_confidence
from csg_lightning.timing import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME

__all__ = ["ClipWindowDataset", "ResumableStreamingDataLoader", "SkeletonAudioDataModule", "window_example"]


class ClipWindowDataset(StreamingDataset):
    """One split of shard records -> window examples (a litdata ``StreamingDataset``).

    ``stats``: mapping with mean/std [246]. ``random_windows``: training windows (random start per
    (seed, epoch, index)) or fixed evaluation windows (per (seed, index)). Every record is
    checked with :func:`~csg_lightning.data.records.check_record`; a malformed one raises a
    ``RecordError`` naming the clip, the split dir and the field.
    """

    def __init__(
        self,
        input_dir: str,
        stats: Mapping,
        window: int = 250,
        num_prefix: int = 25,
        random_windows: bool = True,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool | None = None,
        cache_dir: str | None = None,
        max_cache_size: int | float | str | None = None,
        features_dir: str | None = None,
        features_id: str | None = None,
    ) -> None:
        super().__init__(
            input_dir,
            cache_dir=cache_dir,
            shuffle=shuffle,
            drop_last=drop_last,
            seed=seed,
            max_cache_size=max_cache_size,
        )
        if window < 1 or num_prefix < 1:
            raise ValueError(f"window and num_prefix must be >= 1, got {window} and {num_prefix}")
        self.window, self.num_prefix, self.random_windows = window, num_prefix, random_windows
        self.mean = np.asarray(stats["mean"], dtype=np.float32)
        self.std = np.asarray(stats["std"], dtype=np.float32)
        self.source = input_dir
        self.features_dir, self.features_id = features_dir, features_id
        self._features: StreamingDataset | None = None
        self._features_options = {"cache_dir": cache_dir, "max_cache_size": max_cache_size}

    def _audio_features(self, record: dict, index: int, start: int) -> np.ndarray:
        """The precomputed features of this window [L, C] (same record index in the sidecar split)."""
        if self._features is None:
            self._features = StreamingDataset(self.features_dir, shuffle=False, **self._features_options)
        entry = self._features[index]
        if entry["clip_id"] != record["clip_id"]:
            raise AudioFeaturesError(
                f"{self.features_dir}: record {index} holds features of {entry['clip_id']!r}, the shards hold "
                f"{record['clip_id']!r}; re-run `csg-data features` on {self.source}'s shard folder"
            )
        return cut_features(entry["features"], start, self.length)

    @property
    def length(self) -> int:
        return self.num_prefix + self.window

    def __getitem__(self, index):
        record = super().__getitem__(index)
        if isinstance(index, ChunkedIndex):
            index = index.index
        if not isinstance(index, (int, np.integer)):
            return record  # slices / keys: raw records
        return self.make_example(record, int(index))

    def make_example(self, record: dict, index: int) -> dict[str, Any]:
        """Record of clip ``index`` in this split -> one example (unbatched shapes, L = P + W)."""
        where = f"shard record {record.get('clip_id', '?')!r} (index {index}) in {self.source}"
        num_frames = check_record(record, where)
        if self.random_windows:
            rng = np.random.default_rng([self.seed, self.current_epoch, index])
        else:
            rng = np.random.default_rng([self.seed, index])
        start = choose_start(num_frames, self.length, rng)
        extra = {}
        if self.features_dir is not None:
            extra = {"audio_features": torch.from_numpy(self._audio_features(record, index, start)),
                     "audio_features_id": self.features_id}  # fmt: skip
        return {**window_example(record, start, self.num_prefix, self.window, self.mean, self.std), **extra}


def window_example(clip: Mapping, start: int, num_prefix: int, window: int, mean: np.ndarray,
                   std: np.ndarray) -> dict[str, Any]:  # fmt: skip
    """The example of the ``num_prefix + window`` frames of ``clip`` from ``start`` (unbatched shapes; the
    fields of the module docstring but the audio features). ``clip``: a checked shard record, or anything
    with its fields (keypoints [T, 134, 2], scores [T, 134], audio int16 or float [N], clip_id, speaker_id,
    width, height)."""
    length = num_prefix + window
    kp, sc, audio = cut_window(clip["keypoints"], clip["scores"], clip["audio"], start, length)
    features = normalize(local_features(kp), {"mean": mean, "std": std})
    mask = (local_confidence(sc) > CONFIDENCE_THRESHOLD).astype(np.float32)
    ref = num_prefix - 1
    return {
        "features": torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)),
        "mask": torch.from_numpy(mask),
        "keypoints": torch.from_numpy(kp),
        "scores": torch.from_numpy(sc),
        "reference_keypoints": torch.from_numpy(kp[ref].copy()),
        "reference_scores": torch.from_numpy(sc[ref].copy()),
        "audio": torch.from_numpy(audio),
        "clip_id": clip["clip_id"],
        "speaker_id": clip["speaker_id"],
        "start": torch.tensor(start, dtype=torch.int64),
        "width": torch.tensor(int(clip["width"]), dtype=torch.int64),
        "height": torch.tensor(int(clip["height"]), dtype=torch.int64),
    }


class SkeletonAudioDataModule(LightningDataModule):
    """Streams ``DST/{train,val,test}`` written by ``csg-data shard`` (local path or s3://... URI).

    Args:
        data_dir: the shard dir (holds manifest.json, stats.npz, train/, val/, test/).
        batch_size: training batch size; ``eval_batch_size`` (default: the same) for val/test.
        num_workers: DataLoader worker processes per rank.
        window: frames predicted per example (W); num_prefix: prefix frames before it (P).
        seed: shuffling and window-start seed.
        shuffle: shuffle the train split (val/test are never shuffled).
        drop_last: litdata's ``drop_last`` for train (None: True under DDP, else False).
        cache_dir: where litdata caches chunks of remote data (local dirs are read in place).
        max_cache_size: litdata cache budget, e.g. "50GB" (None: litdata's default).
        audio_features: folder of precomputed audio features (``csg-data features``); "auto": ``DATA/audio_features``
            when it exists; None: never (the model runs its encoder on the raw audio).
    """

    def __init__(
        self,
        data_dir: str = "data/demo/shards",
        batch_size: int = 8,
        num_workers: int = 2,
        window: int = 250,
        num_prefix: int = 25,
        seed: int = 0,
        shuffle: bool = True,
        eval_batch_size: int | None = None,
        drop_last: bool | None = None,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        cache_dir: str | None = None,
        max_cache_size: str | None = None,
        audio_features: str | None = "auto",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.audio_features = audio_features
        self._features_folder: AudioFeatureFolder | None | bool = False  # False: not looked up yet
        self.data_dir = str(data_dir)
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.window, self.num_prefix, self.seed = num_workers, window, num_prefix, seed
        self.shuffle, self.drop_last = shuffle, drop_last
        self.pin_memory, self.persistent_workers = pin_memory, persistent_workers
        self.cache_dir, self.max_cache_size = cache_dir, max_cache_size
        self.fps, self.sample_rate, self.samples_per_frame = FPS, SAMPLE_RATE, SAMPLES_PER_FRAME
        self.shards = ShardFolder(self.data_dir, cache_dir=cache_dir, max_cache_size=max_cache_size)
        self.datasets: dict[str, ClipWindowDataset] = {}
        self._train_loader: ResumableStreamingDataLoader | None = None
        self._pending_state: dict | None = None

    # -- shard folder metadata (read by self.shards) ----------------------------------------------
    @property
    def manifest(self) -> dict:
        """``DST/manifest.json``; raises ShardDirError when the shard dir is incomplete."""
        return self.shards.manifest

    @property
    def stats(self) -> dict[str, np.ndarray]:
        """Normalisation statistics of the train split: {"mean": [246], "std": [246]} (float32)."""
        return self.shards.stats

    @property
    def default_reference(self) -> tuple[np.ndarray, np.ndarray]:
        """A typical confident train frame: (keypoints float32 [134, 2], scores float32 [134])."""
        return self.shards.default_reference

    @property
    def length(self) -> int:
        """Frames per example: num_prefix + window."""
        return self.num_prefix + self.window

    @property
    def audio_features_folder(self) -> AudioFeatureFolder | None:
        """The precomputed audio features streamed with the windows (None: none, the model encodes raw audio)."""
        if self._features_folder is False:
            folder, path = None, self.audio_features
            if path == "auto":
                try:
                    folder = AudioFeatureFolder(join_uri(self.data_dir, "audio_features"), read_bytes, join_uri)
                except AudioFeaturesMissing:
                    folder = None  # no (readable) features folder beside the shards: raw audio
            elif path:
                folder = AudioFeatureFolder(str(path), read_bytes, join_uri)
            self._features_folder = folder
        return self._features_folder

    @property
    def audio_features_identity(self) -> dict | None:
        """The identity of the encoder that wrote the streamed features (None without features)."""
        folder = self.audio_features_folder
        return None if folder is None else {**folder.identity, "encoder_file": folder.encoder_file}

    # -- datasets -------------------------------------------------------------------------------
    def make_dataset(self, split: str) -> ClipWindowDataset | None:
        """A fresh dataset of one split (None when the split is empty)."""
        uri = self.shards.split_uri(split)
        if uri is None:
            return None
        train = split == "train"
        folder, features = self.audio_features_folder, {}
        if folder is not None:
            features = {"features_dir": folder.split_uri(split, self.shards.split_info(split)["clip_ids"]),
                        "features_id": folder.identity["id"]}  # fmt: skip
        return ClipWindowDataset(
            uri,
            self.stats,
            window=self.window,
            num_prefix=self.num_prefix,
            random_windows=train,
            shuffle=self.shuffle and train,
            seed=self.seed,
            drop_last=self.drop_last if train else None,
            **self.shards.streaming_options(),
            **features,
        )

    def setup(self, stage: str | None = None) -> None:
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in needed.get(stage, SPLITS) if stage else SPLITS:
            if split not in self.datasets:
                dataset = self.make_dataset(split)
                if dataset is not None:
                    self.datasets[split] = dataset
        if "train" in needed.get(stage or "fit", ()) and "train" not in self.datasets:
            raise ShardDirError(f"{self.data_dir}: the train split is empty")

    # -- loaders --------------------------------------------------------------------------------
    def _loader(self, split: str, batch_size: int) -> ResumableStreamingDataLoader | list:
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate"}.get(split, "test"))
        if split not in self.datasets:
            return []  # an empty split: Lightning skips it
        return ResumableStreamingDataLoader(
            self.datasets[split],
            batch_size=batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
        )

    def train_dataloader(self) -> ResumableStreamingDataLoader:
        loader = self._loader("train", self.batch_size)
        if self._pending_state:
            loader.load_state_dict(self._pending_state)
        self._train_loader = loader
        return loader

    def val_dataloader(self):
        return self._loader("val", self.eval_batch_size)

    def test_dataloader(self):
        return self._loader("test", self.eval_batch_size)

    # -- resumable state ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The train loader's litdata state (mid-epoch position), saved in Lightning checkpoints."""
        if self._train_loader is not None and self._train_loader.current_epoch > 0:
            return {"train_loader": self._train_loader.state_dict()}
        return {"train_loader": self._pending_state} if self._pending_state else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the train position; applied now or when ``train_dataloader()`` is next built."""
        self._pending_state = state_dict.get("train_loader") or None
        if self._pending_state and self._train_loader is not None:
            self._train_loader.load_state_dict(self._pending_state)
