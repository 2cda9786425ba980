"""VideoPipeline: CFG only through the guider, PoseNet once per tile, the module's entry points call it."""

from __future__ import annotations

import pytest
import torch

from csg_lightning.pipelines.guider import ConstantGuider, LinearRampGuider
from csg_lightning.pipelines.video_pipeline import VideoPipeline
from csg_lightning.video.video_generator import VideoGenerator


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    model = VideoGenerator.from_preset("tiny", image_height=64, image_width=64, ema_decay=0)
    torch.nn.init.normal_(model.net.pose_net.final_proj.weight, std=0.05)
    return model.eval()


class CountingGuider(LinearRampGuider):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    def combine(self, cond, uncond, **kwargs):
        self.calls += 1
        return super().combine(cond, uncond, **kwargs)


def _inputs(frames: int = 7):
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, 64, 64, generator=g) * 2 - 1, torch.rand(
        1, frames, 3, 64, 64, generator=g
    ) * 2 - 1


def test_guidance_goes_through_the_guider_and_pose_features_once_per_tile(tiny_model, monkeypatch):
    ref, poses = _inputs(7)
    guider = CountingGuider(1.0, 2.0)
    pipe = tiny_model.pipeline()
    pipe.guider = guider
    calls = []
    encode = tiny_model.net.encode_pose
    monkeypatch.setattr(tiny_model.net, "encode_pose", lambda x: calls.append(x.shape) or encode(x))
    latents = pipe.sample_latents(ref, poses, num_steps=2, tile_size=4, tile_overlap=1)
    tiles = len(pipe.tiles(7, 4, 1))
    assert latents.shape == (1, 7, 4, 8, 8) and torch.isfinite(latents).all()
    assert guider.calls == 2 * tiles  # every tile of every step mixed by Guider.combine
    assert [tuple(c[:2]) for c in calls] == [
        (1, 4)
    ] * tiles  # PoseNet: once per tile, 1 x 4 frames, not doubled


def test_scale_one_runs_no_unconditional_pass(tiny_model, monkeypatch):
    ref, poses = _inputs(3)
    batches = []
    forward = tiny_model.net.forward

    def counting(sample, *args, **kwargs):
        batches.append(len(sample))
        return forward(sample, *args, **kwargs)

    monkeypatch.setattr(tiny_model.net, "forward", counting)
    pipe = tiny_model.pipeline()
    pipe.guider = ConstantGuider(1.0)
    pipe.sample_latents(ref, poses, num_steps=1, tile_size=None)
    assert batches == [1]


def test_guider_override_matches_a_pipeline_built_with_it(tiny_model):
    ref, poses = _inputs(3)
    a = tiny_model.sample_latents(ref, poses, num_steps=2, min_guidance=1.5, max_guidance=2.5, seed=3)
    pipe = tiny_model.pipeline()
    b = pipe.sample_latents(ref, poses, num_steps=2, seed=3, guider=LinearRampGuider(1.5, 2.5))
    assert isinstance(pipe, VideoPipeline) and torch.equal(a, b)


def test_predict_step_and_sample_batch_generate_frames(tiny_model):
    g = torch.Generator().manual_seed(0)
    batch = {
        "reference": torch.randint(0, 255, (1, 3, 64, 64), generator=g, dtype=torch.uint8),
        "poses": torch.randint(0, 255, (1, 2, 3, 64, 64), generator=g, dtype=torch.uint8),
        "reference_pose": torch.randint(0, 255, (1, 3, 64, 64), generator=g, dtype=torch.uint8),
    }
    tiny_model.hparams.num_inference_steps = 1
    try:
        frames = tiny_model.predict_step(batch, 0)
    finally:
        tiny_model.hparams.num_inference_steps = 25
    assert frames.shape == (1, 2, 64, 64, 3) and frames.dtype == torch.uint8
