"""Stage-2 training examples of rendered synthetic speakers (RenderedPoseVideoDataModule): the shards' example
layout, from frames in memory; validation on the shards' held-out speakers; corpus speakers refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csg_lightning.data.corpus.speaker import FRAME_SIZE
from csg_lightning.data.cover_crop import CoverCrop
from csg_lightning.data.pose_video import PoseVideoDataModule
from csg_lightning.data.rendered_pose_video import RenderedPoseVideo, RenderedPoseVideoDataModule
from csg_lightning.data.rendered_speakers import render_clips
from csg_lightning.skeleton.drawing import draw_pose_sequence

HAND = {"min_mean": 0.7, "min_score": 0.5, "margin": 0.15}


@pytest.fixture(scope="module")
def rendered():
    return render_clips(0, 100, 2, clip_seconds=1.0, height=32, width=32)


def test_examples_take_their_frames_and_poses_from_the_rendered_clips(rendered):
    ids, frames, clips = rendered
    data = RenderedPoseVideo(ids, frames, clips, num_frames=4, frame_stride=2, reference_first=True, swap_rb=True,
                             canvas_size=None, hand_options=HAND, seed=3)  # fmt: skip
    assert len(data) == 2 * (25 - 5 + 1)  # span: 3 driven frames 2 apart
    crop = CoverCrop.fit(FRAME_SIZE, FRAME_SIZE, 32, 32)
    for index in (0, 1, 7):
        ex = data[index]
        which = index % 2
        idx = ex["frame_indices"].numpy()
        assert ex["speaker_id"] == ids[which] and idx[0] == int(ex["reference_index"])
        assert torch.equal(ex["frames"], frames[which][idx])  # frame 0 is the reference frame itself
        assert torch.equal(ex["reference"], frames[which][idx[0]])
        assert list(idx[1:]) == [int(ex["start"]) + 2 * k for k in range(3)]
        kp = crop.keypoints(clips[which].keypoints[idx])
        assert np.allclose(ex["keypoints"].numpy(), kp)
        assert np.array_equal(ex["scores"].numpy(), clips[which].scores[idx])
        drawn = draw_pose_sequence(ex["keypoints"].numpy(), ex["scores"].numpy(), 32, 32, (32, 32),
                                   canvas_size=None, swap_rb=True)  # fmt: skip
        assert torch.equal(ex["poses"], torch.from_numpy(drawn.transpose(0, 3, 1, 2).copy()))
        assert torch.equal(ex["poses"][0], ex["reference_pose"])
        assert ex["hand_mask"].shape == (4, 4, 4) and ex["audio"].shape == (5 * 640,)
        again = data[index]
        assert all(torch.equal(ex[k], again[k]) for k in ("frames", "poses", "start"))  # deterministic
    starts = {int(data[i]["start"]) for i in range(0, len(data), 2)}
    assert len(starts) > 3  # windows from all over the clip
    with pytest.raises(ValueError, match="reference_first needs num_frames >= 2"):
        RenderedPoseVideo(ids, frames, clips, num_frames=1, frame_stride=2, reference_first=True, swap_rb=True,
                          canvas_size=None, hand_options=HAND, seed=0)  # fmt: skip


def test_datamodule_trains_on_rendered_speakers_with_the_shards_layout(demo_shards_video):
    kwargs = dict(batch_size=2, num_frames=3, frame_stride=2, height=32, width=32, reference_first=True)
    dm = RenderedPoseVideoDataModule(data_dir=str(demo_shards_video), num_workers=0, num_speakers=2,
                                     clip_seconds=1.0, **kwargs)  # fmt: skip
    shards = PoseVideoDataModule(data_dir=str(demo_shards_video), num_workers=0, **kwargs)
    dm.setup("fit"), shards.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    reference = next(iter(shards.train_dataloader()))  # (the fixture's train split may hold one clip: batch of 1)
    assert len(batch["frames"]) == 2
    assert batch.keys() == reference.keys()
    for key, value in reference.items():
        if isinstance(value, torch.Tensor):
            assert batch[key].shape[1:] == value.shape[1:] and batch[key].dtype == value.dtype, key
    assert set(batch["speaker_id"]) <= {"spk100", "spk101"}
    val = next(iter(dm.val_dataloader()))
    assert val["frames"].shape[-2:] == (32, 32) and not set(val["speaker_id"]) & {"spk100", "spk101"}


def test_datamodule_refuses_corpus_speakers(demo_shards_video):
    dm = RenderedPoseVideoDataModule(data_dir=str(demo_shards_video), num_workers=0, num_speakers=2, first_speaker=0)
    dm.setup("fit")
    with pytest.raises(ValueError, match=r"corpus speakers \['spk00'.*first_speaker"):
        dm.train_dataloader()
