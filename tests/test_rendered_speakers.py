"""The demo VAE's training frames (rendered synthetic speakers, none of them a corpus speaker), the decoded-clip
cache of the pose-video data (same pixels as decoding per example) and `csg-data still`."""

from __future__ import annotations

import cv2
import decord
import numpy as np
import pytest
import torch

from csg_lightning.data.pose_video import DecodedClipCache, PoseVideoDataModule
from csg_lightning.data.rendered_speakers import RenderedFrames, RenderedSpeakersDataModule, render_clips
from csg_lightning.data_cli import main as data_main


def test_render_clips_draws_distinct_speakers_at_the_output_size():
    ids, frames, _ = render_clips(0, 100, 3, clip_seconds=0.4, height=32, width=48)
    assert ids == ["spk100", "spk101", "spk102"]
    assert frames.shape == (3, 10, 3, 32, 48) and frames.dtype == torch.uint8
    again = render_clips(0, 100, 3, clip_seconds=0.4, height=32, width=48)[1]
    assert torch.equal(frames, again)  # deterministic in its arguments
    means = frames.float().mean(dim=(1, 3, 4))  # [speakers, rgb]: each speaker its own palette
    assert torch.cdist(means, means).masked_fill(torch.eye(3, dtype=torch.bool), 1e9).min() > 1.0
    assert (frames[:, 1:].float() - frames[:, :1].float()).abs().amax() > 0  # the figures move


def test_rendered_frames_windows_and_too_short_clips():
    frames = torch.arange(2 * 9, dtype=torch.uint8).view(2, 9, 1, 1, 1).expand(2, 9, 3, 2, 2)
    windows = RenderedFrames(["a", "b"], frames, num_frames=3, frame_stride=4)
    assert len(windows) == 2  # one start per clip: frames 0, 4, 8
    item = windows[1]
    assert item["speaker_id"] == "b" and item["frames"][:, 0, 0, 0].tolist() == [9, 13, 17]
    with pytest.raises(ValueError, match="too short.*clip_seconds"):
        RenderedFrames(["a"], frames[:1], num_frames=4, frame_stride=4)


def test_datamodule_trains_on_rendered_speakers_and_validates_on_the_shards(demo_shards_video):
    dm = RenderedSpeakersDataModule(data_dir=str(demo_shards_video), batch_size=2, num_frames=2, frame_stride=2,
                                    height=32, width=32, num_speakers=2, clip_seconds=0.4)  # fmt: skip
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["frames"].shape == (2, 2, 3, 32, 32) and set(batch["speaker_id"]) <= {"spk100", "spk101"}
    val = next(iter(dm.val_dataloader()))
    assert val["frames"].shape[-2:] == (32, 32) and not set(val["speaker_id"]) & {"spk100", "spk101"}


def test_datamodule_refuses_corpus_speakers(demo_shards_video):
    dm = RenderedSpeakersDataModule(data_dir=str(demo_shards_video), num_speakers=2, first_speaker=0)
    dm.setup("fit")
    with pytest.raises(ValueError, match=r"corpus speakers \['spk00'.*first_speaker"):
        dm.train_dataloader()


def test_decoded_clip_cache_gives_the_same_examples(demo_shards_video):
    kwargs = dict(data_dir=str(demo_shards_video), num_workers=0, num_frames=3, frame_stride=2, height=32,
                  width=32, reference_first=True)  # fmt: skip
    plain, cached = PoseVideoDataModule(**kwargs), PoseVideoDataModule(**kwargs, frame_cache_mb=64)
    plain.setup("fit"), cached.setup("fit")
    for split in ("train", "val"):
        for i in range(len(plain.datasets[split])):
            a, b = plain.datasets[split][i], cached.datasets[split][i]
            for key in ("frames", "reference", "poses", "frame_indices"):
                assert torch.equal(a[key], b[key]), f"{split}[{i}] {key}"
    assert len(cached.datasets["train"].frame_cache.clips) == len(cached.datasets["train"])
    with pytest.raises(ValueError, match="frame_cache_mb must be >= 0"):
        PoseVideoDataModule(**kwargs, frame_cache_mb=-1).setup("fit")


def test_decoded_clip_cache_drops_the_least_recently_used():
    cache = DecodedClipCache(250)
    for key in "abc":
        cache.put(key, np.zeros(100, np.uint8))
    assert list(cache.clips) == ["b", "c"] and cache.size == 200
    assert cache.get("b") is not None and cache.get("a") is None
    cache.put("d", np.zeros(100, np.uint8))
    assert list(cache.clips) == ["b", "d"]  # c was the least recently used


def test_csg_data_still_writes_a_frame_as_a_photo(demo_corpus_video, tmp_path, capsys):
    video = sorted(demo_corpus_video.glob("*/video.mp4"))[0]
    out = tmp_path / "photo" / "still.png"
    data_main(["still", str(video), str(out), "--frame", "3"])
    photo = cv2.imread(str(out))[:, :, ::-1]
    expected = decord.VideoReader(str(video))[3].asnumpy()
    assert photo.shape == expected.shape and np.array_equal(photo, expected)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp file left
    with pytest.raises(SystemExit, match=r"video\.mp4 has \d+ frames; --frame 100000"):
        data_main(["still", str(video), str(tmp_path / "x.png"), "--frame", "100000"])
    with pytest.raises(SystemExit, match="cannot read"):
        data_main(["still", str(tmp_path / "missing.mp4"), str(tmp_path / "y.png")])
