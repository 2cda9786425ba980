"""``ShardFolder``: the one reader of a shard folder written by ``csg-data shard`` (local path or remote URI).

A shard folder holds ``manifest.json``, ``stats.npz`` and one litdata split folder per split
(``train/``, ``val/``, ``test/``, each with its ``split.json`` marker). Both datamodules
(``SkeletonAudioDataModule``, ``PoseVideoDataModule``) hold one of these and ask it for the checked
manifest, the normalisation statistics and the URI of each split; they build their own
``StreamingDataset`` over that URI with :meth:`ShardFolder.streaming_options`. Remote folders
(``s3://...``, any fsspec URI) are read through fsspec; litdata caches their chunks in ``cache_dir``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from csg_lightning.data.normalization import STATS_FILENAME, load_stats
from csg_lightning.data.shards import FORMAT, MANIFEST_FILENAME, SPLIT_MARKER, SPLITS, ShardDirError
from csg_lightning.timing import FPS, SAMPLE_RATE


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def join_uri(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}" if is_remote(base) else str(Path(base) / name)


def read_bytes(uri: str) -> bytes:
    """Bytes of a local file or (through fsspec) a remote object; FileNotFoundError if absent."""
    if is_remote(uri):
        import fsspec

        with fsspec.open(uri, "rb") as fh:
            return fh.read()
    return Path(uri.removeprefix("file://")).read_bytes()


class ShardFolder:
    """A shard folder: its checked manifest, its train statistics and its split URIs (read once, lazily).

    Args:
        data_dir: the shard folder (local path or remote URI).
        cache_dir: where litdata caches chunks of remote data (local folders are read in place).
        max_cache_size: litdata's cache budget, e.g. "50GB" (None: litdata's default).
    """

    def __init__(self, data_dir: str, cache_dir: str | None = None, max_cache_size: str | None = None) -> None:
        self.data_dir = str(data_dir)
        self.cache_dir, self.max_cache_size = cache_dir, max_cache_size
        self._manifest: dict | None = None
        self._stats: dict[str, np.ndarray] | None = None

    def __repr__(self) -> str:
        return f"ShardFolder({self.data_dir!r})"

    @property
    def manifest(self) -> dict:
        """``manifest.json``; raises ShardDirError when the folder is incomplete or at other rates."""
        if self._manifest is None:
            uri = join_uri(self.data_dir, MANIFEST_FILENAME)
            try:
                manifest = json.loads(read_bytes(uri))
            except FileNotFoundError as err:
                raise ShardDirError(
                    f"{self.data_dir}: no {MANIFEST_FILENAME}, so the shard dir is incomplete "
                    "or not a shard dir. "
                    "Run (or re-run) `csg-data shard SRC DST`."
                ) from err
            if manifest.get("format") != FORMAT or not manifest.get("complete"):
                raise ShardDirError(f"{uri}: not a complete {FORMAT} manifest")
            if manifest.get("fps") != FPS or manifest.get("sample_rate") != SAMPLE_RATE:
                raise ShardDirError(
                    f"{uri}: fps/sample_rate {manifest.get('fps')}/{manifest.get('sample_rate')}, "
                    f"expected {FPS}/{SAMPLE_RATE}"
                )
            self._manifest = manifest
        return self._manifest

    def all_stats(self) -> dict[str, np.ndarray]:
        """Everything in ``stats.npz`` (cached: do not modify; :attr:`stats` returns copies)."""
        if self._stats is None:
            uri = join_uri(self.data_dir, STATS_FILENAME)
            try:
                self._stats = load_stats(io.BytesIO(read_bytes(uri)))
            except FileNotFoundError as err:
                raise ShardDirError(
                    f"{uri}: missing; re-run `csg-data shard SRC DST` to finish the shard dir"
                ) from err
        return self._stats

    @property
    def stats(self) -> dict[str, np.ndarray]:
        """Normalisation statistics of the train split: {"mean": [246], "std": [246]} (float32 copies)."""
        s = self.all_stats()
        return {"mean": s["mean"].copy(), "std": s["std"].copy()}

    @property
    def default_reference(self) -> tuple[np.ndarray, np.ndarray]:
        """A typical confident train frame: (keypoints float32 [134, 2], scores float32 [134])."""
        s = self.all_stats()
        return s["reference_keypoints"].copy(), s["reference_scores"].copy()

    def split_info(self, split: str) -> dict:
        """The manifest's entry of ``split`` (num_records, has_video, ...); raises for an unknown split."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        info = self.manifest["splits"].get(split)
        if info is None:
            raise ShardDirError(
                f"{self.data_dir}: manifest has no split {split!r} (splits: {list(self.manifest['splits'])})"
            )
        return info

    def split_uri(self, split: str) -> str | None:
        """URI of a complete, non-empty split, None for an empty one; raises for an incomplete one."""
        info = self.split_info(split)
        if info["num_records"] == 0:
            return None
        uri = join_uri(self.data_dir, split)
        try:
            marker = json.loads(read_bytes(join_uri(uri, SPLIT_MARKER)))
        except FileNotFoundError as err:
            raise ShardDirError(
                f"{uri}: no {SPLIT_MARKER}; the split is incomplete. Re-run `csg-data shard`."
            ) from err
        if marker.get("num_records") != info["num_records"]:
            raise ShardDirError(
                f"{uri}: {SPLIT_MARKER} disagrees with {MANIFEST_FILENAME}; re-shard into a new dir"
            )
        return uri

    def streaming_options(self) -> dict[str, Any]:
        """The keyword arguments every ``StreamingDataset`` over a split of this folder takes."""
        return {"cache_dir": self.cache_dir, "max_cache_size": self.max_cache_size}
