"""VideoPipeline: CFG only through the guider, PoseNet per tile inside the step, MimicMotion's unconditional
branch as an option, the module's entry points call it."""

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
    assert tiles == 2 and latents.shape == (1, 7, 4, 8, 8) and torch.isfinite(latents).all()
    assert guider.calls == 2 * tiles  # every tile of every step mixed by Guider.combine
    # PoseNet inside the step: once per tile and step, 1 x 4 frames (never the whole clip), not doubled for CFG
    assert [tuple(c[:2]) for c in calls] == [(1, 4)] * (2 * tiles)


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


def _record_unet_calls(net, monkeypatch):
    calls = []
    forward = net.forward

    def recording(sample, *args, pose_features=None, unposed_items=0, **kwargs):
        calls.append((len(sample), unposed_items, None if pose_features is None else pose_features.data_ptr()))
        return forward(sample, *args, pose_features=pose_features, unposed_items=unposed_items, **kwargs)

    monkeypatch.setattr(net, "forward", recording)
    return calls


def test_unconditional_pass_with_or_without_pose_and_batched_or_not(tiny_model, monkeypatch):
    ref, poses = _inputs(5)
    pipe = tiny_model.pipeline()
    assert pipe.uncond_pose and not pipe.cfg_batch  # our model: pose kept; two passes one after the other
    calls = _record_unet_calls(tiny_model.net, monkeypatch)
    kept = pipe.sample_latents(ref, poses, num_steps=2, tile_size=None)
    # per step: uncond then cond, batch 1 each, both posed with the same (not copied) features
    assert [c[:2] for c in calls] == [(1, 0), (1, 0)] * 2 and calls[0][2] == calls[1][2]
    calls.clear()
    pipe.uncond_pose = False  # MimicMotion: no pose in the unconditional pass
    dropped = pipe.sample_latents(ref, poses, num_steps=2, tile_size=None)
    assert [c[:2] for c in calls] == [(1, 1), (1, 0)] * 2
    assert (dropped - kept).abs().max() > 1e-3
    pipe.cfg_batch = True  # one batch of two; features broadcast to the posed half only
    calls.clear()
    batched = pipe.sample_latents(ref, poses, num_steps=2, tile_size=None)
    assert [c[:2] for c in calls] == [(2, 1)] * 2
    # batching changes only rounding; float32 spacing at sigma_max = 700 is 6e-5, and 2 steps keep it
    assert torch.allclose(batched, dropped, atol=5e-4)
    pipe.uncond_pose = True
    assert torch.allclose(pipe.sample_latents(ref, poses, num_steps=2, tile_size=None), kept, atol=5e-4)


def test_mimicmotion_weights_make_its_unconditional_branch_the_default(tmp_path):
    torch.manual_seed(0)
    plain = VideoGenerator.from_preset("tiny", ema_decay=0)
    path = tmp_path / "mimicmotion.safetensors"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in plain.net.state_dict().items()}, str(path))
    loaded = VideoGenerator.from_preset("tiny", ema_decay=0, mimicmotion_checkpoint=str(path))
    assert (plain.pipeline().uncond_pose, plain.pipeline().clip_resize) == (True, "antialias")
    assert (loaded.pipeline().uncond_pose, loaded.pipeline().clip_resize) == (False, "svd")
    explicit = VideoGenerator.from_preset("tiny", ema_decay=0, mimicmotion_checkpoint=str(path), uncond_pose=True)
    assert explicit.pipeline().uncond_pose is True


def test_uint8_poses_stay_on_their_device_and_match_float_poses(tiny_model):
    g = torch.Generator().manual_seed(1)
    ref = torch.randint(0, 255, (1, 3, 64, 64), generator=g, dtype=torch.uint8)
    poses = torch.randint(0, 255, (1, 6, 3, 64, 64), generator=g, dtype=torch.uint8)
    pipe = tiny_model.pipeline()
    from csg_lightning.video.pixel_range import to_model_range

    a = pipe.sample_latents(to_model_range(ref), poses, num_steps=1, tile_size=4, tile_overlap=2)
    b = pipe.sample_latents(to_model_range(ref), to_model_range(poses), num_steps=1, tile_size=4, tile_overlap=2)
    assert torch.equal(a, b)


def test_mimicmotion_initial_noise_repeats_one_tile(tiny_model):
    pipe = tiny_model.pipeline()
    g = torch.Generator().manual_seed(0)
    assert pipe.draw_noise(g, (1, 9), (4, 8, 8), 4).unique(dim=1).shape[1] == 9  # ours: independent frames
    pipe.initial_noise = "mimicmotion"
    noise = pipe.draw_noise(torch.Generator().manual_seed(0), (1, 9), (4, 8, 8), 4)
    assert torch.equal(noise[:, :4], noise[:, 4:8]) and torch.equal(noise[:, 0], noise[:, 8])
    with pytest.raises(ValueError, match="initial_noise"):
        VideoPipeline(pipe.net, pipe.vae, pipe.image_encoder, pipe.scheduler, pipe.guider, initial_noise="x")


def test_reference_residual_samples_the_difference_and_adds_the_reference_back(tiny_model):
    """With ``reference_residual`` s the same loop runs; its result is s x sample + the scaled reference latent."""
    import dataclasses

    ref, poses = _inputs(5)
    plain = tiny_model.pipeline()
    residual = dataclasses.replace(plain, reference_residual=0.5)
    a = plain.sample_latents(ref, poses, num_steps=2, seed=3)
    b = residual.sample_latents(ref, poses, num_steps=2, seed=3)
    base = plain.encode_reference(ref)[1][:, None] * float(plain.vae.config.scaling_factor)
    assert torch.allclose(b, 0.5 * a + base, atol=1e-5)
    assert not torch.allclose(b, a, atol=1e-2)
    x, unscaled = torch.randn_like(a), plain.encode_reference(ref)[1]
    assert torch.allclose(residual.from_residual(residual.to_residual(x, unscaled), unscaled), x, atol=1e-5)


def test_detail_transfer_renders_the_photo_plus_what_moved_against_frame_0(tiny_model):
    """``detail_transfer``: frames = reference + D(z_t) - D(z_0); a latent equal to frame 0's gives the photo
    itself, and the pipeline's __call__ and the model's render use it (off: the plain decode of frames 1..F)."""
    import dataclasses

    from csg_lightning.video.pixel_range import to_model_range, to_uint8
    from csg_lightning.video.vae_latents import decode_latents

    ref, _ = _inputs()
    plain = dataclasses.replace(tiny_model.pipeline(), vae_chunk_size=1)  # SVD's temporal decoder mixes a chunk's frames
    transfer = dataclasses.replace(plain, detail_transfer=True)
    g = torch.Generator().manual_seed(1)
    latents = torch.randn(1, 4, 4, 8, 8, generator=g)
    latents[:, 2] = latents[:, 0]  # frame 2 "did not move"
    got = transfer.render(latents, ref)
    assert got.shape == (1, 3, 64, 64, 3) and got.dtype == torch.uint8
    photo = to_uint8(ref).permute(0, 2, 3, 1)
    assert (got[:, 1].int() - photo.int()).abs().max() <= 1  # the photo itself (rounding of + D(z0) - D(z0))
    decoded = decode_latents(plain.vae, latents, chunk_size=1)
    expected = to_uint8(ref[:, None] + decoded[:, 1:] - decoded[:, :1]).permute(0, 1, 3, 4, 2)
    assert torch.equal(got, expected)
    assert torch.equal(plain.render(latents, ref), plain.decode(latents[:, 1:]))
    assert not torch.equal(got, plain.render(latents, ref))
    # through __call__ (reference pose given: frame 0 is the reference's slot) and without a reference pose
    pose_u8 = torch.randint(0, 255, (1, 3, 3, 64, 64), dtype=torch.uint8, generator=g)
    ref_u8 = to_uint8(ref)
    a = transfer(ref_u8, pose_u8, pose_u8[:, 0], num_steps=2, seed=0)
    z = transfer.sample_latents(to_model_range(ref_u8), to_model_range(torch.cat([pose_u8[:, :1], pose_u8], 1)),
                                num_steps=2, seed=0)  # fmt: skip
    assert torch.equal(a, transfer.render(z, to_model_range(ref_u8)))
    with pytest.raises(ValueError, match="detail_transfer needs reference_pose"):
        transfer(ref_u8, pose_u8, None, num_steps=2)
