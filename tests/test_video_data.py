"""PoseVideoDataModule: shapes, pose/frame alignment, determinism and errors (demo shards with video)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csg_lightning.data.pose_video import PoseVideoDataModule, PoseVideoDataset
from csg_lightning.data.records import RecordError


@pytest.fixture(scope="module")
def datamodule(demo_shards_video):
    dm = PoseVideoDataModule(demo_shards_video, batch_size=2, num_workers=0, num_frames=4, frame_stride=3,
                             height=64, width=48)  # fmt: skip
    dm.setup("fit")
    return dm


def test_batches_have_the_documented_shapes(datamodule):
    batch = next(iter(datamodule.train_dataloader()))
    b, f, h, w = 1, 4, 64, 48  # one train speaker x one clip
    assert batch["frames"].shape == (b, f, 3, h, w) and batch["frames"].dtype == torch.uint8
    assert batch["poses"].shape == (b, f, 3, h, w) and batch["poses"].dtype == torch.uint8
    assert batch["reference"].shape == (b, 3, h, w) and batch["reference_pose"].shape == (b, 3, h, w)
    assert batch["hand_mask"].shape == (b, f, h // 8, w // 8)
    assert batch["keypoints"].shape == (b, f, 134, 2) and batch["scores"].shape == (b, f, 134)
    assert batch["audio"].shape == (b, ((f - 1) * 3 + 1) * 640)
    idx = batch["frame_indices"][0]
    assert torch.equal(idx - idx[0], torch.arange(f) * 3)
    assert batch["poses"].float().mean() > 0  # something is drawn
    assert datamodule.video_fps == pytest.approx(25 / 3)


def test_keypoints_follow_the_crop(datamodule):
    """A 512x512 clip fitted to 48 wide x 64 high: scaled by 1/8, 8 px cut on each side."""
    from litdata import StreamingDataset

    ds = datamodule.datasets["train"]
    example = ds[0]
    frame = int(example["frame_indices"][0])
    original = StreamingDataset(ds.source)[0]["keypoints"][frame]
    assert np.allclose(example["keypoints"][0].numpy(), original / 8 - np.array([8, 0]), atol=1e-4)


def test_validation_examples_are_fixed(datamodule):
    first = next(iter(datamodule.val_dataloader()))
    again = next(iter(datamodule.val_dataloader()))
    assert torch.equal(first["frame_indices"], again["frame_indices"])
    assert torch.equal(first["frames"], again["frames"])


def test_a_record_without_video_is_refused(datamodule):
    ds: PoseVideoDataset = datamodule.datasets["train"]
    from litdata import StreamingDataset

    record = dict(StreamingDataset(ds.source)[0])
    record["video"] = b""
    with pytest.raises(RecordError, match="field 'video' is empty"):
        ds.make_example(record, 0)
