"""Pose alignment, latent fusion and generation with the tiny video generator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csg_lightning.io.mp4 import read_frames
from csg_lightning.video.generate import generate_video
from csg_lightning.video.latent_fusion import fuse_tiles, tile_indices, triangular_weights
from csg_lightning.video.pose_alignment import fit_alignment
from csg_lightning.video.video_generator import VideoGenerator


def test_pose_alignment_recovers_scale_and_offset():
    rng = np.random.default_rng(0)
    ref = rng.uniform(100, 400, size=(134, 2)).astype(np.float32)
    ref_sc = np.ones(134, dtype=np.float32)
    scale, off = 1.7, np.array([-35.0, 22.0])
    drv = ((ref - off) / scale)[None].repeat(5, 0) + rng.normal(0, 0.01, size=(5, 134, 2))
    sc = np.ones((5, 134), dtype=np.float32)
    sc[:, 3] = 0.0  # unconfident points are ignored
    drv[:, 3] += 500
    a = fit_alignment(ref, ref_sc, drv, sc)
    assert a.scale_y == pytest.approx(scale, rel=1e-3) and a.scale_x == pytest.approx(scale, rel=1e-3)
    assert a.offset_x == pytest.approx(off[0], abs=0.2) and a.offset_y == pytest.approx(off[1], abs=0.2)
    assert np.allclose(a.apply(drv)[:, :3], ref[None, :3], atol=0.2)


def test_tiles_always_hold_frame_zero_and_cover_the_clip():
    tiles = tile_indices(10, 4, 2)  # MimicMotion's tile_overlap: 2 frames shared, frame 0 included
    assert all(t[0] == 0 and len(t) == 4 for t in tiles)
    assert sorted(set(np.concatenate(tiles).tolist())) == list(range(10))
    assert [t.tolist() for t in tiles] == [[0, 1, 2, 3], [0, 3, 4, 5], [0, 5, 6, 7], [0, 7, 8, 9]]
    assert tile_indices(5, 16, 4)[0].tolist() == [0, 1, 2, 3, 4]
    assert torch.allclose(triangular_weights(5), torch.tensor([0.2, 0.6, 1.0, 0.6, 0.2]))  # more: test_mimicmotion_parity
    x = torch.randn(2, 10, 3)
    assert torch.allclose(fuse_tiles(lambda idx: x[:, idx], 10, tiles), x, atol=1e-6)  # consistent tiles


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    model = VideoGenerator.from_preset(
        "tiny",
        image_height=64,
        image_width=64,
        ema_decay=0,
        guider={
            "class_path": "csg_lightning.pipelines.guider.LinearRampGuider",
            "init_args": {"max_scale": 2.0},
        },
    )
    torch.nn.init.normal_(model.net.pose_net.final_proj.weight, std=0.05)  # make the pose matter
    return model.eval()


def test_fusion_with_one_tile_equals_the_plain_pass(tiny_model):
    ref = torch.rand(1, 3, 64, 64) * 2 - 1
    poses = torch.rand(1, 6, 3, 64, 64) * 2 - 1
    plain = tiny_model.sample_latents(ref, poses, num_steps=3, tile_size=None, seed=1)
    one_tile = tiny_model.sample_latents(ref, poses, num_steps=3, tile_size=16, seed=1)
    assert torch.allclose(plain, one_tile, atol=1e-5)
    tiled = tiny_model.sample_latents(ref, poses, num_steps=3, tile_size=4, tile_overlap=1, seed=1)
    assert tiled.shape == plain.shape and torch.isfinite(tiled).all()
    assert not torch.allclose(tiled, plain)


def test_generate_video_writes_an_mp4_with_audio(tiny_model, tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(80, 96, 3), dtype=np.uint8)
    kp = rng.uniform(20, 60, size=(7, 134, 2)).astype(np.float32)
    sc = np.full((7, 134), 0.9, dtype=np.float32)
    audio = rng.normal(0, 0.1, size=7 * 640).astype(np.float32)
    out = tmp_path / "video.mp4"
    frames = generate_video(
        image, (kp, sc), audio, model=tiny_model, reference_pose=(kp[0] * 1.1, sc[0]), out_path=out,
        num_steps=2, tile_size=4, tile_overlap=1,
    )  # fmt: skip
    assert frames.shape == (7, 64, 64, 3) and frames.dtype == np.uint8
    assert read_frames(out).shape == (7, 64, 64, 3)
    import av

    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1
