"""`csg-eval video-demo` (Stage 1 -> Stage 2 on held-out clips vs the repeated reference frame and the
ground-truth-skeleton upper bound) on real tiny checkpoints, and the datamodule's ``reference_first`` layout
(frame 0 of a training example = the reference with its pose, as at inference)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
import yaml
from tiny_chain import tiny_chain

from csg_lightning.data.pose_video import PoseVideoDataModule, PoseVideoDataset
from csg_lightning.eval_cli import main as eval_main
from csg_lightning.evaluation.demo_video import contact_sheet, frame_scores, held_out_clips
from csg_lightning.io.mp4 import read_frames


@pytest.fixture(scope="module")
def chain(tmp_path_factory, demo_corpus_video, demo_shards_video):
    """The session's tiny Stage-1 + Stage-2 checkpoints (tests/tiny_chain.py: 32 x 32, one step each)."""
    return tiny_chain(tmp_path_factory, demo_corpus_video, demo_shards_video)


def test_video_demo_scores_generated_upper_bound_and_baseline(chain, demo_shards_video, tmp_path, capsys):
    tiny_video_checkpoint, tiny_stage1_checkpoint = chain.video_checkpoint, chain.skeleton_checkpoint
    out = tmp_path / "eval"
    eval_main(["video-demo", "--skeleton-ckpt", str(tiny_stage1_checkpoint), "--video-ckpt", str(tiny_video_checkpoint),
               "--data", str(demo_shards_video), "--out", str(out), "--clips", "1", "--seconds", "0.6",
               "--video-steps", "2", "--skeleton-steps", "2"])  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert "generated" in capsys.readouterr().out
    for row in ("generated", "upper_bound", "baseline"):
        assert 0 < report[row]["PSNR"] < 100 and -1 <= report[row]["SSIM"] <= 1, row
    meta = report["meta"]
    assert meta["split"] == "test" and meta["clips"] == 1 and meta["resolution"] == "32x32"
    assert meta["frame_stride"] == 2 and meta["frames_per_clip"] == 7  # frames 2, 4, ... 14 of 0.6 s
    gain = meta["generated_minus_baseline"]
    assert gain["PSNR"] == pytest.approx(report["generated"]["PSNR"] - report["baseline"]["PSNR"])
    # the baseline row is the reference repeated, scored against the same decoded frames
    (clip,) = held_out_clips(str(demo_shards_video), "test", 32, 32, 2, 0.6, 1)
    expected = frame_scores(np.broadcast_to(clip.reference, clip.frames.shape), clip.frames)
    assert report["baseline"]["PSNR"] == pytest.approx(expected["PSNR"], rel=1e-5)
    assert report[f"{clip.clip_id} baseline"]["SSIM"] == pytest.approx(expected["SSIM"], rel=1e-5)
    for row in ("real", "generated", "upper_bound", "baseline"):
        frames = read_frames(out / "videos" / f"{clip.clip_id}_{row}.mp4")
        assert frames.shape == (7, 32, 32, 3), row
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet.shape[0] == 4 * 128 and sheet.shape[1] == 8 * 128  # 4 rows, label + 7 frames
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["video_ckpt"] == str(tiny_video_checkpoint) and config["frame_stride"] == 2
    assert "beat" in (out / "report.md").read_text()


def test_held_out_clips_are_decoded_like_training_frames(demo_shards_video):
    (clip,) = held_out_clips(str(demo_shards_video), "test", 32, 32, 3, 1.0, 1)
    assert clip.frames.shape == (8, 32, 32, 3) and clip.indices.tolist() == [3, 6, 9, 12, 15, 18, 21, 24]
    assert clip.audio.shape == (25 * 640,) and clip.audio.dtype == np.float32
    ds = PoseVideoDataModule(str(demo_shards_video), num_frames=2, height=32, width=32).make_dataset("test")
    assert ds is not None
    kp, _ = clip.poses
    assert kp.shape == (8, 134, 2) and clip.reference_pose[0].shape == (134, 2)
    with pytest.raises(ValueError, match="split must be one of"):
        held_out_clips(str(demo_shards_video), "nosuchsplit", 32, 32, 2, 1.0, 1)


def test_frame_scores_and_contact_sheet():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    same = frame_scores(real, real)
    assert same["SSIM"] == pytest.approx(1.0) and same["PSNR"] > 60
    noisy = np.clip(real.astype(int) + rng.integers(-40, 40, real.shape), 0, 255).astype(np.uint8)
    worse = frame_scores(noisy, real)
    assert worse["PSNR"] < same["PSNR"] and worse["SSIM"] < 1
    sheet = contact_sheet([("a", {"real": real, "generated": noisy}), ("b", {"real": real})], columns=2, cell=32)
    assert sheet.shape == (3 * 32 + 6, 3 * 32, 3)


def test_reference_first_puts_the_reference_and_its_pose_at_frame_0(demo_shards_video):
    dm = PoseVideoDataModule(str(demo_shards_video), num_frames=4, frame_stride=3, height=32, width=32,
                             reference_first=True)  # fmt: skip
    ds = dm.make_dataset("train")
    assert ds.reference_first and ds.window_frames == 3 and ds.span == 7
    ex = ds[0]
    assert ex["frames"].shape == (4, 3, 32, 32) and ex["poses"].shape == (4, 3, 32, 32)
    assert torch.equal(ex["frames"][0], ex["reference"])
    assert torch.equal(ex["poses"][0], ex["reference_pose"])
    assert torch.equal(ex["keypoints"][0], ex["reference_keypoints"])
    assert int(ex["frame_indices"][0]) == int(ex["reference_index"])
    steps = ex["frame_indices"][1:].diff()
    assert (steps <= 3).all() and int(ex["frame_indices"][1]) == int(ex["start"])
    assert ex["audio"].shape == (7 * 640,)
    plain = PoseVideoDataModule(str(demo_shards_video), num_frames=4, frame_stride=3, height=32, width=32)
    old = plain.make_dataset("train")[0]
    assert old["frames"].shape == (4, 3, 32, 32) and old["audio"].shape == (10 * 640,)
    with pytest.raises(ValueError, match="reference_first needs num_frames >= 2"):
        PoseVideoDataset(dm.shards.split_uri("train"), num_frames=1, reference_first=True)


def test_make_demo_chains_every_stage_in_order_on_the_test_speaker():
    """`make demo` (dry run): data -> Stage 1 -> VAE -> Stage 2 (on that VAE) -> photo + speech of a test-split
    clip -> csg generate -> csg-eval video-demo, and it says where the video is."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(["make", "-n", "demo"], cwd=root, capture_output=True, text=True, check=True).stdout
    steps = ["csg fit --config experiments/skeleton/demo_speakers.yaml", "csg fit --config experiments/video/vae_demo.yaml",
             "csg fit --config experiments/video/demo_person.yaml", "csg-data still data/demo/clips/spk04_clip000/video.mp4",
             "csg generate --pipeline experiments/pipeline/demo.yaml", "csg-eval video-demo", "demo video: runs/demo/demo.mp4"]  # fmt: skip
    where = [out.find(step) for step in steps]
    assert -1 not in where and where == sorted(where), dict(zip(steps, where, strict=True))
    person = yaml.safe_load((root / "experiments" / "video" / "demo_person.yaml").read_text())
    assert person["layers"] == ["demo.yaml", "../components/video/vae_fitted_demo.yaml"]  # Stage 2 on the fitted VAE
    pipeline = yaml.safe_load((root / "experiments" / "pipeline" / "demo.yaml").read_text())
    assert pipeline["video"]["checkpoint"].startswith(f"runs/{person['experiment']}/latest/")  # what generate loads
