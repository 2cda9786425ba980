"""Stage-1 training windows of generated synthetic speakers (GeneratedSkeletonAudioDataModule): the shards' example
layout from clips in memory; validation on the shards' held-out speakers; corpus speakers refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csg_lightning.data.corpus.generate import make_clip
from csg_lightning.data.generated_skeleton_audio import (
    GeneratedClipWindows,
    GeneratedSkeletonAudioDataModule,
    clip_record,
)
from csg_lightning.data.normalization import local_features, normalize
from csg_lightning.data.skeleton_audio import SkeletonAudioDataModule
from csg_lightning.io.audio import to_float
from csg_lightning.timing import SAMPLES_PER_FRAME

STATS = {"mean": np.zeros(246, np.float32), "std": np.ones(246, np.float32)}


def test_windows_are_cut_from_the_generated_clips():
    clips = [clip_record(make_clip(0, 300 + i, 0, clip_seconds=2.0)) for i in range(2)]
    data = GeneratedClipWindows(clips, STATS, window=20, num_prefix=5)
    assert len(data) == 2 * (50 - 25 + 1)
    for index in (0, 27, len(data) - 1):
        clip, start = divmod(index, 26)
        ex = data[index]
        assert ex["clip_id"] == clips[clip]["clip_id"] and ex["speaker_id"] == f"spk{300 + clip}"
        assert int(ex["start"]) == start
        kp = clips[clip]["keypoints"][start : start + 25]
        assert np.array_equal(ex["keypoints"].numpy(), kp)
        assert np.array_equal(ex["scores"].numpy(), clips[clip]["scores"][start : start + 25])
        assert np.array_equal(ex["reference_keypoints"].numpy(), kp[4])  # the last prefix frame
        assert np.allclose(ex["features"].numpy(), normalize(local_features(kp), STATS))
        audio = to_float(clips[clip]["audio"][start * SAMPLES_PER_FRAME : (start + 25) * SAMPLES_PER_FRAME])
        assert np.allclose(ex["audio"].numpy(), audio)
        assert int(ex["width"]) == 512 and int(ex["height"]) == 512
    with pytest.raises(ValueError, match="shorter than a window"):
        GeneratedClipWindows(clips, STATS, window=60, num_prefix=5)
    with pytest.raises(ValueError, match="one length"):
        GeneratedClipWindows([clips[0], clip_record(make_clip(0, 302, 0, clip_seconds=3.0))], STATS, 20, 5)


def test_datamodule_trains_on_generated_speakers_with_the_shards_layout(demo_shards):
    kwargs = dict(batch_size=3, window=50, num_prefix=10)
    dm = GeneratedSkeletonAudioDataModule(data_dir=str(demo_shards), num_speakers=2, clip_seconds=4.0, **kwargs)
    shards = SkeletonAudioDataModule(data_dir=str(demo_shards), num_workers=0, **kwargs)
    dm.setup("fit"), shards.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    reference = next(iter(shards.train_dataloader()))
    assert batch.keys() == reference.keys()
    for key, value in reference.items():
        if isinstance(value, torch.Tensor):
            assert batch[key].shape[1:] == value.shape[1:] and batch[key].dtype == value.dtype, key
    assert len(batch["features"]) == 3 and set(batch["speaker_id"]) <= {"spk300", "spk301"}
    assert np.array_equal(dm.generated.mean, shards.stats["mean"])  # the shards' normalisation
    val = next(iter(dm.val_dataloader()))
    assert not set(val["speaker_id"]) & {"spk300", "spk301"}
    first = [b["start"] for b, _ in zip(dm.train_dataloader(), range(2), strict=False)]
    again = [b["start"] for b, _ in zip(dm.train_dataloader(), range(2), strict=False)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))  # seeded order


def test_datamodule_refuses_corpus_speakers_and_bad_counts(demo_shards):
    dm = GeneratedSkeletonAudioDataModule(data_dir=str(demo_shards), num_speakers=2, first_speaker=0, window=50,
                                          num_prefix=10, clip_seconds=4.0)  # fmt: skip
    dm.setup("fit")
    with pytest.raises(ValueError, match=r"corpus speakers \['spk00'.*first_speaker"):
        dm.train_dataloader()
    with pytest.raises(ValueError, match="clips_per_speaker must be >= 1"):
        GeneratedSkeletonAudioDataModule(data_dir=str(demo_shards), clips_per_speaker=0)
