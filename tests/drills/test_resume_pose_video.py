"""Exact resume of the Stage-2 ``PoseVideoDataModule`` under Lightning (it shares the train loader
of ``SkeletonAudioDataModule``, and so shared its resume bugs).

6 train clips with video, batch 1: 6 steps an epoch, 3 epochs. The chain stops at step 8 (epoch 1,
2 steps in), resumes and stops again at step 10 (inside the epoch it resumed), then resumes to the
end; it must train on exactly the uninterrupted run's examples (clip id, start) at every step.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from resume_chain import fit_chain

from csg_lightning.data.pose_video import PoseVideoDataModule
from csg_lightning.data.shards import write_shards

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers_clips import make_clip  # noqa: E402


@pytest.fixture(scope="module")
def video_shards(tmp_path_factory):
    """4 speakers x 3 clips of 40 frames at 64 x 64 with video: 2 train speakers, 6 train clips."""
    root = tmp_path_factory.mktemp("pose_video_clips")
    for s in range(4):
        for c in range(3):
            make_clip(root, f"spk{s:02d}_clip{c:03d}", f"spk{s:02d}", num_frames=40, seed=10 * s + c,
                      width=64, height=64, video=True)  # fmt: skip
    return write_shards(root, tmp_path_factory.mktemp("pose_video_shards") / "dst", seed=0, progress=False)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_pose_video_training_resumes_exactly_across_epochs(video_shards, tmp_path, num_workers):
    def make_dm():
        return PoseVideoDataModule(str(video_shards), batch_size=1, num_workers=num_workers, num_frames=2,
                                   frame_stride=5, height=32, width=32, seed=1)  # fmt: skip

    runs = fit_chain(make_dm, "keypoints", max_steps=18, stops=[8, 10], root=tmp_path)
    full = runs["full"]
    assert (
        len(full) == 18 and len({frozenset((c, s) for _, c, s in full[i : i + 6]) for i in (0, 6, 12)}) == 3
    )
    assert runs["chain"] == full
    assert runs["chain_w"] == runs["full_w"]
