"""``PoseVideoDataModule``: video clips with rendered pose images, streamed from litdata shards (Stage 2).

Each example takes ``num_frames`` frames ``start, start + stride, ...`` of one clip and a reference
frame of the same clip (with ``reference_first``: frame 0 of the example is the reference frame itself,
with its pose, followed by ``num_frames - 1`` frames ``start, start + stride, ...``: the layout of a clip
at inference, where the pose sequence starts with the reference image's pose), decodes them with decord from the record's mp4 bytes (scaled while decoding
so that the frame covers ``width`` x ``height``, then centre-cropped; keypoints follow the same map,
see :class:`~csg_lightning.data.cover_crop.CoverCrop`), draws the pose images on the fly with the
project's renderer (``draw_pose_sequence``, ``canvas_size=None``: drawn at the output size) and builds
the hand masks at latent resolution (:mod:`~csg_lightning.data.hand_mask`).

Training: start and reference frame are drawn from (seed, epoch, record index) (a resumed run sees
the same examples); validation/test: from (seed, record index), never shuffled. Clips shorter than
the span repeat their last frame. A record without video raises a ``RecordError`` naming the clip.
The shard folder is read by the datamodule's :class:`~csg_lightning.data.shard_folder.ShardFolder`
(``self.shards``: manifest checks, split URIs, streaming options, local or remote); DDP/worker
splitting, loaders and mid-epoch resume are those of
:class:`~csg_lightning.data.skeleton_audio.SkeletonAudioDataModule` (this class extends it).

Batch (B = batch, F = num_frames, H x W = height x width, h x w = H/8 x W/8):

- "frames": uint8 [B, F, 3, H, W] RGB; "reference": uint8 [B, 3, H, W]
- "poses": uint8 [B, F, 3, H, W] pose images; "reference_pose": uint8 [B, 3, H, W]
- "hand_mask": float32 [B, F, h, w] (1 on latent cells of confident hands)
- "keypoints": float32 [B, F, 134, 2] pixels of the output frame, "scores": float32 [B, F, 134]
- "reference_keypoints": float32 [B, 134, 2], "reference_scores": float32 [B, 134]
- "audio": float32 [B, S * 640] in [-1, 1], S = (F' - 1) * stride + 1 frames from ``start`` (F' = F, or
  F - 1 with ``reference_first``)
- "frame_indices": int64 [B, F], "reference_index": int64 [B], "start": int64 [B]
- "clip_id", "speaker_id": list[str]
"""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from litdata import StreamingDataset
from litdata.streaming.sampler import ChunkedIndex

from csg_lightning.data.cover_crop import CoverCrop
from csg_lightning.data.hand_mask import hand_mask
from csg_lightning.data.latent_grid import LATENT_DOWNSAMPLE, check_latent_downsample
from csg_lightning.data.records import RecordError, check_record
from csg_lightning.data.skeleton_audio import SkeletonAudioDataModule
from csg_lightning.data.windows import choose_start, cut_window
from csg_lightning.skeleton.drawing import draw_pose, draw_pose_sequence


def decode_video(video: bytes, indices: list[int], size: tuple[int, int] | None, where: str) -> np.ndarray:
    """mp4 bytes -> uint8 [len(indices), h, w, 3] RGB, scaled to ``size`` = (w, h) while decoding."""
    import decord

    try:
        kwargs = {"width": size[0], "height": size[1]} if size is not None else {}
        reader = decord.VideoReader(io.BytesIO(video), ctx=decord.cpu(0), num_threads=1, **kwargs)
    except Exception as err:  # decord raises its own error types
        raise RecordError(f"{where}: field 'video' is not a readable mp4 ({err})") from err
    if max(indices) >= len(reader):
        raise RecordError(
            f"{where}: field 'video' has {len(reader)} frames, fewer than the keypoints need ({max(indices) + 1})"
        )
    return reader.get_batch(indices).asnumpy()


class DecodedClipCache:
    """Decoded clips (uint8 [T, H, W, 3] at the output size) by clip id, the least recently used dropped
    beyond ``capacity`` bytes (0: off). One per dataset copy, so one per DataLoader worker."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.clips, self.size = int(capacity), OrderedDict(), 0

    def get(self, key: str) -> np.ndarray | None:
        clip = self.clips.get(key)
        if clip is not None:
            self.clips.move_to_end(key)
        return clip

    def put(self, key: str, clip: np.ndarray) -> None:
        self.clips[key] = clip
        self.size += clip.nbytes
        while self.size > self.capacity and len(self.clips) > 1:
            self.size -= self.clips.popitem(last=False)[1].nbytes


class PoseVideoDataset(StreamingDataset):
    """One split of shard records -> pose-video examples (a litdata ``StreamingDataset``)."""

    def __init__(
        self,
        input_dir: str,
        num_frames: int = 8,
        frame_stride: int = 2,
        height: int = 64,
        width: int = 64,
        random_examples: bool = True,
        shuffle: bool = True,
        seed: int = 0,
        swap_rb: bool = True,
        canvas_size: int | None = None,
        hand_options: dict | None = None,
        drop_last: bool | None = None,
        cache_dir: str | None = None,
        max_cache_size: int | float | str | None = None,
        reference_first: bool = False,
        frame_cache_mb: int = 0,
        latent_downsample: int = LATENT_DOWNSAMPLE,
    ) -> None:
        super().__init__(
            input_dir, cache_dir=cache_dir, shuffle=shuffle, drop_last=drop_last, seed=seed,
            max_cache_size=max_cache_size,
        )  # fmt: skip
        if frame_cache_mb < 0:
            raise ValueError(f"frame_cache_mb must be >= 0 (0: no cache), got {frame_cache_mb}")
        self.frame_cache = DecodedClipCache(int(frame_cache_mb) << 20)
        if num_frames < 1 or frame_stride < 1:
            raise ValueError(f"num_frames and frame_stride must be >= 1, got {num_frames} and {frame_stride}")
        if reference_first and num_frames < 2:
            raise ValueError(f"reference_first needs num_frames >= 2 (the reference + driven frames), got {num_frames}")
        self.latent_downsample = check_latent_downsample(latent_downsample, height, width)
        self.num_frames, self.frame_stride = num_frames, frame_stride
        self.height, self.width, self.random_examples = height, width, random_examples
        self.swap_rb, self.canvas_size = swap_rb, canvas_size
        self.hand_options = dict(hand_options or {})
        self.source = input_dir
        self.reference_first = bool(reference_first)

    @property
    def window_frames(self) -> int:
        """Frames taken ``frame_stride`` apart from ``start`` (``num_frames``, less the reference frame 0
        with ``reference_first``)."""
        return self.num_frames - int(self.reference_first)

    @property
    def span(self) -> int:
        """Frames from the first to the last sampled frame of the window, inclusive."""
        return (self.window_frames - 1) * self.frame_stride + 1

    def __getitem__(self, index):
        record = super().__getitem__(index)
        if isinstance(index, ChunkedIndex):
            index = index.index
        if not isinstance(index, (int, np.integer)):
            return record
        return self.make_example(record, int(index))

    def make_example(self, record: dict, index: int) -> dict[str, Any]:
        where = f"shard record {record.get('clip_id', '?')!r} (index {index}) in {self.source}"
        num_frames = check_record(record, where)
        video = bytes(record["video"])
        if not video:
            raise RecordError(
                f"{where}: field 'video' is empty; the pose-video datamodule needs clips with video.mp4 "
                "(re-run `csg-data demo` with video and `csg-data shard` into a new dir)"
            )
        if self.random_examples:
            rng = np.random.default_rng([self.seed, self.current_epoch, index])
        else:
            rng = np.random.default_rng([self.seed, index])
        crop = CoverCrop.fit(int(record["width"]), int(record["height"]), self.width, self.height)

        def pixels_at(wanted: list[int]) -> np.ndarray:
            if self.frame_cache.capacity:  # every frame of the clip decoded once (sequential decoding is cheap)
                clip = self.frame_cache.get(record["clip_id"])
                if clip is None:
                    clip = crop.crop(decode_video(video, list(range(num_frames)), crop.scaled, where))
                    self.frame_cache.put(record["clip_id"], np.ascontiguousarray(clip))
                return clip[wanted]
            return crop.crop(decode_video(video, wanted, crop.scaled, where))

        return pose_video_example(
            self, record["keypoints"], record["scores"], record["audio"], num_frames, rng, pixels_at, crop,
            record["clip_id"], record["speaker_id"],
        )  # fmt: skip


def pose_video_example(layout, keypoints, scores, audio, num_frames: int, rng: np.random.Generator, pixels_at,
                       crop: CoverCrop, clip_id: str, speaker_id: str) -> dict[str, Any]:  # fmt: skip
    """One example of a clip (the module docstring's fields): keypoints [T, 134, 2] / scores [T, 134] in the
    clip's pixels, audio [T * 640], ``pixels_at(indices)`` -> uint8 [n, H, W, 3] frames at the output size,
    ``crop`` the clip -> output map; start and reference frame drawn from ``rng``. ``layout``: a
    :class:`PoseVideoDataset` or an object with its ``window_frames``, ``span``, ``frame_stride``,
    ``reference_first``, ``width``, ``height``, ``canvas_size``, ``swap_rb``, ``hand_options`` and
    ``latent_downsample``."""
    start = choose_start(num_frames, layout.span, rng)
    ref_index = int(rng.integers(0, num_frames))
    kp, sc, audio = cut_window(keypoints, scores, audio, start, layout.span)
    offsets = np.arange(layout.window_frames) * layout.frame_stride
    indices = np.minimum(start + offsets, num_frames - 1)
    kp, sc = kp[offsets], sc[offsets]
    sc[start + offsets > num_frames - 1] = 0.0  # padded frames: repeated pixels, no pose
    ref_raw_kp = np.asarray(keypoints[ref_index], dtype=np.float32)
    ref_sc = np.array(scores[ref_index], dtype=np.float32)
    if layout.reference_first:  # frame 0 = the reference frame with its pose, as at inference
        indices = np.concatenate([[ref_index], indices])
        kp, sc = np.concatenate([ref_raw_kp[None], kp]), np.concatenate([ref_sc[None], sc])
    pixels = pixels_at([*indices.tolist(), ref_index])
    pixels = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))  # [F + 1, 3, H, W]
    kp = crop.keypoints(kp)
    ref_kp = crop.keypoints(ref_raw_kp)
    size, drawing = (layout.height, layout.width), {"canvas_size": layout.canvas_size, "swap_rb": layout.swap_rb}
    poses = draw_pose_sequence(kp, sc, layout.width, layout.height, size, **drawing).transpose(0, 3, 1, 2)
    ref_pose = draw_pose(ref_kp, ref_sc, layout.width, layout.height, size, **drawing).transpose(2, 0, 1)
    mask = hand_mask(kp, sc, layout.height, layout.width, layout.latent_downsample, **layout.hand_options)
    return {
        "frames": torch.from_numpy(pixels[:-1].copy()),
        "reference": torch.from_numpy(pixels[-1].copy()),
        "poses": torch.from_numpy(np.ascontiguousarray(poses)),
        "reference_pose": torch.from_numpy(np.ascontiguousarray(ref_pose)),
        "hand_mask": torch.from_numpy(mask),
        "keypoints": torch.from_numpy(kp),
        "scores": torch.from_numpy(sc),
        "reference_keypoints": torch.from_numpy(ref_kp),
        "reference_scores": torch.from_numpy(ref_sc),
        "audio": torch.from_numpy(audio),
        "frame_indices": torch.from_numpy(indices.astype(np.int64)),
        "reference_index": torch.tensor(ref_index, dtype=torch.int64),
        "start": torch.tensor(start, dtype=torch.int64),
        "clip_id": clip_id,
        "speaker_id": speaker_id,
    }


class PoseVideoDataModule(SkeletonAudioDataModule):
    """Streams ``DST/{train,val,test}`` shards (with video) as pose-video examples.

    Args:
        data_dir: the shard dir (local path or s3://... URI); its clips must carry video.
        batch_size, eval_batch_size, num_workers, seed, shuffle, drop_last, pin_memory,
            persistent_workers, cache_dir, max_cache_size: as in ``SkeletonAudioDataModule``.
        num_frames: frames per example (F); frame_stride: source frames between them.
        height, width: output size (multiples of ``latent_downsample``).
        latent_downsample: pixels per latent cell of the Stage-2 VAE, each side (8: SVD's; 4: the demo VAE
            at 1/4 size), the grid of the hand masks.
        swap_rb: MimicMotion's pose colour order (keep True for MimicMotion weights).
        canvas_size: pose drawing canvas short side (None: draw at the output size, fast).
        hand_min_mean, hand_min_score, hand_margin: hand-box rules (see ``data.hand_mask``).
        reference_first: frame 0 of every example is its reference frame with its pose (the layout of
            inference: ``VideoPipeline`` puts the reference pose first and drops frame 0), in training
            and evaluation alike.
        frame_cache_mb: keep every decoded clip (at the output size) in memory up to this many MB per
            dataset copy (per DataLoader worker), so a clip's frames are decoded once, sequentially, instead
            of a seek per example (0: off). The demo's 72 training clips at 64 x 64 take ~270 MB.
    """

    def __init__(
        self,
        data_dir: str = "data/demo/shards",
        batch_size: int = 2,
        num_workers: int = 1,
        num_frames: int = 8,
        frame_stride: int = 2,
        height: int = 64,
        width: int = 64,
        seed: int = 0,
        shuffle: bool = True,
        eval_batch_size: int | None = None,
        drop_last: bool | None = None,
        swap_rb: bool = True,
        canvas_size: int | None = None,
        hand_min_mean: float = 0.7,
        hand_min_score: float = 0.5,
        hand_margin: float = 0.15,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        cache_dir: str | None = None,
        max_cache_size: str | None = None,
        reference_first: bool = False,
        frame_cache_mb: int = 0,
        latent_downsample: int = LATENT_DOWNSAMPLE,
    ) -> None:
        super().__init__(
            data_dir, batch_size=batch_size, num_workers=num_workers, seed=seed, shuffle=shuffle,
            eval_batch_size=eval_batch_size, drop_last=drop_last, pin_memory=pin_memory,
            persistent_workers=persistent_workers, cache_dir=cache_dir, max_cache_size=max_cache_size,
        )  # fmt: skip
        self.save_hyperparameters()
        self.num_frames, self.frame_stride = num_frames, frame_stride
        self.height, self.width = height, width
        self.swap_rb, self.canvas_size = swap_rb, canvas_size
        self.hand_options = {"min_mean": hand_min_mean, "min_score": hand_min_score, "margin": hand_margin}
        self.reference_first = bool(reference_first)
        self.frame_cache_mb = int(frame_cache_mb)
        self.latent_downsample = check_latent_downsample(latent_downsample, height, width)

    @property
    def video_fps(self) -> float:
        """Frame rate of the sampled frames (``timing.FPS`` / frame_stride)."""
        return self.fps / self.frame_stride

    def make_dataset(self, split: str) -> PoseVideoDataset | None:
        """A fresh dataset of one split (None when the split is empty), over ``self.shards`` (the
        :class:`~csg_lightning.data.shard_folder.ShardFolder` this datamodule holds)."""
        uri = self.shards.split_uri(split)
        if uri is None:
            return None
        if not self.shards.split_info(split).get("has_video", True):
            raise RecordError(
                f"{self.data_dir}: the {split} split has no video (manifest has_video=false); the pose-video "
                "datamodule needs shards of clips with video.mp4"
            )
        train = split == "train"
        return PoseVideoDataset(
            uri, num_frames=self.num_frames, frame_stride=self.frame_stride, height=self.height,
            width=self.width, random_examples=train, shuffle=self.shuffle and train, seed=self.seed,
            swap_rb=self.swap_rb, canvas_size=self.canvas_size, hand_options=self.hand_options,
            drop_last=self.drop_last if train else None, reference_first=self.reference_first,
            frame_cache_mb=self.frame_cache_mb, latent_downsample=self.latent_downsample,
            **self.shards.streaming_options(),
        )  # fmt: skip
