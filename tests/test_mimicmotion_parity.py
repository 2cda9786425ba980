"""Stage 2 against MimicMotion (``Tencent/MimicMotion``): tiling by hand, and the same latents as its pipeline.

Fast (always run): MimicMotion's tile indices and weights, written out by hand from its formulas
(``pipeline_mimicmotion.py``: tiles ``[0, i + 1, ..., i + tile_size - 1]`` for ``i`` in
``range(0, F - tile_size + 1, tile_size - tile_overlap)``, plus ``[0, F - tile_size + 1, ..., F - 1]`` when
the last one stops short; weights ``min(w, 2 - w)``, ``w = (i + 0.5) * 2 / tile_size``).

Parity (needs ``MIMICMOTION`` = an extracted snapshot of Tencent/MimicMotion, the folder that holds
``mimicmotion/``; skipped otherwise): tiny random SVD parts (diffusers' VAE, transformers' CLIP) shared by
both, MimicMotion's own ``UNetSpatioTemporalConditionModel`` and ``PoseNet`` loaded with our UNet's and
PoseNet's weights, the same reference image, pose images, seed and noise; MimicMotion's
``MimicMotionPipeline.__call__`` (``output_type="latent"``) vs our ``VideoPipeline.sample_latents`` with
MimicMotion's options (``uncond_pose=False``, ``clip_resize="svd"``), for one tile and for progressive
fusion over 4 tiles (incl. the appended last one), with noise augmentation and a guidance ramp.

Tolerance 2e-5 (absolute, on latents of mean magnitude ~0.3): everything runs in float32 on the CPU with
equal weights, so the only differences are rounding: pixels ``x / 255 * 2 - 1`` vs ``x / 127.5 - 1``,
CLIP normalisation in NumPy vs torch, guidance mixed per tile before fusion (ours) vs after (theirs), equal
by linearity up to reassociation. The first Euler step works on latents of magnitude ~700 (``sigma_max``;
float32 spacing 6e-5 there), which sets a noise floor: measured 7.6e-6 between ours and theirs, and the
same 7.6e-6 between ours and ours with batched CFG or with 2 threads instead of 1. A real difference is
three orders larger (``test_parity_detects_each_difference``, measured: pose kept in the unconditional
pass 0.37, the old ``overlap`` meaning 0.91, the old weights 0.085, our CLIP resize 0.031).

Their code is imported from the snapshot, never copied; one environment difference is patched in memory
for the call only: ``torch.cuda.device("cpu")`` raises, and their pipeline wraps ``empty_cache`` in it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from csg_lightning.pipelines.guider import LinearRampGuider
from csg_lightning.pipelines.video_pipeline import VideoPipeline
from csg_lightning.video.latent_fusion import fuse_tiles, tile_indices, triangular_weights
from csg_lightning.video.pixel_range import to_model_range
from csg_lightning.video.pose_injection import PoseGuidedUNet
from csg_lightning.video.pose_net import PoseNet
from csg_lightning.video.svd_parts import (
    SCHEDULER_CONFIG,
    TINY_CLIP,
    TINY_UNET,
    TINY_VAE,
    clip_image_encoder,
    svd_unet,
    svd_vae,
)

# ---------------------------------------------------------------- fast: tiles and weights by hand

# (num_frames, tile_size, tile_overlap) -> MimicMotion's tiles, worked out by hand from its loop
HAND_TILES = {
    (10, 4, 1): [[0, 1, 2, 3], [0, 4, 5, 6], [0, 7, 8, 9]],  # stride 3, ends on 9
    (10, 4, 2): [[0, 1, 2, 3], [0, 3, 4, 5], [0, 5, 6, 7], [0, 7, 8, 9]],  # stride 2
    (11, 4, 2): [[0, 1, 2, 3], [0, 3, 4, 5], [0, 5, 6, 7], [0, 7, 8, 9], [0, 8, 9, 10]],  # last appended
    (12, 5, 2): [[0, 1, 2, 3, 4], [0, 4, 5, 6, 7], [0, 7, 8, 9, 10], [0, 8, 9, 10, 11]],  # last appended
    (7, 2, 1): [[0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [0, 6]],  # stride 1
    (16, 16, 4): [list(range(16))],  # exactly one tile
    (21, 16, 4): [list(range(16)), [0, *range(6, 21)]],  # the golden test's clip: 20 poses + reference
    (150, 72, 6): [list(range(72)), [0, *range(67, 138)], [0, *range(79, 150)]],  # MimicMotion's config
}


@pytest.mark.parametrize("case", sorted(HAND_TILES))
def test_tile_indices_are_mimicmotions(case):
    assert [t.tolist() for t in tile_indices(*case)] == HAND_TILES[case]


def test_short_clips_are_one_tile_and_bad_overlaps_raise():
    assert tile_indices(5, 16, 4)[0].tolist() == [0, 1, 2, 3, 4]  # MimicMotion: IndexError
    with pytest.raises(ValueError, match=r"tile_overlap must be in \[1, 3\]"):
        tile_indices(10, 4, 0)  # MimicMotion: frames in no tile -> 0 / 0
    with pytest.raises(ValueError, match="tile_overlap"):
        tile_indices(10, 4, 4)
    with pytest.raises(ValueError, match="tile_size >= 2"):
        tile_indices(10, 1, 1)


def test_weights_are_mimicmotions():
    # w = (i + 0.5) * 2 / L, min(w, 2 - w)
    assert triangular_weights(4).tolist() == [0.25, 0.75, 0.75, 0.25]
    assert torch.allclose(triangular_weights(5), torch.tensor([0.2, 0.6, 1.0, 0.6, 0.2]))
    assert torch.allclose(
        triangular_weights(16),
        torch.tensor([1, 3, 5, 7, 9, 11, 13, 15] * 1 + [15, 13, 11, 9, 7, 5, 3, 1]) / 16,
    )


def test_fusion_is_the_weighted_mean_by_hand():
    tiles = tile_indices(10, 4, 2)  # [0,1,2,3] [0,3,4,5] [0,5,6,7] [0,7,8,9], weights .25 .75 .75 .25
    value = {k: float(k + 1) for k in range(4)}  # tile k predicts k + 1 everywhere
    order = iter(range(4))
    fused = fuse_tiles(lambda idx: torch.full((1, len(idx)), value[next(order)]), 10, tiles)[0]
    expected = [
        (1 + 2 + 3 + 4) / 4,  # frame 0: end weight in every tile
        1, 1,  # frames 1, 2: tile 0 only
        (0.25 * 1 + 0.75 * 2) / 1.0,  # frame 3: tile 0 pos 3, tile 1 pos 1
        2,
        (0.25 * 2 + 0.75 * 3) / 1.0,
        3,
        (0.25 * 3 + 0.75 * 4) / 1.0,
        4, 4,
    ]  # fmt: skip
    assert torch.allclose(fused, torch.tensor(expected))


# ---------------------------------------------------------------- parity with MimicMotion's pipeline

SNAPSHOT = os.environ.get("MIMICMOTION")
needs_snapshot = pytest.mark.skipif(
    not SNAPSHOT or not (Path(SNAPSHOT) / "mimicmotion" / "pipelines" / "pipeline_mimicmotion.py").is_file(),
    reason="MIMICMOTION is unset or lacks mimicmotion/pipelines/pipeline_mimicmotion.py: point it at an "
    "extracted snapshot of github.com/Tencent/MimicMotion to compare our Stage 2 with its pipeline",
)
STEPS, HEIGHT, WIDTH, MIN_G, MAX_G, AUG = 3, 64, 64, 1.0, 2.5, 0.02
TOL = 2e-5


@pytest.fixture(scope="module")
def mimic():
    """MimicMotion's modules, imported from the snapshot (sys.path restored afterwards)."""
    sys.path.insert(0, str(SNAPSHOT))
    try:
        from mimicmotion.modules.pose_net import PoseNet as TheirPoseNet
        from mimicmotion.modules.unet import UNetSpatioTemporalConditionModel as TheirUNet
        from mimicmotion.pipelines.pipeline_mimicmotion import MimicMotionPipeline
    finally:
        sys.path.remove(str(SNAPSHOT))
    return TheirUNet, TheirPoseNet, MimicMotionPipeline


@pytest.fixture(scope="module")
def parts(mimic):
    from diffusers import EulerDiscreteScheduler
    from transformers import CLIPImageProcessor

    their_unet_cls, their_pose_cls, pipeline_cls = mimic
    torch.manual_seed(0)
    unet = svd_unet(TINY_UNET)
    pose_net = PoseNet(int(unet.config.block_out_channels[0]))
    torch.nn.init.normal_(pose_net.final_proj.weight, std=0.05)  # make the pose matter
    net = PoseGuidedUNet(unet, pose_net).eval()
    vae = svd_vae(TINY_VAE).eval()
    clip = clip_image_encoder(dict(TINY_CLIP, image_size=224, patch_size=32)).eval()  # they resize to 224
    their_unet = their_unet_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in TINY_UNET.items()})
    their_unet.load_state_dict(unet.state_dict(), strict=True)
    their_pose = their_pose_cls(noise_latent_channels=int(unet.config.block_out_channels[0]))
    their_pose.load_state_dict(pose_net.state_dict(), strict=True)
    theirs = pipeline_cls(vae=vae, image_encoder=clip, unet=their_unet.eval(), pose_net=their_pose.eval(),
                          scheduler=EulerDiscreteScheduler(**SCHEDULER_CONFIG),
                          feature_extractor=CLIPImageProcessor())  # fmt: skip
    ours = VideoPipeline(net, vae, clip, EulerDiscreteScheduler(**SCHEDULER_CONFIG), LinearRampGuider(MIN_G, MAX_G),
                         noise_aug_strength=AUG, num_steps=STEPS, uncond_pose=False, clip_resize="svd",
                         initial_noise="mimicmotion")  # fmt: skip
    return ours, theirs


def _inputs(frames: int):
    g = np.random.default_rng(frames)
    reference = g.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    poses = torch.from_numpy(g.integers(0, 256, (1, frames, 3, HEIGHT, WIDTH), dtype=np.uint8))
    return reference, poses


def run_theirs(theirs, reference, poses, tile_size, tile_overlap, seed, latents=None):
    from PIL import Image

    generator = torch.Generator("cpu").manual_seed(seed)
    real_device = torch.cuda.device
    torch.cuda.device = lambda d: (
        contextlib.nullcontext() if torch.device(d).type == "cpu" else real_device(d)
    )
    try:
        return theirs(
            [Image.fromarray(reference)], image_pose=to_model_range(poses[0]), height=HEIGHT, width=WIDTH,
            num_frames=poses.shape[1], tile_size=tile_size, tile_overlap=tile_overlap, num_inference_steps=STEPS,
            min_guidance_scale=MIN_G, max_guidance_scale=MAX_G, fps=7, motion_bucket_id=127,
            noise_aug_strength=AUG, generator=generator, latents=latents, output_type="latent",
            device=torch.device("cpu"),
        ).frames.float()  # fmt: skip
    finally:
        torch.cuda.device = real_device


def run_ours(ours, reference, poses, tile_size, tile_overlap, seed, noise=None):
    ref = to_model_range(torch.from_numpy(reference).permute(2, 0, 1)[None])
    return ours.sample_latents(
        ref, poses, tile_size=tile_size, tile_overlap=tile_overlap, seed=seed, noise=noise
    )


CASES = {"one_tile": (4, 4, 2), "fusion_4_tiles": (10, 4, 2), "fusion_appended_tile": (11, 4, 2)}


@needs_snapshot
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_latents_as_mimicmotion_from_the_same_seed(parts, case):
    """MimicMotion's own noise (aug noise, then one tile repeated) from the same seed: same latents."""
    ours, theirs = parts
    frames, tile_size, overlap = CASES[case]
    reference, poses = _inputs(frames)
    a = run_ours(ours, reference, poses, tile_size, overlap, seed=7)
    b = run_theirs(theirs, reference, poses, tile_size, overlap, seed=7)
    assert a.shape == b.shape == (1, frames, 4, HEIGHT // 8, WIDTH // 8)
    assert torch.isfinite(a).all() and a.abs().mean() > 0.1
    assert (a - b).abs().max() <= TOL, f"{case}: max |ours - MimicMotion| = {(a - b).abs().max():.2e}"


@needs_snapshot
@pytest.mark.parametrize("cfg_batch", [False, True])
def test_same_latents_from_the_same_given_noise(parts, cfg_batch):
    """Our independent noise given to both (their ``latents=``), CFG as one batch or two passes."""
    ours, theirs = parts
    reference, poses = _inputs(11)
    noise = torch.randn(1, 11, 4, HEIGHT // 8, WIDTH // 8, generator=torch.Generator().manual_seed(3))
    ours.cfg_batch = cfg_batch
    try:
        a = run_ours(ours, reference, poses, 4, 2, seed=5, noise=noise)
    finally:
        ours.cfg_batch = False
    b = run_theirs(theirs, reference, poses, 4, 2, seed=5, latents=noise.clone())
    assert (a - b).abs().max() <= TOL, f"max |ours - MimicMotion| = {(a - b).abs().max():.2e}"


@needs_snapshot
def test_parity_detects_each_difference(parts, monkeypatch):
    """Ours' former behaviours each move the latents far beyond the tolerance (so the checks above can fail)."""
    import csg_lightning.video.latent_fusion as fusion

    ours, theirs = parts
    reference, poses = _inputs(11)
    b = run_theirs(theirs, reference, poses, 4, 2, seed=7)
    ours.uncond_pose = True  # ours: the pose kept in the unconditional pass
    try:
        kept = run_ours(ours, reference, poses, 4, 2, seed=7)
    finally:
        ours.uncond_pose = False
    assert (kept - b).abs().max() > 1e-3
    shifted = run_ours(ours, reference, poses, 4, 1, seed=7)  # the old meaning: overlap 1 == theirs 2
    assert (shifted - b).abs().max() > 1e-3
    monkeypatch.setattr(
        fusion,
        "triangular_weights",
        lambda n: torch.minimum(torch.arange(n) + 1.0, n - torch.arange(n) + 0.0),
    )
    old_weights = run_ours(ours, reference, poses, 4, 2, seed=7)  # the old weights min(i + 1, L - i)
    assert (old_weights - b).abs().max() > 1e-3
    monkeypatch.setattr(ours, "clip_resize", "antialias")  # ours: torch's antialiased resize for CLIP
    assert (run_ours(ours, reference, poses, 4, 2, seed=7) - b).abs().max() > 1e-3
