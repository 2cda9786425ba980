"""anchor_start: a generated skeleton sequence starts exactly at the reference pose, the correction fading;
SkeletonPipeline(anchor_seconds=...) applies it to Stage 1's output."""

from __future__ import annotations

import numpy as np
import pytest

from csg_lightning.skeleton.anchoring import anchor_start


def test_first_frame_becomes_the_reference_and_the_correction_fades():
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(50, 134, 2)).astype(np.float32) * 10 + 200
    ref = kp[0] + rng.normal(size=(134, 2)).astype(np.float32) * 5  # Stage 1 started off the reference
    out = anchor_start(kp, ref, frames=10)
    assert out.shape == kp.shape and out.dtype == np.float32
    np.testing.assert_allclose(out[0], ref, atol=1e-4)
    shift = out - kp
    np.testing.assert_allclose(shift[10], (ref - kp[0]) * np.exp(-1.0), atol=1e-4)
    assert np.abs(shift[-1]).max() < np.abs(ref - kp[0]).max() * np.exp(-4.8)  # faded: the model's own motion
    np.testing.assert_allclose(anchor_start(kp[:0], ref, 10), kp[:0])
    np.testing.assert_allclose(anchor_start(out, ref, 10), out, atol=1e-4)  # already anchored: unchanged


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"\[T, K, 2\] and reference \[K, 2\]"):
        anchor_start(np.zeros((5, 134, 2)), np.zeros((133, 2)), 10)
    with pytest.raises(ValueError, match="frames must be > 0"):
        anchor_start(np.zeros((5, 134, 2)), np.zeros((134, 2)), 0)


def test_stage1_pipeline_starts_at_the_reference_when_anchored(tiny_stage1_checkpoint):
    from csg_lightning.checkpoints.safe_load import load_module
    from csg_lightning.models.skeleton_diffusion import SkeletonDiffusion

    pipe = load_module(SkeletonDiffusion, tiny_stage1_checkpoint, map_location="cpu").eval().pipeline()
    audio = np.random.default_rng(1).normal(size=32000).astype(np.float32) * 0.1
    ref_kp = np.random.default_rng(2).uniform(100, 400, size=(134, 2)).astype(np.float32)
    ref_sc = np.ones(134, np.float32)
    plain, sc = pipe(audio, ref_kp, ref_sc, num_steps=2, seed=0)
    anchored, sc2 = pipe(audio, ref_kp, ref_sc, num_steps=2, seed=0, anchor_seconds=1.0)
    assert np.abs(plain[0] - ref_kp).mean() > 1.0  # a one-step model does not start at the reference ...
    np.testing.assert_allclose(anchored[0], ref_kp, atol=1e-3)  # ... anchored it does
    np.testing.assert_allclose(anchored, anchor_start(plain, ref_kp, 25), atol=1e-4)
    np.testing.assert_array_equal(sc, sc2)
